"""Contract terms: billing_period in months or words, and a rejected subscription row never
becomes a churn (its account's labels are unknown from that row's start)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.calendar import calendar_table
from features.ingest import IngestRefused, ingest_workspace
from features.labels import build_labels, workspace_blackouts
from radar.cli import app
from radar.settings import load_settings

ACCOUNTS = "account_id,name,segment,created_at,csm_owner"
SUBSCRIPTIONS = "subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period"


def write(ws: Path, subscriptions: list[str], accounts: tuple[str, ...] = ("A1", "A2")) -> Path:
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "accounts.csv").write_text(
        "\n".join([ACCOUNTS, *(f"{a},Co {a},smb,2023-01-01,Ann" for a in accounts)]) + "\n"
    )
    (ws / "subscriptions.csv").write_text("\n".join([SUBSCRIPTIONS, *subscriptions]) + "\n")
    return ws


def table(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        return con.execute(sql).fetchall()


FORMS = {
    "1": 1,
    "month": 1,
    "Monthly": 1,
    "quarter": 3,
    "Quarterly": 3,
    "3 months": 3,
    "half-year": 6,
    "Half Year": 6,
    "semiannual": 6,
    "semi-annual": 6,
    "six months": 6,
    "6": 6,
    "6 months": 6,
    "year": 12,
    "annual": 12,
    "yearly": 12,
    "12": 12,
    "two years": 24,
    "2 years": 24,
    "biennial": 24,
}


def test_billing_periods_in_months_or_words_are_stored_as_months(tmp_path: Path):
    rows = [f"S{i},A1,base,2023-01-01,,100,5,{form}" for i, form in enumerate(FORMS)]
    settings = load_settings(output_dir=tmp_path / "out")
    report = ingest_workspace(write(tmp_path / "ws", rows), settings)
    assert report.table("subscriptions").rejected == 0
    got = dict(table(settings, "SELECT subscription_id, billing_period FROM subscriptions"))
    assert got == {f"S{i}": months for i, months in enumerate(FORMS.values())}
    assert table(settings, "SELECT data_type FROM duckdb_columns() WHERE column_name = 'billing_period'") == [
        ("BIGINT",)
    ]


def test_an_unknown_word_is_rejected_naming_the_accepted_forms_and_more_words_are_a_setting(tmp_path: Path):
    good = [f"S{i},A1,base,2023-01-01,,100,5,month" for i in range(40)]
    rows = [*good, "S90,A2,base,2023-01-01,,100,5,semestral", "S91,A2,base,2023-01-01,,100,5,0"]
    settings = load_settings(output_dir=tmp_path / "out")
    ingest_workspace(write(tmp_path / "ws", rows), settings)  # 2 of 42 rejected: under the 5% guard
    rejects = table(settings, "SELECT row_number, column_name, check_name, reason FROM rejects ORDER BY 1")
    assert rejects == [
        (
            41,
            "billing_period",
            "allowed",
            "'semestral' is not a number of months (1, 3, 6, 12, 24, '3 months', '2 years') or month, quarter, "
            "half-year, semiannual, year, two years; map other words under [ingest.billing_period_words]",
        ),
        (42, "billing_period", "min", "'0' is below the minimum 1"),
    ]
    mapped = load_settings(output_dir=tmp_path / "out2", ingest={"billing_period_words": {"Semestral": 6}})
    ingest_workspace(tmp_path / "ws", mapped)
    assert table(mapped, "SELECT billing_period FROM subscriptions WHERE subscription_id = 'S90'") == [(6,)]


# A1 renews every six months; its second line's period is a word ingest does not know, so the
# line is rejected. Without it A1's history has a gap from 2023-07-01 to 2024-01-01, which the
# labels would read as a churn on 2023-07-01. A2 is a clean yearly customer.
LINES = [
    "S1,A1,base,2023-01-01,2023-07-01,100,5,six months",
    "S2,A1,base,2023-07-01,2024-01-01,100,5,semestral",
    "S3,A1,base,2024-01-01,,100,5,half-year",
    "S4,A2,base,2023-01-01,2024-01-01,200,5,annual",
    "S5,A2,base,2024-01-01,,200,5,quarterly",
]
AS_OF = [date(2023, 3, 1), date(2023, 6, 1), date(2024, 2, 1)]


def labels(settings, with_blackouts: bool = True) -> dict[tuple[str, date], tuple]:
    backend = ibis.duckdb.connect(str(settings.database_path), read_only=True)
    try:
        subs = backend.table("subscriptions")
        blackouts = workspace_blackouts(backend) if with_blackouts else None
        out = build_labels(subs, calendar_table(AS_OF), settings.domain, date(2025, 1, 1), blackouts).execute()
    finally:
        backend.disconnect()
    return {
        (r.account_id, pd.Timestamp(r.as_of).date()): tuple(
            None if v != v else int(v) for v in (r.churned, r.churned_by_renewal)
        )
        for r in out.itertuples()
    }


def test_a_rejected_subscription_row_never_becomes_a_churn(tmp_path: Path):
    settings = load_settings(output_dir=tmp_path / "out")
    report = ingest_workspace(write(tmp_path / "ws", LINES), settings, accept_rejects=True)
    assert report.table("subscriptions").rejected == 1 and report.label_blackout_accounts == 1
    assert table(settings, "SELECT * FROM label_blackouts") == [("A1", date(2023, 7, 1), 1)]
    summary = table(settings, "SELECT message FROM ingest_summary WHERE table_name = 'subscriptions'")
    assert summary == [
        ("labels unknown for 1 account(s) from the start of their rejected subscription rows (table label_blackouts)",)
    ]
    got = labels(settings)
    # a window ending before the rejected line (minus grace): known; one that reaches it: unknown, not a
    # churn. On 2023-03-01 the 90-day window is known, the one to the next renewal (2023-07-01) is not
    assert got[("A1", date(2023, 3, 1))] == (0, None)
    assert got[("A1", date(2023, 6, 1))] == (None, None)
    assert got[("A1", date(2024, 2, 1))] == (None, None)
    # the clean account keeps every label
    assert got[("A2", date(2023, 6, 1))] == (0, 0) and got[("A2", date(2024, 2, 1))] == (0, 0)
    # what the blackout prevents: the missing line read as a churn
    assert labels(settings, with_blackouts=False)[("A1", date(2023, 6, 1))] == (1, 1)


def test_a_rejected_row_whose_start_does_not_parse_makes_all_its_accounts_labels_unknown(tmp_path: Path):
    lines = [*LINES[:1], "S2,A1,base,July 2023,2024-01-01,100,5,six months", *LINES[2:]]
    settings = load_settings(output_dir=tmp_path / "out")
    ingest_workspace(write(tmp_path / "ws", lines), settings, accept_rejects=True)
    assert table(settings, "SELECT * FROM label_blackouts") == [("A1", None, 1)]
    got = labels(settings)
    assert all(v == (None, None) for (a, _), v in got.items() if a == "A1")
    assert got[("A2", date(2023, 3, 1))] == (0, 0)


def test_too_many_rejected_subscription_rows_exit_1_naming_the_mapping_that_fixes_them(tmp_path: Path):
    out = tmp_path / "out"
    settings = load_settings(output_dir=out)
    ws = write(tmp_path / "ws", [line.replace("semestral", "six months") for line in LINES])
    ingest_workspace(ws, settings)
    before = table(settings, "SELECT * FROM subscriptions ORDER BY ALL")
    write(ws, LINES)  # 1 of 5 rows (20%) rejected, above ingest.max_rejected_subscription_share (5%)

    def cli(*args: str, **env: str):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RADAR_OUTPUT_DIR", str(out))
            mp.setenv("COLUMNS", "250")
            for k, v in env.items():
                mp.setenv(k, v)
            return CliRunner().invoke(app, ["ingest", str(ws), *args])

    result = cli()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "1 of 5 subscription rows (20%) were rejected, more than ingest.max_rejected_subscription_share (5%)" in text
    assert 'under [ingest.billing_period_words], e.g. "semestral" = <its number of months>' in text
    assert "--accept-rejects" in text and "Traceback" not in result.output
    assert table(settings, "SELECT * FROM subscriptions ORDER BY ALL") == before  # nothing changed
    with pytest.raises(IngestRefused):
        ingest_workspace(ws, settings)
    # a higher share, the flag, or the mapping it names each let it through
    assert ingest_workspace(ws, load_settings(output_dir=out, ingest={"max_rejected_subscription_share": 0.25}))
    result = cli("--accept-rejects")
    assert result.exit_code == 0, result.output
    assert "labels unknown for 1 account(s)" in " ".join(result.output.split())
    result = cli(RADAR_INGEST__BILLING_PERIOD_WORDS='{"semestral": 6}')
    assert result.exit_code == 0, result.output
    assert table(settings, "SELECT count(*) FROM label_blackouts") == [(0,)]
    assert table(settings, "SELECT billing_period FROM subscriptions WHERE subscription_id = 'S2'") == [(6,)]
