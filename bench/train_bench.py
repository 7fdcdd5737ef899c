"""Training benchmark: wall time to train both targets on N snapshot rows, and peak memory.

    uv run python bench/train_bench.py --rows 100000 --repeat 3

The rows come from a real snapshot table (default: the workspace's out/snapshots.parquet;
without one, the sample workspace is generated, ingested and built once under
bench/out/). Copies of it are stacked as new accounts, with every numeric feature
multiplied by a little seeded noise, until there are N rows (cached under bench/out/).

Each repeat runs in a fresh child process limited to `--threads` threads (LightGBM
always trains on 2): `train_and_evaluate` for renewal and upsell with the default
settings (bootstrap intervals, rolling backtest, plots), then — unless `--no-track` —
logging and registering both runs in a throwaway sqlite MLflow store. Prints the median
(min, max) wall time per step and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LABELS = ("churned", "expanded")


def base_snapshots(path: Path | None) -> Path:
    """A real snapshot table: `path`, the workspace's, or the sample workspace's (built once)."""
    for candidate in (path, ROOT / "out" / "snapshots.parquet"):
        if candidate is not None and candidate.exists():
            return candidate
    built = OUT / "train-sample" / "out" / "snapshots.parquet"
    if built.exists():
        return built
    from features.build import build_features
    from features.ingest import ingest_workspace
    from features.sampledata import generate_workspace
    from radar.settings import load_settings

    print("no snapshot table: generating, ingesting and building the sample workspace (once)")
    ws = OUT / "train-sample" / "workspace"
    generate_workspace(ws)
    settings = load_settings(output_dir=built.parent)
    ingest_workspace(ws, settings)
    build_features(settings)
    return built


def stacked(base: Path, rows: int, seed: int = 0) -> Path:
    """`rows` snapshot rows: copies of `base` as new accounts, numeric features perturbed."""
    out = OUT / f"train-{rows}.parquet"
    if out.exists() and out.stat().st_mtime > base.stat().st_mtime:
        return out
    frame = pd.read_parquet(base)
    rng = np.random.default_rng(seed)
    numeric = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]) and c not in LABELS]
    copies, total, k = [], 0, 0
    while total < rows:
        part = frame.copy() if k == 0 else frame.assign(account_id=frame.account_id + f"~{k}")
        if k:
            noise = np.exp(rng.normal(0.0, 0.05, size=(len(part), len(numeric))))
            part[numeric] = part[numeric].to_numpy() * noise
        copies.append(part)
        total += len(part)
        k += 1
    pd.concat(copies, ignore_index=True).head(rows).to_parquet(out, index=False)
    return out


CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import pandas as pd
from mlflow import MlflowClient
from radar.settings import load_settings
from training.dataset import from_snapshots
from training.outcome import TARGETS
from training.pipeline import train_and_evaluate
from training.track import log_training_run

path, track = Path(sys.argv[1]), sys.argv[2] == "1"
tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
settings = load_settings(output_dir=tmp, training={"tracking_uri": f"sqlite:///{tmp}/mlflow.db",
                                                   "artifact_location": str(tmp / "artifacts")})
if track:
    MlflowClient(f"sqlite:///{tmp}/mlflow.db").search_experiments()  # schema set-up is not training
t0 = time.perf_counter()
frame = pd.read_parquet(path)
seconds = {"read": time.perf_counter() - t0}
features = 0
for name in ("renewal", "upsell"):
    t = time.perf_counter()
    table = from_snapshots(frame, TARGETS[name], settings)
    outcome = train_and_evaluate(table, settings, plot_dir=tmp / "plots" / name)
    seconds[f"train {name}"] = time.perf_counter() - t
    features = len(table.features)
    if track:
        t = time.perf_counter()
        log_training_run(outcome, table, settings, source=path)
        seconds[f"log {name}"] = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "rows": len(frame), "features": features,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="Thread limit of the child (BLAS/OpenMP).")
    ap.add_argument(
        "--snapshots", type=Path, default=None, help="Snapshot table to stack (default: out/snapshots.parquet)."
    )
    ap.add_argument("--no-track", action="store_true", help="Time training only, without MLflow logging.")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = stacked(base_snapshots(args.snapshots), args.rows)
    threads = str(args.threads)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OMP_WAIT_POLICY": "PASSIVE",  # as the radar entry point sets it
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    env = {k: v for k, v in env.items() if not k.startswith("RADAR_")}  # default settings only
    runs = []
    for i in range(args.repeat):
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), "0" if args.no_track else "1"],
            cwd=OUT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  run {i + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in runs[-1]["seconds"].items()), flush=True)
    first = runs[0]
    print(
        f"train both targets on {first['rows']:,} snapshot rows x {first['features']} features, "
        f"{args.threads} threads, {args.repeat} runs (default settings)"
    )
    steps = list(first["seconds"])
    totals = {"train both targets": [sum(v for k, v in r["seconds"].items() if k.startswith("train")) for r in runs]}
    if not args.no_track:
        totals["train + log both"] = [sum(v for k, v in r["seconds"].items() if k != "read") for r in runs]
    for name, values in [*((s, [r["seconds"][s] for r in runs]) for s in steps), *totals.items()]:
        print(
            f"  {name:<20} median {statistics.median(values):6.1f} s   min {min(values):6.1f}   max {max(values):6.1f}"
        )
    rss = [r["maxrss_mib"] for r in runs]
    print(f"  peak RSS             median {statistics.median(rss):6.0f} MiB max {max(rss):6.0f}")


if __name__ == "__main__":
    main()
