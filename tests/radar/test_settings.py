"""Settings: radar.toml, environment overrides, clear errors, a self-documenting dump."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from radar.settings import ConfigError, load_settings, settings_toml


def test_toml_then_env_then_defaults(tmp_path: Path, monkeypatch):
    cfg = tmp_path / "radar.toml"
    cfg.write_text(
        '[domain]\nhorizon_days = 60\ngrace_days = 14\n[ingest.column_mapping.usage_events]\nts = "occurred_at"\n'
    )
    monkeypatch.setenv("RADAR_DOMAIN__GRACE_DAYS", "10")
    s = load_settings(cfg)
    assert s.domain.horizon_days == 60  # from the file
    assert s.domain.grace_days == 10  # env wins over the file
    assert s.domain.expansion_min_pct == pytest.approx(0.10)  # default
    assert s.ingest.column_mapping == {"usage_events": {"ts": "occurred_at"}}


def test_default_file_is_optional_but_a_named_file_must_exist(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings().domain.horizon_days == 90
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_values_name_the_field(tmp_path: Path):
    cfg = tmp_path / "radar.toml"
    cfg.write_text("[domain]\nhorizon_days = -3\n")
    with pytest.raises(ConfigError, match="horizon_days"):
        load_settings(cfg)
    cfg.write_text("[domain]\nhorizon_dayz = 30\n")
    with pytest.raises(ConfigError, match="horizon_dayz"):
        load_settings(cfg)


def test_settings_dump_round_trips(tmp_path: Path):
    s = load_settings(domain={"horizon_days": 45})
    dumped = settings_toml(s)
    assert "# How far labels look forward from as_of." in dumped
    cfg = tmp_path / "radar.toml"
    cfg.write_text(dumped)
    tomllib.loads(dumped)
    assert load_settings(cfg).model_dump() == s.model_dump()
