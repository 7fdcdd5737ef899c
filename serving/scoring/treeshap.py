"""Exact TreeSHAP of a LightGBM booster, fast: per-leaf tables built once per model.

A leaf's path-dependent TreeSHAP value for feature j depends on the row only through its
*pattern* U: which of the leaf's d distinct path features it agrees with (takes the
leaf's way at every split on it). With leaf value v and cover fractions z,

    phi_j += v (o_j - z_j) sum_{S in U minus j} |S|! (d-1-|S|)! / d!  prod_{k not j, not in S} z_k

(o_j = 1 when j is in U) takes one of 2^d values per (leaf, j), tabulated once (Fast
TreeSHAP v2, Yang 2021). A row then costs one split decision per node, the leaves'
patterns pushed down the tree in node order, and d look-ups per leaf, instead of
LightGBM's O(leaves x depth^2) recursion in `pred_contrib`; same counts, same split rules
(missing values, zero as missing, categorical bitsets): tests hold it to `pred_contrib`.
Trees too deep for tables (`MAX_PATH_FEATURES`, `MAX_TABLE_BYTES`) raise `TableTooLarge`
and the caller uses LightGBM's own. `margin` walks the same trees for the raw score.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from math import factorial

import numpy as np
import pandas as pd
from numba import njit

MAX_PATH_FEATURES = 12  # 4096 x 12 floats for one such leaf
MAX_TABLE_BYTES = 512 * 2**20


class TableTooLarge(ValueError):
    """The model's trees are too deep for tables; use LightGBM's `pred_contrib` instead."""


def _trees(model_text: str) -> list[dict[str, np.ndarray]]:
    """The `Tree=` blocks of a LightGBM text model, as arrays."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in model_text.splitlines():
        if line.startswith("Tree="):
            current = {}
            blocks.append(current)
        elif line.startswith("end of trees"):
            break
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    dtypes = {
        "threshold": np.float64,
        "leaf_value": np.float64,
        "internal_count": np.float64,
        "leaf_count": np.float64,
        "cat_threshold": np.uint32,
    }
    keys = ("split_feature", "decision_type", "left_child", "right_child", "cat_boundaries", *dtypes)
    return [{k: np.array(b.get(k, "").split(), dtype=dtypes.get(k, np.int64)) for k in keys} for b in blocks]


def _walk(tree: dict[str, np.ndarray]) -> tuple[list[int], list[tuple[int, bool]], list[list], int]:
    """Nodes parents-first; per node, its feature's slot in the patterns of the leaves below
    it and whether the feature is new on the path there; per leaf, its distinct path
    features (in order of first appearance from the root) with their cover fractions;
    and the tree's depth."""
    f, left, right = tree["split_feature"], tree["left_child"], tree["right_child"]
    internal, leaf_count = tree["internal_count"], tree["leaf_count"]
    count = lambda child: leaf_count[~child] if child < 0 else internal[child]
    leaves: list[list[tuple[int, float]]]  # per leaf: (feature, cover fraction) on its path
    order, slots, leaves = [], [(0, False)] * len(f), [[] for _ in tree["leaf_value"]]
    depth = 0
    # node, {feature: cover fraction so far} on the path to it, depth of its children
    queue: list[tuple[int, dict[int, float], int]] = [(0, {}, 1)]
    while queue:
        node, path, level = queue.pop(0)
        order.append(node)
        feature = int(f[node])
        slots[node] = (list(path).index(feature) if feature in path else len(path), feature not in path)
        for child in (left[node], right[node]):
            down = {**path, feature: path.get(feature, 1.0) * count(child) / internal[node]}
            if child < 0:
                leaves[~child] = list(down.items())
                depth = max(depth, level)
            else:
                queue.append((child, down, level + 1))
    return order, slots, leaves, depth


@njit(cache=True)
def _fill_tables(leaf_value, leaf_d, leaf_feat_start, zfrac, table_offset, weights, table):
    poly = np.zeros(MAX_PATH_FEATURES + 1)
    for leaf in range(leaf_value.shape[0]):
        d, fs = leaf_d[leaf], leaf_feat_start[leaf]
        for pattern in range(1 << d):
            for j in range(d):
                poly[:] = 0.0  # coefficients of prod over k in U, k != j of (x + z_k)
                poly[0] = 1.0
                degree, const = 0, 1.0
                for k in range(d):
                    if k == j:
                        continue
                    z = zfrac[fs + k]
                    if (pattern >> k) & 1:
                        for s in range(degree + 1, 0, -1):
                            poly[s] = poly[s] * z + poly[s - 1]
                        poly[0] *= z
                        degree += 1
                    else:
                        const *= z
                acc = 0.0
                for s in range(degree + 1):
                    acc += weights[d, s] * poly[s]
                one = (pattern >> j) & 1
                table[table_offset[leaf] + pattern * d + j] = leaf_value[leaf] * (one - zfrac[fs + j]) * acc * const


@njit(nogil=True, cache=True, inline="always")
def _goes_left(fval, dtype, threshold, cat_start, cat_len, cat_bits):
    """LightGBM's Tree::Decision for one node (tree.h, v4)."""
    if dtype & 1:  # categorical: NaN and negatives go right, else test the bitset
        if np.isnan(fval) or fval < 0:
            return False
        iv = int(fval)
        if iv // 32 >= cat_len:
            return False
        return (cat_bits[cat_start + iv // 32] >> (iv % 32)) & 1 == 1
    missing = (dtype >> 2) & 3  # 0 none, 1 zero, 2 NaN
    if np.isnan(fval) and missing != 2:
        fval = 0.0
    if (missing == 1 and -1e-35 <= fval <= 1e-35) or (missing == 2 and np.isnan(fval)):
        return (dtype >> 1) & 1 == 1
    return fval <= threshold


@njit(nogil=True, cache=True)
def _shap_rows(
    X,
    out,
    node,
    feature,
    dtype,
    threshold,
    cat_start,
    cat_len,
    cat_bits,
    slot,
    new,
    left_slot,
    right_slot,
    tree_node_start,
    tree_leaf_start,
    leaf_d,
    leaf_feat_start,
    path_local,
    tree_feat_start,
    tree_feats,
    table_offset,
    table,
):
    width = 1
    for t in range(tree_node_start.shape[0] - 1):
        width = max(width, 2 * (tree_node_start[t + 1] - tree_node_start[t]) + 1)
    pattern = np.zeros(width, dtype=np.int64)  # per node, then per leaf (after the nodes)
    local = np.zeros(width)  # per tree-local feature: few scattered writes into `out` per tree
    # tree-major: one tree's nodes and tables stay in cache while every row of the chunk passes
    for t in range(tree_node_start.shape[0] - 1):
        n0, n1, l0 = tree_node_start[t], tree_node_start[t + 1], tree_leaf_start[t]
        f0, nf = tree_feat_start[t], tree_feat_start[t + 1] - tree_feat_start[t]
        for r in range(X.shape[0]):
            pattern[0] = 0
            for i in range(n0, n1):  # parents first
                g = node[i]
                goes = _goes_left(X[r, feature[g]], dtype[g], threshold[g], cat_start[g], cat_len[g], cat_bits)
                here = pattern[g - n0]
                bit = np.int64(1) << slot[g]
                agree = here | bit if new[g] else here
                differ = here if new[g] else here & ~bit
                pattern[left_slot[g]] = agree if goes else differ
                pattern[right_slot[g]] = differ if goes else agree
            local[:nf] = 0.0
            leaves = (n1 - n0) + 1 if n1 > n0 else 0
            for q in range(leaves):
                leaf = l0 + q
                d, fs = leaf_d[leaf], leaf_feat_start[leaf]
                base = table_offset[leaf] + pattern[(n1 - n0) + q] * d
                for j in range(d):
                    local[path_local[fs + j]] += table[base + j]
            for k in range(nf):
                out[r, tree_feats[f0 + k]] += local[k]


@njit(nogil=True, cache=True)
def _margin_rows(
    X,
    out,
    feature,
    dtype,
    threshold,
    cat_start,
    cat_len,
    cat_bits,
    left_child,
    right_child,
    tree_node_start,
    tree_leaf_start,
    leaf_value,
    constant,
    tree_depth,
):
    block = 128  # rows walked through one tree level by level: independent rows overlap in the CPU
    where = np.zeros(block, dtype=np.int64)
    for a in range(0, X.shape[0], block):
        b = min(a + block, X.shape[0])
        out[a:b] = 0.0
        for t in range(tree_node_start.shape[0] - 1):
            n0 = tree_node_start[t]
            where[:] = 0
            for _ in range(tree_depth[t]):
                for i in range(b - a):
                    node = where[i]
                    if node < 0:  # reached its leaf
                        continue
                    g = n0 + node
                    goes = _goes_left(X[a + i, feature[g]], dtype[g], threshold[g], cat_start[g], cat_len[g], cat_bits)
                    where[i] = left_child[g] if goes else right_child[g]
            l0 = tree_leaf_start[t]
            for i in range(b - a):
                out[a + i] += leaf_value[l0 + ~where[i]]
        out[a:b] += constant


def numeric_view(prepared: pd.DataFrame, booster) -> np.ndarray:
    """The rows as LightGBM's pandas path feeds them to the trees: floats, each categorical
    column as the code of its value among the booster's stored levels (missing: NaN)."""
    levels = iter(booster.pandas_categorical or [])
    columns = []
    for name in prepared.columns:
        col = prepared[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = pd.Categorical(col, categories=next(levels)).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(col.to_numpy(dtype=np.float64, na_value=np.nan))
    # row-major, as the kernels read it: transposed block by block through a small buffer
    # that stays in cache, into one output array (a fresh large array is costly to touch)
    out = np.empty((len(prepared), len(columns)))
    for a in range(0, len(prepared), 1024):
        out[a : a + 1024] = np.stack([c[a : a + 1024] for c in columns]).T
    return out


class TreeShap:
    """Exact path-dependent TreeSHAP of a binary LightGBM booster's raw margin."""

    def __init__(self, booster, max_path_features: int = MAX_PATH_FEATURES, max_table_bytes: int = MAX_TABLE_BYTES):
        self.n_features = booster.num_feature()
        self.base_value = self._constant = 0.0  # constant: the trees that are a single leaf
        cols: dict[str, list] = {
            k: []
            for k in (
                "node",
                "feature",
                "dtype",
                "threshold",
                "cat_start",
                "cat_len",
                "cat_bits",
                "slot",
                "new",
                "left_slot",
                "right_slot",
                "tree_node_start",
                "tree_leaf_start",
                "leaf_d",
                "leaf_feat_start",
                "path_local",
                "tree_feat_start",
                "tree_feats",
                "leaf_value",
                "zfrac",
                "left_child",
                "right_child",
            )
        }
        cols["tree_node_start"], cols["tree_leaf_start"], cols["tree_feat_start"] = [0], [0], [0]
        depths = []
        for tree in _trees(booster.model_to_string()):
            values = tree["leaf_value"]
            if len(values) == 1:  # a constant: all base value, no contribution
                self.base_value += float(values[0])
                self._constant += float(values[0])
                continue
            self.base_value += float(np.dot(values, tree["leaf_count"]) / tree["internal_count"][0])
            n0, n_nodes, offset = len(cols["feature"]), len(tree["split_feature"]), len(cols["cat_bits"])
            order, slots, leaves, depth = _walk(tree)
            used = sorted({int(f) for f in tree["split_feature"]})
            bounds = tree["cat_boundaries"]
            cols["cat_bits"].extend(tree["cat_threshold"].tolist())
            for g in range(n_nodes):
                cat = int(tree["threshold"][g]) if tree["decision_type"][g] & 1 else -1
                cols["feature"].append(int(tree["split_feature"][g]))
                cols["dtype"].append(int(tree["decision_type"][g]))
                cols["threshold"].append(float(tree["threshold"][g]))
                cols["cat_start"].append(offset + int(bounds[cat]) if cat >= 0 else 0)
                cols["cat_len"].append(int(bounds[cat + 1] - bounds[cat]) if cat >= 0 else 0)
                cols["slot"].append(slots[g][0])
                cols["new"].append(slots[g][1])
                for side in ("left", "right"):  # child: node index, or ~leaf; slot: leaves after the nodes
                    child = int(tree[f"{side}_child"][g])
                    cols[f"{side}_child"].append(child)
                    cols[f"{side}_slot"].append(child if child >= 0 else n_nodes + ~child)
            cols["node"].extend(n0 + g for g in order)
            for leaf, path in enumerate(leaves):
                if len(path) > max_path_features:
                    raise TableTooLarge(
                        f"a leaf has {len(path)} distinct path features (tables allow {max_path_features})"
                    )
                cols["leaf_d"].append(len(path))
                cols["leaf_feat_start"].append(len(cols["path_local"]))
                cols["leaf_value"].append(float(values[leaf]))
                for f, z in path:
                    cols["path_local"].append(used.index(f))
                    cols["zfrac"].append(z)
            cols["tree_feats"].extend(used)
            depths.append(depth)
            cols["tree_node_start"].append(n0 + n_nodes)
            cols["tree_leaf_start"].append(len(cols["leaf_d"]))
            cols["tree_feat_start"].append(len(cols["tree_feats"]))
        d = np.array(cols["leaf_d"], dtype=np.int64)
        sizes = (np.int64(1) << d) * d
        if sizes.sum() * 8 > max_table_bytes:
            raise TableTooLarge(
                f"SHAP tables would take {sizes.sum() * 8 / 2**20:,.0f} MiB (limit {max_table_bytes / 2**20:,.0f} MiB)"
            )
        types = {
            "threshold": np.float64,
            "leaf_value": np.float64,
            "zfrac": np.float64,
            "new": np.bool_,
            "cat_bits": np.uint32,
        }
        a: dict[str, np.ndarray] = {k: np.array(v, dtype=types.get(k, np.int64)) for k, v in cols.items()}
        table_offset = (np.cumsum(sizes) - sizes).astype(np.int64)
        table = np.zeros(int(sizes.sum()))
        weights = np.array(
            [
                [
                    factorial(s) * factorial(n - 1 - s) / factorial(n) if s < n else 0.0
                    for s in range(MAX_PATH_FEATURES + 1)
                ]
                for n in range(MAX_PATH_FEATURES + 1)
            ]
        )
        if len(d):
            _fill_tables(a["leaf_value"], d, a["leaf_feat_start"], a["zfrac"], table_offset, weights, table)
        self._args = (
            a["node"],
            a["feature"],
            a["dtype"],
            a["threshold"],
            a["cat_start"],
            a["cat_len"],
            a["cat_bits"],
            a["slot"],
            a["new"],
            a["left_slot"],
            a["right_slot"],
            a["tree_node_start"],
            a["tree_leaf_start"],
            d,
            a["leaf_feat_start"],
            a["path_local"],
            a["tree_feat_start"],
            a["tree_feats"],
            table_offset,
            table,
        )
        self._margin_args = (
            a["feature"],
            a["dtype"],
            a["threshold"],
            a["cat_start"],
            a["cat_len"],
            a["cat_bits"],
            a["left_child"],
            a["right_child"],
            a["tree_node_start"],
            a["tree_leaf_start"],
            a["leaf_value"],
            self._constant,
            np.array(depths, dtype=np.int64),
        )

    @property
    def table_bytes(self) -> int:
        return int(self._args[-1].nbytes)

    def contributions(self, X: np.ndarray, *, threads: int = 1, chunk_rows: int = 256) -> np.ndarray:
        """Per-row, per-feature contributions to the raw margin (rows x features); the
        base value is `self.base_value`. `X` is LightGBM's numeric view of the rows
        (`numeric_view`). Chunks run on `threads` threads (the kernels release the GIL)."""
        X = self._check(X)
        out = np.zeros(X.shape)
        _chunked(lambda a, b: _shap_rows(X[a:b], out[a:b], *self._args), len(X), threads, chunk_rows)
        return out

    def margin(self, X: np.ndarray, *, threads: int = 1, chunk_rows: int = 4096) -> np.ndarray:
        """The raw margin per row, walking the same trees with the same split rules as
        LightGBM's prediction (so it equals `booster.predict(raw_score=True)`)."""
        X = self._check(X)
        out = np.zeros(len(X))
        _chunked(lambda a, b: _margin_rows(X[a:b], out[a:b], *self._margin_args), len(X), threads, chunk_rows)
        return out

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)  # row-major: the kernels read rows
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows x {self.n_features} features, got shape {X.shape}")
        return X


def _chunked(run, n: int, threads: int, chunk_rows: int) -> None:
    spans = [(i, min(i + chunk_rows, n)) for i in range(0, n, chunk_rows)]
    if threads <= 1 or len(spans) <= 1:
        for a, b in spans:
            run(a, b)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda span: run(*span), spans))
