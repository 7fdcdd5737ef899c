"""Guards against truncated exports and a second writer: exit 1 with the reason, the previous
workspace untouched, unless the run is accepted on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.hostile.conftest import Case, cli, state

UNCHANGED = "Nothing was changed: {} still holds the previous ingest."


def refused(case: Case, *args: str, **env: str) -> str:
    result = case.ingest(*args, **env)
    assert result.exit_code == 1, result.output
    case.assert_untouched()
    text = " ".join(result.output.split())
    assert UNCHANGED.format(case.database) in text
    return text


def test_a_header_only_accounts_file_is_refused(case: Case):
    case.write_lines("accounts.csv", case.lines("accounts.csv")[:1])
    text = refused(case)
    n_subs = len(case.before["subscriptions"])
    assert "ingest refused, the new files look like a truncated export:" in text
    assert "accounts (accounts.csv) has 0 rows, 200 at the previous ingest: it lost 100%" in text
    assert (
        f"of {n_subs + 1900 + 100 + 60 + 60:,} rows (100%) name an account_id that is not in the accounts table" in text
    )
    assert "run again with --accept-shrink" in text


def test_a_header_only_subscriptions_file_is_refused(case: Case):
    case.write_lines("subscriptions.csv", case.lines("subscriptions.csv")[:1])
    text = refused(case)
    assert "required table subscriptions (subscriptions.csv) has no valid rows (0 read, 0 rejected)" in text


def test_an_empty_optional_file_is_a_table_with_no_rows(case: Case, tmp_path: Path):
    (case.ws / "touchpoints.csv").write_bytes(b"")
    # against the previous ingest it lost every row: refused as a truncated export
    text = refused(case)
    assert "touchpoints (touchpoints.csv) has 0 rows, 60 at the previous ingest: it lost 100%" in text
    # accepted on purpose, or on a first ingest, it is an empty table
    result = case.ingest("--accept-shrink")
    assert result.exit_code == 0, result.output
    assert case.state()["touchpoints"] == [] and case.assert_reconciled()["touchpoints"] == (0, 0, 0)
    first = cli(tmp_path / "first", "ingest", str(case.ws))
    assert first.exit_code == 0, first.output
    assert state(tmp_path / "first" / "radar.duckdb")["touchpoints"] == []


def test_a_table_shrinking_by_more_than_half_is_refused_unless_accepted(case: Case):
    lines = case.lines("usage_events.csv")
    kept = lines[: 1 + 900]  # 900 of 1,900 events: lost 53%
    case.write_lines("usage_events.csv", kept)
    text = refused(case)
    assert (
        "usage_events (usage_events.csv) has 900 rows, 1,900 at the previous ingest: it lost 53%, "
        "more than ingest.max_shrink_share (50%)"
    ) in text
    result = case.ingest("--accept-shrink")
    assert result.exit_code == 0, result.output
    assert case.assert_reconciled()["usage_events"] == (900, 900, 0)
    after = case.state()
    assert set(after["usage_events"]) < set(case.before["usage_events"])
    assert after["accounts"] == case.before["accounts"] and after["snapshots"] == case.before["snapshots"]


def test_too_many_rows_of_unknown_accounts_are_refused(case: Case):
    # 70 of 200 accounts missing (35%: under the shrink guard for accounts), 1,020 rows name them
    lines = case.lines("accounts.csv")
    case.write_lines("accounts.csv", [lines[0], *lines[71:]])
    text = refused(case)
    assert "accounts (accounts.csv) has" not in text
    assert (
        "1,020 of 2,370 rows (43%) name an account_id that is not in the accounts table (most in usage_events: 700)"
    ) in text
    assert "more than ingest.max_unknown_account_share (20%)" in text


def test_too_many_rejected_subscription_rows_are_refused_naming_the_fix(case: Case):
    lines = case.lines("subscriptions.csv")
    case.write_lines(
        "subscriptions.csv", [lines[0]] + [line.replace(",quarterly", ",every 3 mo") for line in lines[1:]]
    )
    text = refused(case)
    n = len(case.before["subscriptions"])
    assert f"63 of {n} subscription rows (25%) were rejected, more than ingest.max_rejected_subscription_share" in text
    assert (
        "Fix: map your billing period words to months in radar.toml under [ingest.billing_period_words], "
        'e.g. "every 3 mo" = <its number of months>'
    ) in text
    assert "run again with --accept-rejects" in text


HOLDER = """
import sys, time, importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
with lock.workspace_lock(Path(sys.argv[2]), "ingest", 0):
    print("holding", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def test_two_ingests_at_once_the_second_names_the_holder_or_waits(case: Case, tmp_path: Path):
    import features.ingest.lock as lock_module

    script = tmp_path / "holder.py"
    script.write_text(HOLDER)

    def hold(seconds: float) -> subprocess.Popen:
        holder = subprocess.Popen(
            [sys.executable, str(script), lock_module.__file__, str(case.database), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "holding"
        return holder

    holder = hold(60)
    try:
        result = case.ingest(RADAR_INGEST__LOCK_WAIT_SECONDS="0.5")
        assert result.exit_code == 1, result.output
        text = " ".join(result.output.split())
        assert f"is being written by `radar ingest` (pid {holder.pid}, started" in text
        assert "waited 0.5s" in text
        case.assert_untouched()
    finally:
        holder.kill()
        holder.wait()
    # a second writer that may wait long enough gets the lock when the first one is done
    holder = hold(1.5)
    started = time.monotonic()
    result = case.ingest(RADAR_INGEST__LOCK_WAIT_SECONDS="60")
    assert result.exit_code == 0, result.output
    assert holder.wait(timeout=30) == 0 and time.monotonic() - started < 60
    assert case.state() == case.before
    assert os.path.exists(str(case.database) + ".lock")
