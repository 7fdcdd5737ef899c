"""Hostile inputs (issue 15): a 200-account CSV workspace, ingested once per session, then one
defect per test, run through `radar ingest` as a user would.

Every case asserts the exact reason (file, row, column, reason), the reconciled counts
(read = accepted + rejected, per table, in the summary and the rejects table) and, when the
run must fail, that the previous workspace database is untouched, table by table.

Cases of issue 15 tested elsewhere (not repeated here): a SIGKILL at random points of an
ingest in tests/features/test_ingest_atomic.py; `radar score` printing an id like
`[/bold]A00424` in tests/serving/test_score_cli.py; account pages for ids with / % ? # quotes
and markup in tests/serving/web/test_odd_ids.py (ingest of such ids: test_rows.py); the CRM
writer removing the `.crm.*.tmp` files of a killed write in tests/serving/crm/test_crm_tmp.py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from radar.cli import app

N_ACCOUNTS = 200
SPARE = 10  # the last accounts have no other rows: rejecting one cascades nowhere
ODD_IDS = ("A/1", "A%2F2", "A?3", "A#4", "A'5\"", "[/bold]A00424")  # kept verbatim by ingest

ACCOUNTS = "account_id,name,segment,industry,region,created_at,csm_owner"  # 7 fields
SUBSCRIPTIONS = "subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period"
USAGE = "account_id,occurred_at,event_type,user_id,quantity"
TICKETS = "ticket_id,account_id,opened_at,priority,subject,body"
FEEDBACK = "feedback_id,account_id,submitted_at,channel,score,text"
TOUCHPOINTS = "account_id,occurred_at,kind,notes"


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def account_ids() -> list[str]:
    return [f"A{i:05d}" for i in range(N_ACCOUNTS - len(ODD_IDS))] + list(ODD_IDS)


def build_workspace(ws: Path) -> Path:
    """The good workspace: every table as CSV, a few hundred rows each, all valid."""
    ws.mkdir(parents=True)
    ids = account_ids()
    active = ids[: N_ACCOUNTS - SPARE]
    files = {
        "accounts.csv": [ACCOUNTS]
        + [
            ",".join(
                map(
                    _csv_field, (a, f"Co {i}", ("smb", "mid", "enterprise")[i % 3], "retail", "eu", "2022-01-01", "Ann")
                )
            )
            for i, a in enumerate(ids)
        ],
        "subscriptions.csv": [SUBSCRIPTIONS]
        + [
            f"S{i:05d},{_csv_field(a)},base,2023-01-01,,{100 + i},{5 + i % 7},{('month', 'year', 'quarterly')[i % 3]}"
            for i, a in enumerate(active)
        ]
        + [f"R{i:05d},{_csv_field(a)},base,2022-01-01,2023-01-01,90,5,12" for i, a in enumerate(active[:60])],
        "usage_events.csv": [USAGE]
        + [
            f"{_csv_field(a)},2023-0{1 + d % 9}-{10 + d:02d} 10:00:00,{('login', 'export', 'report')[d % 3]},u{i}-{d % 3},"
            for i, a in enumerate(active)
            for d in range(10)
        ],
        "support_tickets.csv": [TICKETS]
        + [
            f"T{i:05d},{_csv_field(a)},2023-03-0{1 + i % 9},normal,Login,Cannot log in"
            for i, a in enumerate(active[:100])
        ],
        "feedback.csv": [FEEDBACK]
        + [f"F{i:05d},{_csv_field(a)},2023-04-01,nps_survey,{i % 11},Works well" for i, a in enumerate(active[:60])],
        "touchpoints.csv": [TOUCHPOINTS]
        + [f"{_csv_field(a)},2023-05-0{1 + i % 9} 09:00:00,meeting,QBR" for i, a in enumerate(active[:60])],
    }
    for name, lines in files.items():
        (ws / name).write_text("\n".join(lines) + "\n")
    return ws


def cli(out: Path, *args: str, **env: str):
    """`radar <args>` on the workspace database in `out`, as a user runs it (exceptions are not raised)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADAR_OUTPUT_DIR", str(out))
        mp.setenv("COLUMNS", "250")
        for key, value in env.items():
            mp.setenv(key, value)
        return CliRunner().invoke(app, list(args))


def state(database: Path) -> dict[str, list[tuple]]:
    """Every table of the database with its rows sorted: equal states mean equal databases."""
    with duckdb.connect(str(database), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY ALL').fetchall() for n in names}


@dataclass
class Baseline:
    ws: Path
    out: Path
    before: dict[str, list[tuple]]


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> Baseline:
    """The good workspace ingested once, plus a table another stage wrote (it must survive)."""
    root = tmp_path_factory.mktemp("hostile")
    ws, out = build_workspace(root / "ws"), root / "out"
    result = cli(out, "ingest", str(ws))
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(out / "radar.duckdb")) as con:
        con.execute("CREATE TABLE snapshots AS SELECT 'A00001' AS account_id, 0.5 AS health")
    before = state(out / "radar.duckdb")
    assert all(before[t] for t in ("accounts", "subscriptions", "usage_events", "touchpoints"))
    assert before["rejects"] == []
    return Baseline(ws, out, before)


@dataclass
class Case:
    """A copy of the good workspace and of its ingested database, for one defect."""

    ws: Path
    out: Path
    before: dict[str, list[tuple]]

    @property
    def database(self) -> Path:
        return self.out / "radar.duckdb"

    def lines(self, name: str) -> list[str]:
        return (self.ws / name).read_text().splitlines()

    def write_lines(self, name: str, lines: list[str]) -> None:
        (self.ws / name).write_text("\n".join(lines) + "\n")

    def replace_line(self, name: str, row: int, new: bytes) -> bytes:
        """Data row `row` (1-based, after the header) of `name` replaced by the bytes `new`; returns the old."""
        lines = (self.ws / name).read_bytes().split(b"\n")
        old, lines[row] = lines[row], new
        (self.ws / name).write_bytes(b"\n".join(lines))
        return old

    def ingest(self, *args: str, **env: str):
        result = cli(self.out, "ingest", str(self.ws), *args, **env)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    def state(self) -> dict[str, list[tuple]]:
        return state(self.database)

    def rejects(self) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as con:
            return con.execute(
                "SELECT table_name, source_file, row_number, column_name, check_name, reason FROM rejects ORDER BY ALL"
            ).fetchall()

    def assert_untouched(self) -> None:
        """The previous workspace, table by table."""
        after = self.state()
        assert after.keys() == self.before.keys()
        for table, rows in self.before.items():
            assert after[table] == rows, table

    def assert_reconciled(self) -> dict[str, tuple[int, int, int]]:
        """read = accepted + rejected for every loaded table, the rejects table and the tables agreeing."""
        with duckdb.connect(str(self.database), read_only=True) as con:
            summary = con.execute(
                "SELECT table_name, rows_read, rows_accepted, rows_rejected FROM ingest_summary WHERE status = 'loaded'"
            ).fetchall()
            counts = {}
            for table, read, accepted, rejected in summary:
                assert read == accepted + rejected, table
                assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == accepted, table
                assert (
                    con.execute("SELECT count(*) FROM rejects WHERE table_name = ?", [table]).fetchone()[0] == rejected
                )
                counts[table] = (read, accepted, rejected)
        return counts

    def assert_only_rejected(self, table: str, expected: list[tuple]) -> None:
        """The run loaded everything but the `expected` rejects of `table`: every row was read (as many
        as before), the other contract tables are as before, and `table` lost exactly the rejected rows."""
        assert self.rejects() == expected
        counts = self.assert_reconciled()
        before_counts = {t: len(self.before[t]) for t in counts}
        assert counts[table] == (before_counts[table], before_counts[table] - len(expected), len(expected))
        after = self.state()
        for other in counts:
            if other != table:
                assert after[other] == self.before[other], other
        assert set(after[table]) <= set(self.before[table])
        assert after["snapshots"] == self.before["snapshots"]


@pytest.fixture
def case(baseline: Baseline, tmp_path: Path) -> Case:
    ws, out = tmp_path / "ws", tmp_path / "out"
    shutil.copytree(baseline.ws, ws)
    shutil.copytree(baseline.out, out)
    return Case(ws, out, baseline.before)
