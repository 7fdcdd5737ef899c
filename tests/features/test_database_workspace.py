"""A workspace in a database: the contract tables read from a real PostgreSQL server.

Given a small generated workspace ingested into DuckDB, and the same contract tables
copied into a fresh PostgreSQL database, `radar build-features --workspace URL` builds
the same snapshots from PostgreSQL as from DuckDB: same rows, same labels, features
equal within float tolerance, same evidence, written to the local output folder.
"""

from __future__ import annotations

from datetime import date

import duckdb
import ibis
import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from features.build import build_features
from features.contract import TABLES
from features.database_workspace import (
    DatabaseWorkspaceError,
    databricks_args,
    ibis_url,
    redact,
)
from features.ingest import ingest_workspace
from features.sampledata import generate_workspace
from features.snapshot import KEY, LABELS, Workspace
from radar.cli import app
from radar.settings import Settings
from tests.features.test_event_features import add_foreign_events, assert_foreign_features

START, END = date(2026, 3, 31), date(2026, 10, 31)


def conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}"


def copy_tables(duck: ibis.BaseBackend, url: str, tables=TABLES) -> None:
    """The contract tables of `duck` into the PostgreSQL database at `url`, same column types."""
    target = ibis.connect(ibis_url(url))
    with psycopg.connect(conninfo(url)) as conn:
        for name in tables:
            source = duck.table(name)
            target.create_table(name, schema=source.schema())
            columns = ", ".join(f'"{c}"' for c in source.columns)
            with conn.cursor() as cur, cur.copy(f'COPY "{name}" ({columns}) FROM STDIN') as copy:
                for batch in source.to_pyarrow_batches(chunk_size=50_000):
                    for row in zip(*(c.to_pylist() for c in batch.columns)):
                        copy.write_row(row)
    target.disconnect()


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Settings:
    """A 60-account, one-year sample workspace ingested into DuckDB, with its snapshots built there."""
    root = tmp_path_factory.mktemp("db-workspace")
    generate_workspace(root / "ws", accounts=60, years=1, seed=3)
    settings = Settings(output_dir=root / "local")
    ingest_workspace(root / "ws", settings)
    add_foreign_events(settings.database_path)  # per-event features of names of another product's
    build_features(settings, START, END)
    return settings


@pytest.fixture(scope="module")
def workspace_url(local, postgres_database) -> str:
    url = postgres_database("radar_workspace")
    duck = ibis.duckdb.connect(str(local.database_path), read_only=True)
    copy_tables(duck, url)
    duck.disconnect()
    return url


def test_snapshots_from_postgresql_equal_those_from_duckdb(local, workspace_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(
        app, ["build-features", "--from", str(START), "--to", str(END), "--workspace", workspace_url]
    )
    assert result.exit_code == 0, result.output

    expected = pd.read_parquet(local.output_dir / "snapshots.parquet")
    got = pd.read_parquet(tmp_path / "out" / "snapshots.parquet")
    assert len(expected) > 300 and list(got.columns) == list(expected.columns)
    assert got.dtypes.equals(expected.dtypes)
    pd.testing.assert_frame_equal(got[KEY], expected[KEY])  # same rows, same order
    pd.testing.assert_frame_equal(got[LABELS], expected[LABELS])
    assert expected.churned.notna().sum() > 0
    numeric = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    assert len(numeric) > 100
    np.testing.assert_allclose(
        got[numeric].to_numpy(float), expected[numeric].to_numpy(float), rtol=1e-9, atol=1e-12, equal_nan=True
    )
    other = [c for c in expected.columns if c not in numeric]
    pd.testing.assert_frame_equal(got[other], expected[other])
    assert got.filter(like="_red_").notna().to_numpy().sum() > 0  # text signals came through
    assert_foreign_features(got)
    assert (tmp_path / "out" / "event_features.json").read_text() == (
        local.output_dir / "event_features.json"
    ).read_text()

    # the outputs are local: snapshots and evidence in the local database, the report beside them
    with (
        duckdb.connect(str(tmp_path / "out" / "radar.duckdb"), read_only=True) as mine,
        duckdb.connect(str(local.database_path), read_only=True) as theirs,
    ):
        assert mine.execute("SELECT count(*) FROM snapshots").fetchone()[0] == len(expected)
        evidence = [con.execute("SELECT * FROM evidence").df() for con in (mine, theirs)]
    mine_ev, theirs_ev = (e.sort_values(list(e.columns)).reset_index(drop=True) for e in evidence)
    assert len(theirs_ev) > 0
    pd.testing.assert_frame_equal(mine_ev, theirs_ev)
    assert (tmp_path / "out" / "reports" / "data_quality.md").exists()
    assert "radar_evidence" not in ibis.connect(ibis_url(workspace_url)).list_tables()  # temporary only


def test_data_span_from_the_tables_equals_the_one_ingest_records(local):
    duck = ibis.duckdb.connect(str(local.database_path), read_only=True)
    ws = Workspace.from_backend(duck)
    meta = duck.table("workspace_meta").execute().iloc[0]
    duck.disconnect()
    assert ws.data_start == pd.Timestamp(meta.data_start).date()
    assert ws.data_end == pd.Timestamp(meta.data_end).date()


def test_tables_off_the_contract_are_named_column_by_column(postgres_database, tmp_path):
    url = postgres_database("radar_off_contract")
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE subscriptions (subscription_id text, account_id text, product text, "
            "start_date date, end_date date, mrr numeric(12, 2), seats bigint, billing_period integer)"
        )
        conn.execute(
            "CREATE TABLE usage_events (account_id text, occurred_at timestamptz, event_type text, user_id text)"
        )
    settings = Settings(output_dir=tmp_path / "out", workspace_url=url)
    with pytest.raises(DatabaseWorkspaceError) as caught:
        build_features(settings)
    message = str(caught.value)
    assert "usage_events.occurred_at: expected timestamp without time zone (UTC)" in message
    assert "usage_events.quantity: missing" in message
    assert "subscriptions" not in message  # numeric MRR is fine
    assert not (tmp_path / "out").exists()


def test_unreachable_database_names_the_url_without_its_password(tmp_path):
    settings = Settings(output_dir=tmp_path, workspace_url="postgresql+psycopg://radar:s3cret@127.0.0.1:1/none")
    with pytest.raises(DatabaseWorkspaceError, match=r"radar:\*\*\*@127.0.0.1:1/none") as caught:
        build_features(settings)
    assert "s3cret" not in str(caught.value)


def test_urls_in_sqlalchemy_form_are_translated():
    assert ibis_url("postgresql+psycopg://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert ibis_url("snowflake://u@acct/db/schema?warehouse=wh") == "snowflake://u@acct/db/schema?warehouse=wh"
    assert redact("postgres://u:pw@h/db") == "postgres://u:***@h/db"
    assert databricks_args(
        "databricks://token:dapi123@adb-1.azuredatabricks.net?http_path=/sql/1.0/warehouses/x&catalog=main&schema=crm"
    ) == {
        "server_hostname": "adb-1.azuredatabricks.net",
        "access_token": "dapi123",
        "http_path": "/sql/1.0/warehouses/x",
        "catalog": "main",
        "schema": "crm",
    }
    with pytest.raises(DatabaseWorkspaceError, match="not a connection URL"):
        ibis_url("out/radar.duckdb")


def test_a_backend_that_is_not_installed_says_what_to_add(tmp_path):
    import importlib.util

    if importlib.util.find_spec("snowflake") is not None:
        pytest.skip("the snowflake backend is installed here")
    settings = Settings(output_dir=tmp_path, workspace_url="snowflake://me@acct/db/crm")
    with pytest.raises(DatabaseWorkspaceError, match=r"uv add 'ibis-framework\[duckdb,snowflake\]==12.0.0'"):
        build_features(settings)
