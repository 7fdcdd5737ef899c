"""Real, small served models for the serving tests.

`serving_snapshots` (features.sampledata.snapshots) draws snapshot rows with every registry column, whose churn and
expansion follow a few features (adoption, login trend, onboarding, NPS, segment) with
missing values and categories; `scoring_models` trains the renewal and upsell models on
them with the training package's own `fit_lightgbm` (booster + calibrator), as served.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.sampledata.snapshots import synthetic_snapshots
from radar.settings import Settings
from serving.scoring.score import ScoringModels, ServedModel
from training.dataset import from_snapshots
from training.model import fit_lightgbm
from training.outcome import TARGETS
from training.split import Split


def serving_snapshots(n_accounts: int = 400, n_dates: int = 4, seed: int = 7) -> pd.DataFrame:
    return synthetic_snapshots(n_accounts, n_dates, seed)


def train_models(frame: pd.DataFrame, settings: Settings) -> ScoringModels:
    served = {}
    for target in ("renewal", "upsell"):
        table = from_snapshots(frame, TARGETS[target], settings)
        rows = np.arange(len(table.frame))
        split = Split(train=rows[rows % 4 != 0], calibration=rows[rows % 4 == 0], test=rows[:0])
        model = fit_lightgbm(table, split, settings)
        served[target] = ServedModel(model, TARGETS[target].model_name, "7" if target == "renewal" else "3")
    return ScoringModels(served["renewal"], served["upsell"])


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        training={
            "bootstrap_samples": 0,
            "lightgbm": {"n_estimators": 80, "min_child_samples": 10, "early_stopping_rounds": 80},
        }
    )


@pytest.fixture(scope="session")
def snapshots() -> pd.DataFrame:
    return serving_snapshots()


@pytest.fixture(scope="session")
def models(snapshots, settings) -> ScoringModels:
    return train_models(snapshots, settings)


@pytest.fixture(scope="session")
def latest(snapshots) -> pd.DataFrame:
    """The accounts of the latest as_of, as batch scoring would see them."""
    last = max(snapshots.as_of)
    return snapshots[snapshots.as_of == last].reset_index(drop=True)


@pytest.fixture(scope="session")
def scored_at():
    from datetime import datetime

    return datetime(2025, 5, 1, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def as_of_dates(snapshots) -> list[date]:
    return sorted(set(snapshots.as_of))


# --- a served project: champion models in a real MLflow store, a workspace, a real server ---

SERVED_TOKEN = "test-token-7f3a"
SERVER_READY_SECONDS = 300  # a worker starts in ~10 s alone, but several minutes on a machine busy with other tests


@pytest.fixture(scope="session")
def served_project(tmp_path_factory):
    """A project directory as `radar` leaves it after `build-features` and `train --promote`:
    radar.toml, out/radar.duckdb with a `snapshots` table (16 month-ends, 250 accounts) and a
    sqlite MLflow store whose radar-renewal and radar-upsell champions were trained on them
    by the training pipeline. Returns (directory, settings)."""
    import duckdb

    from radar.settings import load_settings
    from training.dataset import from_snapshots
    from training.promote import promote
    from training.track import train_and_log

    root = tmp_path_factory.mktemp("served")
    (root / "radar.toml").write_text(
        f'output_dir = "{root / "out"}"\n\n'
        "[training]\n"
        f'tracking_uri = "sqlite:///{root / "mlruns" / "mlflow.db"}"\n'
        f'artifact_location = "{root / "mlruns" / "artifacts"}"\n'
        "bootstrap_samples = 0\ntest_periods = 2\ncalibration_periods = 2\nbacktest_folds = 1\n"
        "min_accounts = 10\nmin_positives = 5\nregister_min_test_positives = 1\n"
        "[training.lightgbm]\nn_estimators = 60\nmin_child_samples = 10\n\n"
        "[serving]\nmax_batch = 50\n"
    )
    settings = load_settings(root / "radar.toml")
    frame = serving_snapshots(n_accounts=250, n_dates=16, seed=11)
    (root / "out").mkdir()
    source = root / "out" / "snapshots.parquet"
    frame.to_parquet(source)
    con = duckdb.connect(str(settings.database_path))
    con.execute("CREATE TABLE snapshots AS SELECT * FROM frame")
    con.close()
    for target in ("renewal", "upsell"):
        _, tracked = train_and_log(from_snapshots(frame, TARGETS[target], settings), settings, source=source)
        promote(tracked.model_name, settings)
    return root, settings


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def radar_command() -> list[str]:
    """The `radar` entry point of this environment."""
    import shutil
    import sys
    from pathlib import Path

    found = Path(sys.executable).with_name("radar")
    return [str(found)] if found.exists() else [shutil.which("radar") or "radar"]


@pytest.fixture(scope="session")
def radar_cli() -> list[str]:
    return radar_command()


@contextmanager
def running_server(root, token: str | None = SERVED_TOKEN):
    """`radar serve` on 127.0.0.1 for the project in `root` (its radar.toml), with a bearer
    token when given. Yields .base (URL), .log (the server's output file), .headers (with the
    token) and .token; stops the server (its process group) at exit."""
    import os
    import signal
    import subprocess
    import time

    import httpx

    port = free_port()
    log_path = root / "server.log"
    env = dict(os.environ)
    env.pop("RADAR_CONFIG_FILE", None)
    env.pop("RADAR_SERVING__API_TOKEN", None)
    if token is not None:
        env["RADAR_SERVING__API_TOKEN"] = token
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                *radar_command(),
                "--config",
                str(root / "radar.toml"),
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
            ],  # one process: quicker to start, same code
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_READY_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"radar serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"radar serve not ready after {SERVER_READY_SECONDS} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        from types import SimpleNamespace

        yield SimpleNamespace(
            base=base, log=log_path, token=token, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def server(served_project):
    """`radar serve` on 127.0.0.1 for the served project, with a bearer token set.
    Yields .base (URL), .log (the server's output file) and .headers (with the token)."""
    root, _ = served_project
    with running_server(root) as running:
        yield running


# --- the web pages' project: the served project plus feedback evidence and stored alerts ---

UI_TEXTS = (  # (days before the latest snapshot, channel, text); every account gets them, odd ones twice
    (4, "chat", "We are looking at other vendors. Honestly it is too expensive for what we use."),
    (9, "call", "Onboarding was smooth and the team was up and running in a week."),
    (20, "email", "We need more seats for the new team."),
)


@pytest.fixture(scope="session")
def ui_project(served_project, tmp_path_factory):
    """A copy of the served project's workspace whose accounts have feedback quotes (the
    `evidence` table, made by the real taxonomy matcher from a few texts per account) and
    stored alerts (`radar alerts`' run_alerts). It reads the served project's MLflow store.
    Returns (directory, settings)."""
    import shutil

    import duckdb

    from features.text.evidence import extract_evidence
    from radar.settings import load_settings
    from serving.scoring.champions import load_champions
    from serving.workflow.alerts import run_alerts

    source, served = served_project
    root = tmp_path_factory.mktemp("ui")
    (root / "out").mkdir()
    shutil.copy(served.database_path, root / "out" / served.database_path.name)
    config = (
        (source / "radar.toml")
        .read_text()
        .replace(f'output_dir = "{source / "out"}"', f'output_dir = "{root / "out"}"')
    )
    (root / "radar.toml").write_text(config)
    settings = load_settings(root / "radar.toml")
    con = duckdb.connect(str(settings.database_path))
    accounts, latest = zip(
        *con.execute("SELECT account_id, max(as_of) FROM snapshots GROUP BY 1 ORDER BY 1").fetchall()
    )
    rows = []
    for i, account in enumerate(accounts):
        for repeat in range(2 if i % 2 else 1):
            for days, channel, text in UI_TEXTS:
                when = pd.Timestamp(max(latest)) - pd.Timedelta(days=days + 2 * repeat, hours=-9)
                rows.append(
                    {
                        "source_table": "feedback",
                        "source_id": f"{account}-{days}-{repeat}",
                        "account_id": account,
                        "occurred_at": when,
                        "channel": channel,
                        "text": text,
                        "language": "en",
                    }
                )
    evidence = extract_evidence(pd.DataFrame(rows))
    con.register("incoming_evidence", evidence)
    con.execute("CREATE TABLE evidence AS SELECT * FROM incoming_evidence")
    con.close()
    run_alerts(settings, load_champions(settings))
    return root, settings


@pytest.fixture(scope="session")
def ui_server(ui_project):
    """`radar serve` for the web pages' project, with the bearer token set."""
    root, _ = ui_project
    with running_server(root) as running:
        yield running


def workspace_with_red_quotes(
    source: Path,
    target: Path,
    account: str,
    days_before: tuple[int, int],
    sentiment: float,
    ignore: tuple[str, ...] = (),
) -> date:
    """A copy of the workspace folder `source` at `target` whose evidence is two red
    pricing quotes of `account`, in two conversations (a call and an e-mail) the given
    days before the latest snapshot; returns that snapshot date."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore) if ignore else None)
    with duckdb.connect(str(target / "radar.duckdb")) as con:
        latest = pd.Timestamp(con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0])
        rows = [
            (account, latest - pd.Timedelta(days=d, hours=-9), ch, conv, text, "pricing_perception", "red", sentiment)
            for d, ch, conv, text in [
                (days_before[0], "call", "feedback:f1", "Honestly it is too expensive for us."),
                (days_before[1], "email", "support_tickets:t9", "The price increase is a problem."),
            ]
        ]
        con.register(
            "quotes",
            pd.DataFrame(
                rows,
                columns=[
                    "account_id",
                    "occurred_at",
                    "channel",
                    "conversation_id",
                    "sentence",
                    "bucket",
                    "polarity",
                    "sentiment",
                ],
            ),
        )
        con.execute("CREATE TABLE evidence AS SELECT * FROM quotes")
    return latest.date()


@pytest.fixture(scope="session")
def red_quotes_workspace():
    """`workspace_with_red_quotes`, as a fixture (test modules cannot import conftest)."""
    return workspace_with_red_quotes


@pytest.fixture(scope="session")
def serve_project():
    """`running_server`, as a fixture: `with serve_project(root) as server: ...`."""
    return running_server


def copy_of_served_project(served_project, root: Path, serving_toml: str = "") -> Settings:
    """A project at `root` with copies of the served project's workspace and MLflow store
    (moving aliases or registering versions there leaves the shared one alone; the copied
    versions still read their model files from the served project, never written), plus
    `serving_toml` lines in its [serving] section. Returns its settings."""
    from radar.settings import load_settings

    source, served = served_project
    (root / "out").mkdir(parents=True)
    (root / "mlruns").mkdir()
    shutil.copy(served.database_path, root / "out" / served.database_path.name)
    shutil.copy(source / "mlruns" / "mlflow.db", root / "mlruns" / "mlflow.db")
    config = (source / "radar.toml").read_text().replace(str(source), str(root))
    (root / "radar.toml").write_text(config.replace("[serving]\n", f"[serving]\n{serving_toml}\n"))
    return load_settings(root / "radar.toml")


def register_copied_version(settings: Settings, target: str, folder: Path, alias: str | None = None) -> str:
    """A new version of `target`'s model whose files are a copy (in `folder`) of its
    champion's, pointed at by `alias` when given; returns the version. Deleting `folder`
    damages that version only."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    from training.track import CHAMPION, configure

    client = configure(settings.training)
    name = TARGETS[target].model_name
    champion = client.get_model_version_by_alias(name, CHAMPION)
    files = ModelsArtifactRepository.get_underlying_uri(f"models:/{name}/{champion.version}")
    shutil.copytree(files.removeprefix("file://"), folder)
    version = client.create_model_version(name, str(folder), run_id=champion.run_id, tags=champion.tags).version
    if alias is not None:
        client.set_registered_model_alias(name, alias, version)
    return str(version)


@pytest.fixture(scope="session")
def served_copy():
    """`copy_of_served_project` and `register_copied_version`, as a fixture."""
    from types import SimpleNamespace

    return SimpleNamespace(project=copy_of_served_project, register=register_copied_version)
