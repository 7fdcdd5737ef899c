"""`radar profile`: the event vocabulary, its roles, and a section that maps them.

A workspace folder whose product has its own event names (none of the defaults): the
profile lists each type with the right counts, accounts, users and dates, warns about
the roles nothing is mapped to, and prints a [features] section that, pasted into
radar.toml, maps every role; event names are user data and are printed escaped.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime

import ibis
import pytest
from typer.testing import CliRunner

from features.profile import mapping_toml, profile_events, suggest_direction, suggest_role
from radar.cli import app
from radar.settings import load_settings

from .conftest import typed_frame

ROWS = [
    # (account, time, event type, user, quantity)
    ("A1", "2024-01-03 09:00", "user_signed_in", "u1", None),
    ("A1", "2024-01-04 09:00", "user_signed_in", "u2", None),
    ("A2", "2024-02-10 18:30", "user_signed_in", "u3", None),
    ("A2", "2024-02-11 08:00", "user_signed_in", None, None),
    ("A1", "2024-01-05 10:00", "Export Report", "u1", None),
    ("A2", "2024-03-01 10:00", "Export Report", "u3", None),
    ("A1", "2024-01-06 10:00", "invoiceSent", "u1", 120.0),
    ("A1", "2024-01-07 10:00", "tutorial_finished", "u2", None),
    ("A1", "2024-01-07 11:00", "connect_bank", "u2", None),
    ("A2", "2024-01-08 11:00", "canvas_opened", "u3", None),
    ("A2", "2024-01-09 11:00", "sync_error", "u3", None),
    ("A2", "2024-01-09 12:00", "[bold]odd[/bold]", "u3", None),
]


def events_frame():
    rows = [
        {"account_id": a, "occurred_at": datetime.fromisoformat(t), "event_type": e, "user_id": u, "quantity": q}
        for a, t, e, u, q in ROWS
    ]
    frame = typed_frame("usage_events", rows)
    frame["quantity"] = frame["quantity"].fillna(1.0)  # what ingest stores for an empty quantity
    return frame


@pytest.fixture
def folder(tmp_path):
    """A workspace folder with a CSV usage_events in the contract's columns."""
    ws = tmp_path / "ws"
    ws.mkdir()
    events_frame().to_csv(ws / "usage_events.csv", index=False)
    return ws


def profile(cfg=None):
    table = ibis.memtable(events_frame())
    return profile_events(table, cfg or load_settings().features)


def test_types_are_listed_with_their_counts_accounts_users_and_dates():
    result = profile()
    by_name = {t.event_type: t for t in result.types}
    assert [t.event_type for t in result.types][:2] == ["user_signed_in", "Export Report"]  # most frequent first
    signed = by_name["user_signed_in"]
    assert (signed.events, signed.accounts, signed.users) == (4, 2, 3)
    assert signed.first == datetime(2024, 1, 3, 9) and signed.last == datetime(2024, 2, 11, 8)
    assert by_name["invoiceSent"].with_quantity == 1 and by_name["invoiceSent"].quantity_total == 120.0
    assert by_name["canvas_opened"].with_quantity == 0 and by_name["canvas_opened"].quantity_total == 0
    assert result.events == len(ROWS)
    assert all(t.roles == [] for t in result.types)  # nothing matches the default names
    assert result.unmapped_roles == ["login", "value", "setup", "onboarding", "feature"]


def test_roles_are_suggested_from_the_names():
    assert suggest_role("user_signed_in") == "login" and suggest_role("SessionStarted") == "login"
    assert suggest_role("Export Report") == "value" and suggest_role("invoiceSent") == "value"
    assert suggest_role("tutorial_finished") == "onboarding" and suggest_role("connect_bank") == "setup"
    assert suggest_role("canvas_opened") == "feature"
    assert suggest_direction("sync_error") == "lower" and suggest_direction("canvas_opened") is None


def test_the_printed_section_pasted_into_radar_toml_maps_every_role(tmp_path):
    section = mapping_toml(profile())
    assert "SUGGESTED" in section
    config = tmp_path / "radar.toml"
    config.write_text(section)
    mapped = load_settings(config).features
    assert mapped.login_events == ("user_signed_in",)
    assert mapped.value_events == ("Export Report", "invoiceSent")
    assert mapped.onboarding_events == ("tutorial_finished",)
    assert mapped.setup_events == ("connect_bank",)
    assert "canvas_opened" in mapped.feature_events and "[bold]odd[/bold]" in mapped.feature_events
    assert mapped.event_directions == {"sync_error": "lower"}
    again = profile(mapped)
    assert again.unmapped_roles == []
    assert {t.event_type: t.roles for t in again.types}["user_signed_in"] == ["login"]


def test_a_working_mapping_is_kept_and_names_not_in_the_data_are_left_out():
    cfg = load_settings(features={"login_events": ("user_signed_in", "login")}).features
    result = profile(cfg)
    assert result.absent["login"] == ["login"]
    section = tomllib.loads(mapping_toml(result))["features"]
    assert section["login_events"] == ["user_signed_in"]
    assert section["value_events"] == ["Export Report", "invoiceSent"]  # no value event mapped: suggested


def test_radar_profile_reads_a_folder_prints_escaped_names_the_section_and_warnings(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "suggested.toml"
    result = CliRunner().invoke(app, ["profile", str(folder), "--toml", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table_row = next(line for line in result.output.splitlines() if "odd" in line and "│" in line)
    assert "[bold]odd[/bold]" in table_row  # printed as written, not as markup
    assert "no event type in the data is mapped to the login role" in result.output
    assert "[features]" in result.output and 'login_events = ["user_signed_in"]' in result.output
    assert tomllib.loads(out.read_text())["features"]["setup_events"] == ["connect_bank"]


def test_radar_profile_json(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["profile", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    first = data["event_types"][0]
    assert (first["event_type"], first["events"], first["users"], first["first"]) == (
        "user_signed_in",
        4,
        3,
        "2024-01-03T09:00:00",
    )
    assert tomllib.loads(data["toml"])["features"]["login_events"] == ["user_signed_in"]


def test_radar_profile_applies_the_column_mapping_and_names_what_is_missing(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = events_frame().rename(columns={"event_type": "action"})
    frame.to_csv(folder / "usage_events.csv", index=False)
    result = CliRunner().invoke(app, ["profile", str(folder)])
    assert result.exit_code == 1 and "no column event_type" in result.output and "Traceback" not in result.output
    (tmp_path / "radar.toml").write_text("[ingest.column_mapping.usage_events]\naction = 'event_type'\n")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "radar.toml"), "profile", str(folder)])
    assert result.exit_code == 0, result.output
    assert "user_signed_in" in result.output
    result = CliRunner().invoke(app, ["profile", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "is not a folder" in result.output
