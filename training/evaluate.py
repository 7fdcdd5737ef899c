"""Metrics a CS team can act on, with honest uncertainty.

Ranking (ROC-AUC, PR-AUC), probability quality (Brier, log loss, expected calibration
error over 10 equal-frequency bins), and what a team with limited time gets: precision
and lift among the top 10% / 20% of accounts, and the share of at-risk MRR that falls in
the k highest-scored rows (revenue-weighted recall).

For churn targets the model's test rows are also scored per band of days to the next
renewal (`band_table`: 0-90, 91-180, 181-365, >365 or none), since a churn label by the
next renewal means something else for an account renewing next month than for one
renewing in ten months.

One engine computes every metric for rows carrying *frequency weights*: all ones for the
point estimate, bootstrap counts for a resample — so the bootstrap never copies data and
runs many resamples at once. Rows are sorted by score once; tied scores (isotonic
calibration makes many) form blocks, and "top 10%" takes a tied block fractionally,
which is the expected value under a random tie-break.

The bootstrap resamples *accounts* (all of an account's test rows together) when ids are
given: one account's snapshots on consecutive dates are not independent evidence, and
resampling rows would make the intervals too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from radar.settings import Settings, TrainingSettings

METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "lift_top10",
    "precision_top10",
    "lift_top20",
    "precision_top20",
    "mrr_capture_topk",
)
HIGHER_IS_BETTER = {m: m not in ("brier", "log_loss", "ece") for m in METRICS}
DEFAULT_K = TrainingSettings.model_fields["top_k_accounts"].default
ECE_BINS = 10  # the definition of ECE: 10 equal-frequency bins
_EPS = np.finfo(float).eps
_CELLS_PER_CHUNK = 2_000_000  # bootstrap resamples x rows held in memory at once


class _Ranked:
    """Rows sorted by descending score, with tie blocks, ready for any frequency weights."""

    def __init__(self, y, p, weight=None):
        y, p = np.asarray(y, float), np.asarray(p, float)
        mrr = np.ones(len(y)) if weight is None else np.nan_to_num(np.asarray(weight, float))
        self.order = np.argsort(-p, kind="mergesort")
        self.y, self.p, self.mrr = y[self.order], p[self.order], mrr[self.order]
        self.starts = np.flatnonzero(np.r_[True, self.p[1:] != self.p[:-1]]) if len(p) else np.array([0])
        self.block_p = self.p[self.starts] if len(p) else np.array([])

    def compute(self, freq: np.ndarray, k: int) -> dict[str, np.ndarray]:
        """Every metric for each row of `freq` (resamples x rows, in sorted order)."""
        blocks = lambda a: np.add.reduceat(a, self.starts, axis=1)
        w = blocks(freq)
        pos = blocks(freq * self.y)
        mrr_pos = blocks(freq * self.y * self.mrr)
        total, positives = w.sum(1), pos.sum(1)
        negatives = total - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            above = np.cumsum(pos, 1) - pos
            roc = np.sum((w - pos) * (above + pos / 2), 1) / (positives * negatives)
            cum_w, cum_pos = np.cumsum(w, 1), np.cumsum(pos, 1)
            precision = np.where(cum_w > 0, cum_pos / np.where(cum_w > 0, cum_w, 1), 0.0)
            ap = np.sum(pos * precision, 1) / positives
            p = np.clip(self.p, _EPS, 1 - _EPS)
            brier = np.sum(freq * (self.p - self.y) ** 2, 1) / total
            ll = -np.sum(freq * (self.y * np.log(p) + (1 - self.y) * np.log(1 - p)), 1) / total
            centre = (cum_w - w / 2) / total[:, None]
            bins = np.minimum((centre * ECE_BINS).astype(int), ECE_BINS - 1)
            resid = pos - self.block_p * w
            offset = bins + ECE_BINS * np.arange(len(freq))[:, None]
            per_bin = np.bincount(offset.ravel(), resid.ravel(), ECE_BINS * len(freq)).reshape(len(freq), -1)
            ece = np.abs(per_bin).sum(1) / total
            before = cum_w - w

            def top(t: np.ndarray, values: np.ndarray) -> np.ndarray:
                share = np.clip((t[:, None] - before) / np.where(w > 0, w, 1), 0, 1)
                return np.sum(share * values, 1)

            rate = positives / total
            out = {"roc_auc": roc, "pr_auc": ap, "brier": brier, "log_loss": ll, "ece": ece}
            for q in (10, 20):
                t = total * q / 100
                out[f"precision_top{q}"] = top(t, pos) / t
                out[f"lift_top{q}"] = out[f"precision_top{q}"] / rate
            out["mrr_capture_topk"] = top(np.minimum(k, total), mrr_pos) / mrr_pos.sum(1)
        undefined = (positives == 0) | (negatives == 0)
        for name in ("roc_auc", "pr_auc", "lift_top10", "lift_top20"):
            out[name] = np.where(undefined, np.nan, out[name])
        return out


def metrics(y, p, weight=None, k: int = DEFAULT_K) -> dict[str, float]:
    """Every metric of METRICS for labels `y` and probabilities `p`.

    weight: MRR per row, for `mrr_capture_topk` (None: every row counts 1, so it is the
    recall among the top k rows). Undefined values (one class only) are NaN.
    """
    ranked = _Ranked(y, p, weight)
    values = ranked.compute(np.ones((1, len(ranked.y))), k)
    return {name: float(values[name][0]) for name in METRICS}


def _resample_counts(codes: np.ndarray, n_units: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """Frequency weight of each row in `b` resamples of the units (accounts or rows)."""
    draws = rng.integers(0, n_units, size=(b, n_units))
    counts = np.bincount((draws + n_units * np.arange(b)[:, None]).ravel(), minlength=b * n_units)
    return counts.reshape(b, n_units)[:, codes].astype(float)


def bootstrap_ci(
    y, p, weight=None, *, groups=None, k: int = DEFAULT_K, samples: int = 300, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of every metric from `samples` resamples.

    Resamples `groups` (account ids: an account's rows stay together) when given, else
    rows. Seeded: the same seed gives the same resamples — and, for the same rows, the
    same resamples for every model, so their intervals are comparable. Binned ECE is
    biased upward by resampling (duplicated rows add noise to every bin), so its interval
    can sit slightly above the point estimate.
    """
    if samples <= 0 or len(y) == 0:
        return {name: (np.nan, np.nan) for name in METRICS}
    ranked = _Ranked(y, p, weight)
    codes = pd.factorize(np.asarray(groups))[0] if groups is not None else np.arange(len(y))
    n_units = int(codes.max()) + 1
    sorted_codes = codes[ranked.order]
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // max(len(y), n_units))
    values: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for start in range(0, samples, chunk):
        freq = _resample_counts(sorted_codes, n_units, min(chunk, samples - start), rng)
        for name, v in ranked.compute(freq, k).items():
            values[name].append(v)
    tail = (1 - level) / 2 * 100
    out = {}
    for name in METRICS:
        v = np.concatenate(values[name])
        v = v[np.isfinite(v)]
        out[name] = (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) if len(v) else (np.nan, np.nan)
    return out


@dataclass(frozen=True)
class PairedComparison:
    """Two models scored on the same rows, compared over paired bootstrap resamples.

    gain: challenger minus champion on all rows, oriented so that positive is better
    (champion minus challenger for a lower-is-better metric). probability: the share of
    resamples (with the metric defined) where the gain exceeds `margin`. gain_low/high:
    the 95% percentile interval of the gain. samples: resamples where both were defined."""

    metric: str
    challenger: float
    champion: float
    gain: float
    probability: float
    gain_low: float
    gain_high: float
    samples: int
    units: int


def paired_bootstrap(
    y,
    p_challenger,
    p_champion,
    metric: str,
    *,
    weight=None,
    groups=None,
    k: int = DEFAULT_K,
    samples: int = 1000,
    seed: int = 0,
    margin: float = 0.0,
    level: float = 0.95,
) -> PairedComparison:
    """Compare two models' probabilities on the same rows: each resample draws the
    `groups` (accounts; rows without groups) with replacement, and BOTH models are scored
    on that same resample, so the noise the two share (which accounts happen to be in
    the test period) cancels out of their difference."""
    y = np.asarray(y, float)
    a, b = _Ranked(y, p_challenger, weight), _Ranked(y, p_champion, weight)
    codes = pd.factorize(np.asarray(groups))[0] if groups is not None else np.arange(len(y))
    n_units = int(codes.max()) + 1 if len(codes) else 0
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    point_a = float(a.compute(np.ones((1, len(y))), k)[metric][0])
    point_b = float(b.compute(np.ones((1, len(y))), k)[metric][0])
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // max(len(y), n_units, 1))
    gains = []
    for start in range(0, samples if len(y) else 0, chunk):
        freq = _resample_counts(codes, n_units, min(chunk, samples - start), rng)  # rows in their own order
        gains.append(sign * (a.compute(freq[:, a.order], k)[metric] - b.compute(freq[:, b.order], k)[metric]))
    g = np.concatenate(gains) if gains else np.array([])
    g = g[np.isfinite(g)]
    tail = (1 - level) / 2 * 100
    return PairedComparison(
        metric=metric,
        challenger=point_a,
        champion=point_b,
        gain=sign * (point_a - point_b),
        probability=float(np.mean(g > margin + 1e-12)) if len(g) else float("nan"),
        gain_low=float(np.percentile(g, tail)) if len(g) else float("nan"),
        gain_high=float(np.percentile(g, 100 - tail)) if len(g) else float("nan"),
        samples=len(g),
        units=n_units,
    )


def scorecard(y, p, settings: Settings, *, weight=None, groups=None, segments=None) -> dict[str, float]:
    """Flat metrics with 95% intervals, overall and per segment: "roc_auc",
    "roc_auc_ci_low", "roc_auc_ci_high", "segment.smb.roc_auc", ... Undefined values
    (a segment without positives) are left out."""
    cfg = settings.training
    y, p = np.asarray(y), np.asarray(p)
    parts = {"": np.ones(len(y), bool)}
    if segments is not None:
        seg = pd.Series(segments).astype(object).where(pd.notna(segments), "unknown").to_numpy()
        parts.update({f"segment.{s}.": seg == s for s in sorted(set(seg), key=str)})
    out: dict[str, float] = {}
    for prefix, mask in parts.items():
        sub = lambda a: None if a is None else np.asarray(a)[mask]
        point = metrics(y[mask], p[mask], sub(weight), cfg.top_k_accounts)
        ci = bootstrap_ci(
            y[mask],
            p[mask],
            sub(weight),
            groups=sub(groups),
            k=cfg.top_k_accounts,
            samples=cfg.bootstrap_samples,
            seed=cfg.seed,
        )
        for name in METRICS:
            if np.isfinite(point[name]):
                out[f"{prefix}{name}"] = point[name]
                low, high = ci[name]
                if np.isfinite(low):
                    out[f"{prefix}{name}_ci_low"], out[f"{prefix}{name}_ci_high"] = low, high
    return out


def size_warnings(table, split, settings: Settings, test_metrics: dict[str, float] | None = None) -> list[str]:
    """Plain-language warnings when the data are too small for stable figures.

    table: a TrainingTable; split: the Split the figures come from; test_metrics: the
    model's `scorecard` on the test rows, whose intervals give the stated uncertainty.
    """
    cfg = settings.training
    y, ids = table.y, table.ids.to_numpy()
    what = f"positive labels ({table.target.positive})"
    out = []
    n_accounts = len(np.unique(ids[split.train]))
    if n_accounts < cfg.min_accounts:
        out.append(
            f"Only {n_accounts} accounts in the training data (fewer than {cfg.min_accounts}): the model "
            "has seen few customers, so its ranking may change a lot as data grows; retrain often and "
            "read the top of the list as suggestions to check, not verdicts."
        )
    n_train = int(y[split.train].sum())
    if n_train < cfg.min_positives:
        out.append(
            f"Only {n_train} {what} in the training data (fewer than {cfg.min_positives}): the model can "
            "learn only the strongest patterns; expect weak, unstable driver explanations."
        )
    n_cal = int(y[split.calibration].sum())
    if n_cal < cfg.min_positives:
        out.append(
            f"Only {n_cal} {what} in the calibration period (fewer than {cfg.min_positives}): the "
            "probabilities rest on few events; trust the order of accounts more than the exact percentages."
        )
    n_test = int(y[split.test].sum())
    if n_test < cfg.min_positives:
        m = test_metrics or {}
        spread = [
            f"{label} by about ±{(m[f'{k}_ci_high'] - m[f'{k}_ci_low']) / 2:.2f}"
            for k, label in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"))
            if f"{k}_ci_low" in m
        ]
        detail = (
            ": " + " and ".join(spread) + " (half the 95% bootstrap interval)"
            if spread
            else " (no bootstrap interval: bootstrap_samples = 0)"
        )
        out.append(
            f"Only {n_test} {what} in the test data, so the test figures are uncertain{detail}; "
            "use them to rank accounts, not to promise a rate."
        )
    return out


# Bands of days to the next renewal (the contract end of a line in force at as_of); rows
# without one (only open-ended lines) join the last band.
RENEWAL_BANDS = (("0-90", 0, 90), ("91-180", 91, 180), ("181-365", 181, 365), (">365/none", 366, None))
BAND_COLUMNS = [
    "band",
    "rows",
    "positives",
    "observed_rate",
    "predicted_rate",
    "roc_auc",
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "pr_auc",
    "pr_auc_ci_low",
    "pr_auc_ci_high",
    "ece",
    "ece_ci_low",
    "ece_ci_high",
]


def renewal_band(days) -> np.ndarray:
    """The RENEWAL_BANDS label of each value of days to the next renewal (missing: the last band)."""
    d = pd.to_numeric(pd.Series(days), errors="coerce").to_numpy(float)
    out = np.full(len(d), RENEWAL_BANDS[-1][0], dtype=object)
    for name, _, high in reversed(RENEWAL_BANDS[:-1]):  # by upper bound: 90.5 days is in 91-180
        out[d <= high] = name
    return out


def band_table(y, p, days, settings: Settings, *, groups=None) -> pd.DataFrame:
    """Ranking and calibration per band of days to the next renewal: one row per band of
    RENEWAL_BANDS (empty bands included, with 0 rows), with the observed and mean predicted
    rate, ROC-AUC, PR-AUC and ECE, and their 95% bootstrap intervals (resampling `groups`,
    the accounts, as `scorecard` does). Undefined values (a band with one class) are NaN."""
    cfg = settings.training
    y, p = np.asarray(y), np.asarray(p, float)
    bands = renewal_band(days)
    rows = []
    for name, _, _ in RENEWAL_BANDS:
        mask = bands == name
        row: dict = {"band": name, "rows": int(mask.sum()), "positives": int(y[mask].sum())}
        if mask.any():
            row["observed_rate"] = float(y[mask].mean())
            row["predicted_rate"] = float(p[mask].mean())
            point = metrics(y[mask], p[mask], None, cfg.top_k_accounts)
            ci = bootstrap_ci(
                y[mask],
                p[mask],
                groups=None if groups is None else np.asarray(groups)[mask],
                k=cfg.top_k_accounts,
                samples=cfg.bootstrap_samples,
                seed=cfg.seed,
            )
            for m in ("roc_auc", "pr_auc", "ece"):
                row[m] = point[m]
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = ci[m] if np.isfinite(point[m]) else (np.nan, np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=BAND_COLUMNS)
