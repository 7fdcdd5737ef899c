"""Ingest is all or nothing: a killed, failed or refused ingest leaves the previous workspace."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from features.ingest import IngestError, IngestRefused, WorkspaceBusy, ingest_workspace, workspace_lock
from radar.cli import app
from radar.settings import load_settings
from tests.features.test_ingest import write

ACCOUNTS = "account_id,name,segment,created_at,csm_owner"
SUBSCRIPTIONS = "subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period"
USAGE = "account_id,occurred_at,event_type,user_id,quantity"


def workspace(root: Path, accounts: int) -> Path:
    """A small workspace of `accounts` accounts, one subscription and two events each."""
    ws = root / f"ws{accounts}"
    ids = [f"A{i}" for i in range(accounts)]
    write(ws, "accounts.csv", "\n".join([ACCOUNTS] + [f"{a},Co {a},smb,2024-01-01,Ann" for a in ids]))
    write(
        ws,
        "subscriptions.csv",
        "\n".join([SUBSCRIPTIONS] + [f"S{a},{a},base,2024-01-01,,{100 + i},5,month" for i, a in enumerate(ids)]),
    )
    write(
        ws,
        "usage_events.csv",
        "\n".join([USAGE] + [f"{a},2024-01-0{d} 10:00:00,login,u1," for a in ids for d in (5, 6)]),
    )
    write(ws, "feedback.csv", "feedback_id,account_id,submitted_at,channel\n" + f"F1,{ids[0]},2024-01-01,chat")
    return ws


def state(database: Path) -> dict[str, list[tuple]]:
    """Every table of the database, rows sorted: equal states mean equal databases."""
    with duckdb.connect(str(database), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY ALL').fetchall() for n in names}


@pytest.fixture
def old(tmp_path: Path):
    """A workspace ingested once, plus a table another stage wrote (it must survive every ingest)."""
    settings = load_settings(output_dir=tmp_path / "out")
    ingest_workspace(workspace(tmp_path, 6), settings)
    with duckdb.connect(str(settings.database_path)) as con:
        con.execute("CREATE TABLE snapshots AS SELECT 'A1' AS account_id, 0.5 AS health")
    return settings, state(settings.database_path)


CHILD = """
import os, signal, sys, time
from pathlib import Path

import features.ingest.load as load
from radar.settings import load_settings

ws, warm = Path(sys.argv[1]), Path(sys.argv[2])
load.ingest_workspace(ws, load_settings(output_dir=warm))  # warm up once, before forking


def die():
    os.kill(os.getpid(), signal.SIGKILL)


record = load._record


def record_then_die(con, reports):  # every table, the rejects and the summary written, not committed
    record(con, reports)
    die()


# one child imports once and forks an ingest per kill point, so the test stays fast; a random
# kill point is a share of the time a full ingest took here (the first point, "full": no kill)
seconds = 0.0
for arg in sys.argv[3:]:
    out, point = arg.split("=")
    pid = os.fork()
    if pid == 0:
        if point == "before_commit":
            load._record = record_then_die
        settings = load_settings(output_dir=Path(out))
        load.ingest_workspace(ws, settings, progress=lambda table: table == point and die())
        os._exit(0)
    started = time.monotonic()
    if point.startswith("random"):
        time.sleep(float(point.removeprefix("random")) * seconds)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if point == "full":
        seconds = time.monotonic() - started
    print(point, os.waitstatus_to_exitcode(status), flush=True)
"""


def test_killed_ingest_leaves_the_old_or_the_new_database_never_a_mix(old, tmp_path: Path):
    settings, before = old
    new_ws = workspace(tmp_path, 9)
    # the database the new ingest gives when it runs to the end
    shutil.copytree(settings.database_path.parent, tmp_path / "new")
    ingest_workspace(new_ws, load_settings(output_dir=tmp_path / "new"))
    after = state(tmp_path / "new" / settings.database_name)
    assert after != before and after["snapshots"] == before["snapshots"]

    # kill points: at the start, after two tables were replaced, at the last table, just before the
    # commit; then at random moments over the length of an ingest (it may have committed)
    rng = random.Random(15)
    points = ["full", "accounts", "usage_events", "touchpoints", "before_commit"]
    points += [f"random{rng.uniform(0.2, 1.2):.3f}" for _ in range(4)]
    args = []
    for i, point in enumerate(points):
        out = tmp_path / f"kill{i}"
        shutil.copytree(settings.database_path.parent, out)
        args.append(f"{out}={point}")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, str(script), str(new_ws), str(tmp_path / "warm"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    codes = dict(line.split() for line in done.stdout.splitlines())
    outcomes = []
    for i, point in enumerate(points):
        got = state(tmp_path / f"kill{i}" / settings.database_name)
        assert got in (before, after), point
        if point == "full":
            assert codes[point] == "0" and got == after
        elif point.startswith("random"):
            outcomes.append("new" if got == after else "old")
        else:
            assert codes[point] == str(-signal.SIGKILL), point
            assert got == before, point
    print("random kills:", outcomes)


def cli(args: list[str], out: Path, **env: str):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADAR_OUTPUT_DIR", str(out))
        mp.setenv("COLUMNS", "200")
        for k, v in env.items():
            mp.setenv(k, v)
        return CliRunner().invoke(app, args)


def test_header_only_accounts_is_refused_and_the_workspace_kept_unless_accepted(old, tmp_path: Path):
    settings, before = old
    ws = workspace(tmp_path, 6)
    write(ws, "accounts.csv", ACCOUNTS)
    result = cli(["ingest", str(ws)], settings.output_dir)
    assert result.exit_code == 1, result.output
    assert "accounts (accounts.csv) has 0 rows, 6 at the previous ingest" in result.output
    assert "unknown" in result.output and "--accept-shrink" in result.output
    assert state(settings.database_path) == before
    # accepted on request: the accounts are gone and every other row is rejected
    result = cli(["ingest", str(ws), "--accept-shrink"], settings.output_dir)
    assert result.exit_code == 0, result.output
    got = state(settings.database_path)
    assert got["accounts"] == [] and got["snapshots"] == before["snapshots"]


def test_first_ingest_with_header_only_accounts_is_refused(tmp_path: Path):
    ws = workspace(tmp_path, 6)
    write(ws, "accounts.csv", ACCOUNTS)
    with pytest.raises(IngestRefused, match="not in the accounts table"):
        ingest_workspace(ws, load_settings(output_dir=tmp_path / "out"))


@pytest.mark.parametrize("text", [SUBSCRIPTIONS, ""], ids=["header-only", "0-bytes"])
def test_empty_subscriptions_is_refused(old, tmp_path: Path, text: str):
    settings, before = old
    ws = workspace(tmp_path, 6)
    (ws / "subscriptions.csv").write_text(text)
    result = cli(["ingest", str(ws)], settings.output_dir)
    assert result.exit_code == 1, result.output
    assert "required table subscriptions (subscriptions.csv) has no valid rows" in result.output
    assert state(settings.database_path) == before


def test_a_table_shrinking_by_more_than_the_share_is_refused(old, tmp_path: Path):
    settings, before = old
    ws = workspace(tmp_path, 6)
    write(ws, "usage_events.csv", "\n".join([USAGE, "A0,2024-01-05,login,,", "A1,2024-01-05,login,,"]))
    with pytest.raises(IngestRefused, match=r"usage_events \(usage_events.csv\) has 2 rows, 12 at the previous"):
        ingest_workspace(ws, settings)
    assert state(settings.database_path) == before
    # a looser setting lets it through
    looser = load_settings(output_dir=settings.output_dir, ingest={"max_shrink_share": 0.9})
    assert ingest_workspace(ws, looser).table("usage_events").accepted == 2


def test_an_empty_optional_file_is_a_table_with_no_rows(old, tmp_path: Path):
    settings, _ = old
    ws = workspace(tmp_path, 6)
    (ws / "touchpoints.csv").write_bytes(b"")
    (ws / "feedback.csv").write_bytes(b"")
    report = ingest_workspace(ws, settings, accept_shrink=True)  # feedback: 1 row -> 0
    assert report.table("touchpoints").status == "loaded" and report.table("touchpoints").read == 0
    got = state(settings.database_path)
    assert got["touchpoints"] == [] and got["feedback"] == []


def test_an_unreadable_file_names_the_file_and_changes_nothing(old, tmp_path: Path):
    settings, before = old
    ws = workspace(tmp_path, 6)
    (ws / "usage_events").mkdir()
    (ws / "usage_events.csv").rename(ws / "usage_events" / "part-0.csv")
    (ws / "usage_events" / "part-1.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(IngestError) as err:
        ingest_workspace(ws, settings)
    msg = str(err.value)
    assert "part-1.parquet: not a readable Parquet file" in msg and "Traceback" not in msg
    assert state(settings.database_path) == before


def test_a_second_writer_waits_then_names_the_holder(old, tmp_path: Path):
    settings, before = old
    ws = workspace(tmp_path, 6)
    with workspace_lock(settings.database_path, "build-features", 0):
        started = time.monotonic()
        result = cli(["ingest", str(ws)], settings.output_dir, RADAR_INGEST__LOCK_WAIT_SECONDS="0.5")
        waited = time.monotonic() - started
        assert result.exit_code == 1, result.output
        assert f"`radar build-features` (pid {os.getpid()}, started" in result.output
        assert "Traceback" not in result.output and 0.5 <= waited < 5
        result = cli(["build-features"], settings.output_dir, RADAR_INGEST__LOCK_WAIT_SECONDS="0")
        assert result.exit_code == 1 and "is being written by `radar build-features`" in result.output
        with pytest.raises(WorkspaceBusy):
            with workspace_lock(settings.database_path, "ingest", 0):
                pass
    assert state(settings.database_path) == before
    # released: the next writer gets it
    assert cli(["ingest", str(ws)], settings.output_dir).exit_code == 0
