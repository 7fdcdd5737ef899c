"""Serving benchmark: /score latency and throughput over HTTP, batch scoring throughput, and
the in-process reference on the same rows, so that overheads show as ratios.

    uv run python bench/serve_bench.py                 # 100k training rows, 50k batch accounts
    uv run python bench/serve_bench.py --workers 2 --repeat 3
    uv run python bench/serve_bench.py --trees 300     # fixed-size models (no early stopping)

Models: the renewal and upsell models that training produces at the benchmark size —
`train_and_log` with the default settings (no bootstrap intervals) on `--rows` snapshot
rows (a real snapshot table stacked as new accounts, as in bench/train_bench.py),
registered and promoted in a throwaway sqlite MLflow store under bench/out/ (reused on
later runs; `--retrain` redoes it). `--trees N` trains exactly N trees per model instead
(early stopping off), e.g. the 300-tree, 31-leaf model the serving issue measured. `radar serve` then starts on 127.0.0.1 with those
champions and the load is bounded: a fixed number of requests per scenario and at most
`--max-seconds` each, at 1 and at 32 concurrent connections, with 1 and with 100
accounts per request, explanations included (the service always explains). Bodies are
JSON-encoded before the clock starts (encoding is the caller's work, not the service's);
the client still runs on the same machine and reads every response, taking CPU from the
server: figures are conservative.

Floor: bench/floor_service.py, a BentoML service with the same request contract that
answers a recorded response without scoring, measured the same way. What it costs is
BentoML + uvicorn + the socket + validation + the client for that payload: the part of a
request no scoring code can remove.

In-process references on the same rows, single-threaded as on the request path:
`score_frame` (the function the service calls: everything but HTTP, validation and JSON),
the bare model work inside it (prepare + margin + TreeSHAP contributions for both models,
the served kernels), and LightGBM's own direct predict + pred_contrib for both models. Batch: `score_frame` on `--batch`
accounts with probabilities only and with top drivers (explain_threads from settings);
the explanations are checked to add up to the model margin for every row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_bench import OUT, base_snapshots, stacked  # noqa: E402


def project(rows: int, retrain: bool, trees: int | None = None):
    """(settings, config file, snapshot frame) with champions trained on `rows` rows
    (exactly `trees` trees per model when given)."""
    from radar.settings import load_settings
    from serving.scoring.champions import NoChampion, champion_versions
    from training.dataset import from_snapshots
    from training.outcome import TARGETS
    from training.promote import promote
    from training.track import train_and_log

    root = OUT / (f"serve-{rows}" if trees is None else f"serve-{rows}-{trees}trees")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "radar.toml"
    fixed = "" if trees is None else (f"\n[training.lightgbm]\nn_estimators = {trees}\nearly_stopping_rounds = 0\n")
    config.write_text(
        f'output_dir = "{root / "out"}"\n\n[training]\n'
        f'tracking_uri = "sqlite:///{root / "mlflow.db"}"\n'
        f'artifact_location = "{root / "artifacts"}"\nbootstrap_samples = 0\n{fixed}'
    )
    settings = load_settings(config)
    data = stacked(base_snapshots(None), rows)
    frame = pd.read_parquet(data)
    try:
        if retrain:
            raise NoChampion("retrain asked")
        champion_versions(settings)
    except NoChampion:
        for target in ("renewal", "upsell"):
            t0 = time.perf_counter()
            _, tracked = train_and_log(from_snapshots(frame, TARGETS[target], settings), settings, source=data)
            promote(tracked.model_name, settings, version=tracked.version, force=True, reason="benchmark")
            print(f"trained {target} on {len(frame):,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
    return settings, config, frame


def describe(models) -> str:
    parts = []
    for target in ("renewal", "upsell"):
        booster = getattr(models, target).model.booster
        dump = booster.dump_model()["tree_info"]
        leaves = [t["num_leaves"] for t in dump]

        def depth(node):
            return 0 if "leaf_value" in node else 1 + max(depth(node["left_child"]), depth(node["right_child"]))

        parts.append(
            f"{target}: {len(dump)} trees, <= {max(leaves)} leaves, depth <= "
            f"{max(depth(t['tree_structure']) for t in dump)}"
        )
    return "; ".join(parts)


JSON = {"content-type": "application/json"}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def records(frame: pd.DataFrame, names: list[str]) -> list[dict]:
    out = []
    for row in frame[["account_id", *names]].to_dict("records"):
        rec = {"account_id": str(row["account_id"])}
        for k in names:
            v = row[k]
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                continue
            rec[k] = v if isinstance(v, str) else float(v)
        out.append(rec)
    return out


async def load(base: str, bodies: list[bytes], connections: int, requests: int, max_seconds: float) -> dict:
    import httpx

    latencies, statuses = [], []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    deadline = time.perf_counter() + max_seconds
    counter = iter(range(requests))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker():
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    r = await client.post("/score", content=bodies[i % len(bodies)], headers=JSON)
                    statuses.append(r.status_code)
                except httpx.HTTPError:
                    statuses.append(0)
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        wall = time.perf_counter() - t0
    ok = sum(200 <= s < 300 for s in statuses)
    return {
        "n": len(statuses),
        "ok": ok,
        "non2xx": len(statuses) - ok,
        "wall": wall,
        "p50": pct(latencies, 50) * 1e3,
        "p99": pct(latencies, 99) * 1e3,
        "rps": ok / wall if wall else 0.0,
    }


def start_server(config: Path, workers: int, floor_responses: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`radar serve` with the benchmark's champions; with `floor_responses`, the floor
    service (bench/floor_service.py) answering the responses recorded there instead."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    env["RADAR_SERVING__WORKERS"] = str(workers)
    bin_dir = Path(sys.executable).parent
    if floor_responses is None:
        command, name = [str(bin_dir / "radar"), "--config", str(config), "serve", "--port", str(port)], "server"
    else:
        env.update(
            RADAR_CONFIG_FILE=str(config), RADAR_FLOOR_RESPONSES=str(floor_responses), RADAR_FLOOR_WORKERS=str(workers)
        )
        command = [
            str(bin_dir / "bentoml"),
            "serve",
            "floor_service:Floor",
            "--working-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        name = "floor"
    log = open(config.parent / f"{name}.log", "wb")
    proc = subprocess.Popen(
        command, cwd=config.parent, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited: see {config.parent / f'{name}.log'}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"{name} was not ready within 180 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="Training rows (snapshot rows).")
    ap.add_argument("--batch", type=int, default=50_000, help="Accounts scored in the batch measurement.")
    ap.add_argument("--workers", type=int, default=2, help="Service worker processes (the default setting).")
    ap.add_argument("--repeat", type=int, default=3, help="Repeats of each in-process and batch measurement.")
    ap.add_argument("--requests", type=int, default=2000, help="Requests per single-account scenario.")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="Time cap per HTTP scenario.")
    ap.add_argument("--retrain", action="store_true", help="Train and register the models again.")
    ap.add_argument(
        "--trees",
        type=int,
        default=None,
        help="Train exactly this many trees per model (early stopping off); default: as training does.",
    )
    args = ap.parse_args()

    import httpx

    from features.snapshot import feature_registry
    from serving.scoring.champions import load_champions
    from serving.scoring.score import score_frame

    settings, config, frame = project(args.rows, args.retrain, args.trees)
    models = load_champions(settings)
    print(f"models: {describe(models)}", flush=True)
    names = [s.name for s in feature_registry(settings)]
    latest = frame.sort_values("as_of").groupby("account_id", sort=False).tail(1)
    pool = latest.sample(n=min(len(latest), 2000), random_state=1).reset_index(drop=True)
    request_cfg = settings.serving.model_copy(update={"explain_threads": settings.serving.request_threads})

    # --- in-process reference, single-threaded like the request path -----------------------
    def bare(rows: pd.DataFrame):
        for target in ("renewal", "upsell"):
            explainer = models.explainer(target)
            inputs = explainer.rows(rows)
            explainer.margin(inputs, threads=1)
            explainer.contributions(inputs, threads=1)

    def lightgbm_direct(rows: pd.DataFrame):
        for target in ("renewal", "upsell"):
            model = getattr(models, target).model
            prepared = model.prepare(rows)
            model.booster.predict(prepared, raw_score=True, num_threads=1)
            model.booster.predict(prepared, pred_contrib=True, num_threads=1)

    one, hundred = pool.iloc[:1], pool.iloc[:100]
    score_frame(hundred, models, settings, serving=request_cfg)  # warm-up (JIT, caches)
    reference = {}
    for label, rows, n in (("1 account", one, 200), ("100 accounts", hundred, 30)):
        reference[label] = {
            "score_frame": statistics.median(
                timed(lambda: score_frame(rows, models, settings, serving=request_cfg), n)
            ),
            "bare": statistics.median(timed(lambda: bare(rows), n)),
            "lightgbm": statistics.median(timed(lambda: lightgbm_direct(rows), n)),
        }

    # --- HTTP ----------------------------------------------------------------------------------
    def encoded(rows: pd.DataFrame) -> bytes:
        return json.dumps({"accounts": records(rows, names)}).encode()

    singles = [encoded(pool.iloc[[i]]) for i in range(len(pool))]
    hundreds = [encoded(pool.iloc[i : i + 100]) for i in range(0, len(pool) - 99, 100)]
    scenarios = (("1 account", singles, args.requests), ("100 accounts", hundreds, args.requests // 10))
    recorded = config.parent / "floor-responses"
    recorded.mkdir(exist_ok=True)
    http, floor = {}, {}
    proc, base = start_server(config, args.workers)
    try:
        asyncio.run(load(base, singles, 4, 100, 30))  # warm-up
        for n, body in ((1, singles[0]), (100, hundreds[0])):  # what the floor service will answer
            (recorded / f"{n}.json").write_bytes(httpx.post(f"{base}/score", content=body, headers=JSON).content)
        for label, bodies, per in scenarios:
            for connections in (1, 32):
                r = http[(label, connections)] = asyncio.run(load(base, bodies, connections, per, args.max_seconds))
                print(
                    f"  {label:>12} x {connections:>2} conns: {r['n']} requests, p50 {r['p50']:.1f} ms, "
                    f"p99 {r['p99']:.1f} ms, {r['rps']:.0f} ok/s, non-2xx {r['non2xx']}",
                    flush=True,
                )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    proc, base = start_server(config, args.workers, floor_responses=recorded)
    try:
        asyncio.run(load(base, singles, 4, 100, 30))  # warm-up
        for label, bodies, per in scenarios:
            r = floor[label] = asyncio.run(load(base, bodies, 1, per, args.max_seconds))
            print(
                f"  floor {label:>12} x  1 conn:  p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, non-2xx {r['non2xx']}",
                flush=True,
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    # --- batch -----------------------------------------------------------------------------------
    batch = latest.head(args.batch)
    if len(batch) < args.batch:  # fewer accounts than asked: stack rows as more accounts
        reps = -(-args.batch // len(batch))
        batch = pd.concat([batch.assign(account_id=batch.account_id + f"#{k}") for k in range(reps)]).head(args.batch)
    batch = batch.reset_index(drop=True)
    probs = timed(lambda: score_frame(batch, models, settings, explain=False), args.repeat)
    full_result = {}

    def explained():
        full_result["frame"] = score_frame(batch, models, settings, explain=True)

    drivers = timed(explained, args.repeat)
    worst = 0.0
    for target in ("renewal", "upsell"):  # explanations add up to the margin, every row
        explainer = models.explainer(target)
        inputs = explainer.rows(batch)
        contrib, base_value = explainer.contributions(inputs, threads=settings.serving.explain_threads)
        margin = full_result["frame"][f"{target}_margin"].to_numpy()
        worst = max(worst, float(np.max(np.abs(contrib.sum(axis=1) + base_value - margin))))
    assert worst < 1e-6, f"contributions + base value differ from the margin by {worst}"

    # --- which exact TreeSHAP: tables (served), LightGBM pred_contrib, the shap package -------------
    sample = batch.head(1000)
    model = models.renewal.model
    explainer = models.explainer("renewal")
    inputs = explainer.rows(sample)
    prepared = model.prepare(sample)
    methods = {
        "treeshap tables (served)": lambda: explainer.contributions(inputs, threads=1),
        "lightgbm pred_contrib": lambda: model.booster.predict(prepared, pred_contrib=True, num_threads=1),
    }
    try:
        import shap

        tree = shap.TreeExplainer(model.booster)
        methods["shap TreeExplainer"] = lambda: tree.shap_values(prepared)
    except Exception as exc:
        print(f"shap package skipped: {exc}")
    per_method = {name: statistics.median(timed(fn, args.repeat)) for name, fn in methods.items()}

    # --- report ----------------------------------------------------------------------------------
    print(
        f"\nserving benchmark: models trained on {len(frame):,} rows; {args.workers} worker(s); "
        f"{os.cpu_count()} cores; client on the same machine"
    )
    print(f"{'scenario':<28}{'p50 ms':>9}{'p99 ms':>9}{'ok/s':>8}{'non-2xx':>9}{'floor p50':>11}")
    for (label, connections), r in http.items():
        floor_p50 = f"{floor[label]['p50']:>11.1f}" if connections == 1 else f"{'':>11}"
        print(
            f"{label + f' x {connections} conns':<28}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['rps']:>8.0f}"
            f"{r['non2xx']:>9}{floor_p50}"
        )
    print("in-process references (1 thread, medians) and the 1-connection p50 as a multiple of each:")
    for label, ref in reference.items():
        p50 = http[(label, 1)]["p50"]
        print(
            f"  {label:<14} "
            + "; ".join(
                f"{name} {ref[key] * 1e3:.2f} ms ({p50 / (ref[key] * 1e3):.2f}x)"
                for key, name in (
                    ("bare", "served kernels: margin + TreeSHAP"),
                    ("lightgbm", "LightGBM predict + pred_contrib"),
                    ("score_frame", "score_frame"),
                )
            )
        )
        print(f"  {'':<14} HTTP p50 - floor p50 = {p50 - floor[label]['p50']:.1f} ms of scoring work in the service")
    n = len(batch)
    print(
        f"batch {n:,} accounts, probabilities only: median {statistics.median(probs):.2f} s "
        f"= {n / statistics.median(probs):,.0f} accounts/s ({args.repeat} runs)"
    )
    print(
        f"batch {n:,} accounts, with top drivers:    median {statistics.median(drivers):.2f} s "
        f"= {n / statistics.median(drivers):,.0f} accounts/s (explain_threads "
        f"{settings.serving.explain_threads}); contributions + base = margin within {worst:.1e}"
    )
    print(
        "exact TreeSHAP of the renewal model, 1,000 rows, 1 thread: "
        + "; ".join(f"{name} {sec * 1e3:.0f} ms" for name, sec in per_method.items())
    )
    print(
        "targets: 1 account p50 <= 10 ms, p99 <= 50 ms; 32 conns >= 100 ok/s with no non-2xx; "
        "100 accounts within 1.3x in-process; batch >= 50,000/s probabilities, >= 1,000/s with drivers"
    )


if __name__ == "__main__":
    main()
