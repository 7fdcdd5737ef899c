"""Playbooks are a data file: the shipped one loads, a team's own replaces it, and every
mistake is reported with the file, the playbook and the field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from features.snapshot import feature_registry
from radar.settings import Settings
from serving.scoring.playbook import SHIPPED, PlaybookError, load_playbooks, parse_playbooks, recommend
from serving.scoring.score import score_frame

REGISTRY = feature_registry(Settings())


def shipped() -> dict:
    return tomllib.loads(SHIPPED.read_text())


def write(tmp_path: Path, raw: dict, name: str = "playbooks.toml") -> Path:
    """A TOML file of `raw` ({"playbook": [tables]}), written by hand: no TOML writer needed."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v) if isinstance(v, int) else '"' + str(v).replace('"', '\\"') + '"'

    lines = []
    for book in raw["playbook"]:
        lines.append("[[playbook]]")
        lines += [f"{k} = {value(v)}" for k, v in book.items()]
        lines.append("")
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return path


def edited(change) -> dict:
    raw = shipped()
    change({p["name"]: p for p in raw["playbook"]}, raw)
    return raw


def error_of(raw: dict) -> str:
    with pytest.raises(PlaybookError) as caught:
        parse_playbooks(raw, "team/playbooks.toml")
    return str(caught.value)


def test_the_shipped_file_holds_the_four_playbooks_of_domain_5_and_the_cadence():
    books = load_playbooks()
    assert [p.name for p in books.playbook] == [
        "onboarding_friction",
        "underused_features",
        "renewal_risk",
        "expansion_opportunity",
        "keep_cadence",
    ]
    assert books.fallback.name == "renewal_risk" and books.opportunity.name == "expansion_opportunity"
    assert books.for_family(7).name == "onboarding_friction"
    assert books.for_family("qcf:pricing_perception").name == "renewal_risk"
    assert books.for_family("qcf:upsell_readiness") is None and books.for_family("context") is None
    assert books.fallback.owner_for(escalated=True) == "Retention lead"
    assert books.fallback.owner_for(escalated=False) == "Account manager"


@pytest.mark.parametrize(
    "change, where, what",
    [
        (
            lambda b, r: b["underused_features"]["families"].append(16),
            "'underused_features' (#2), field 'families'",
            "unknown indicator family 16",
        ),
        (
            lambda b, r: b["renewal_risk"]["buckets"].append("pricing"),
            "'renewal_risk' (#3), field 'buckets'",
            "unknown feedback bucket 'pricing'",
        ),
        (lambda b, r: b["keep_cadence"].pop("action"), "'keep_cadence' (#5), field 'action'", "Field required"),
        (
            lambda b, r: b["keep_cadence"].update(action="  "),
            "'keep_cadence' (#5), field 'action'",
            "the action must say what to do",
        ),
        (
            lambda b, r: b["expansion_opportunity"].pop("owner"),
            "'expansion_opportunity' (#4), field 'owner'",
            "Field required",
        ),
        (
            lambda b, r: b["onboarding_friction"].update(escalation=0),
            "'onboarding_friction' (#1), field 'escalation'",
            "unknown indicator 0",
        ),
        (
            lambda b, r: b["onboarding_friction"].update(when="sometimes"),
            "'onboarding_friction' (#1), field 'when'",
            "'at_risk', 'opportunity' or 'otherwise'",
        ),
        (
            lambda b, r: b["onboarding_friction"].update(acton="typo"),
            "'onboarding_friction' (#1), field 'acton'",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_a_mistake_names_the_file_the_playbook_and_the_field(change, where, what):
    message = error_of(edited(change))
    assert message.startswith("invalid playbooks file team/playbooks.toml")
    assert f"playbook {where}" in message and what in message


@pytest.mark.parametrize(
    "change, what",
    [
        (lambda b, r: b["keep_cadence"].update(name="renewal_risk"), "names must be unique: renewal_risk"),
        (
            lambda b, r: b["renewal_risk"].pop("fallback"),
            "exactly one 'at_risk' playbook needs fallback = true, found 0",
        ),
        (
            lambda b, r: b["keep_cadence"].update(when="opportunity"),
            "exactly one playbook with when = 'opportunity' is needed, found 2",
        ),
        (
            lambda b, r: b["underused_features"]["families"].append(7),
            "family 7 is in both 'onboarding_friction' and 'underused_features'",
        ),
        (lambda b, r: b["underused_features"].update(families=[]), "'underused_features': an 'at_risk' playbook needs"),
        (lambda b, r: b["keep_cadence"].update(fallback=True), "only an 'at_risk' playbook can be the fallback"),
    ],
)
def test_the_file_as_a_whole_must_be_usable(change, what):
    assert what in error_of(edited(change))


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(PlaybookError, match="playbooks file not found: .*nowhere.toml"):
        load_playbooks(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[playbook]]\nname = \n")
    with pytest.raises(PlaybookError, match=r"broken.toml: not valid TOML"):
        load_playbooks(broken)


def test_owners_may_be_role_names_and_an_edited_file_is_reloaded(tmp_path):
    raw = edited(lambda b, r: b["renewal_risk"].update(owner="Customer marketing", escalation="VP Customer Success"))
    path = write(tmp_path, raw)
    chosen = recommend("red", False, [], REGISTRY, playbooks=load_playbooks(path))
    assert (chosen.playbook, chosen.owner) == ("renewal_risk", "VP Customer Success")
    raw["playbook"][2]["escalation"] = "Head of CS"
    write(tmp_path, raw)
    import os

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert recommend("red", False, [], REGISTRY, playbooks=load_playbooks(path)).owner == "Head of CS"


def test_a_team_file_set_in_the_settings_drives_scoring(tmp_path, models, latest, settings):
    raw = edited(lambda b, r: b["keep_cadence"].update(action="Send the quarterly newsletter", owner="Marketing"))
    team = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"playbooks_file": write(tmp_path, raw)})}
    )
    scored = score_frame(latest.head(60), models, team, explain=False)
    cadence = scored[scored.playbook == "keep_cadence"]
    assert len(cadence) and set(cadence.recommended_action) == {"Send the quarterly newsletter"}
    assert set(cadence.action_owner) == {"Marketing"}
    default = score_frame(latest.head(60), models, settings, explain=False)
    assert set(default[default.playbook == "keep_cadence"].recommended_action) == {
        "No action beyond the regular check-in cadence"
    }
