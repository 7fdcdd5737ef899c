"""Champion loading and the running service's switch to a new champion, on a real sqlite
MLflow store (a copy of the served project's, so moving aliases here touches nothing else)."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from serving.scoring.champions import LiveChampions, champion_versions, load_champions, versions_of
from training.registry_access import RegistryBroken
from training.track import CHAMPION, configure


@pytest.fixture
def project(served_project, served_copy, tmp_path):
    """(settings, a second renewal version v_ok, a renewal version v_broken whose files are gone)."""
    settings = served_copy.project(served_project, tmp_path / "project")
    ok = served_copy.register(settings, "renewal", tmp_path / "ok-model")
    broken = served_copy.register(settings, "renewal", tmp_path / "broken-model")
    shutil.rmtree(tmp_path / "broken-model")
    return settings, ok, broken


def _move(settings, version: str) -> None:
    configure(settings.training).set_registered_model_alias("radar-renewal", CHAMPION, version)


def test_refresh_switches_to_a_complete_new_set_and_prepares_it_first(project):
    settings, ok, _ = project
    live = LiveChampions(settings, load_champions(settings), prepare=None)
    before = live.models
    seen = []

    def prepare(models):
        seen.append((versions_of(models), live.models is before))  # still the old set while preparing
        models.explainer("renewal")

    live._prepare = prepare
    assert live.refresh() is False and live.models is before  # nothing promoted: no reload
    _move(settings, ok)
    assert live.refresh() is True
    assert versions_of(live.models) == {"renewal": ok, "upsell": versions_of(before)["upsell"]}
    assert seen == [(versions_of(live.models), True)]
    assert live.models.lineage["renewal_model_version"] == ok
    assert "renewal" in live.models._explainers and "upsell" in live.models._explainers  # warmed before the switch
    assert live.refresh() is False


def test_a_damaged_new_champion_keeps_the_current_set_and_warns_once(project, caplog):
    settings, ok, broken = project
    live = LiveChampions(settings, load_champions(settings))
    before = live.models
    _move(settings, broken)
    with caplog.at_level(logging.INFO, logger="radar.champions"):
        for _ in range(3):
            assert live.refresh() is False
        assert live.models is before
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        text = warnings[0].getMessage()
        assert f"radar-renewal v{broken}" in text and "still serving radar-renewal v" in text
        assert "radar promote renewal --to VERSION" in text and "Traceback" not in text
        _move(settings, ok)  # repaired: the next poll switches
        assert live.refresh() is True and versions_of(live.models)["renewal"] == ok


def test_an_unreadable_store_keeps_serving_and_warns_once(project, caplog):
    settings, _, _ = project
    live = LiveChampions(settings, load_champions(settings))
    before = live.models
    store = settings.training.tracking_uri.removeprefix("sqlite:///")
    with open(store, "wb") as out:
        out.write(os.urandom(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="radar.champions"):
        assert live.refresh() is False and live.refresh() is False
    assert live.models is before
    assert len(caplog.records) == 1
    assert "cannot be read" in caplog.records[0].getMessage()


def test_load_champions_names_a_champion_whose_files_are_gone(project):
    settings, _, broken = project
    _move(settings, broken)
    assert champion_versions(settings)["renewal"] == broken  # the registry itself reads
    with pytest.raises(RegistryBroken) as caught:
        load_champions(settings)
    message = str(caught.value)
    assert f"radar-renewal v{broken} (the champion)" in message
    assert "radar train --target renewal --promote" in message and "radar promote renewal --to VERSION" in message
    assert len(message) < 600 and "\n" not in message
