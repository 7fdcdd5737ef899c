"""The weekly digest: the week rule, the improved-accounts rule, owner files, hostile account
data in both formats, and the digest end to end on a served project (champion models in
MLflow, a workspace of snapshots)."""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from radar.cli import app
from radar.settings import load_settings
from serving.scoring.decisions import risk_words
from serving.workflow.alert_rules import Evidence
from serving.workflow.digest import (
    DigestError,
    Digests,
    FlaggedAccount,
    ImprovedAccount,
    OwnerDigest,
    build_digests,
    digest_week,
    improved_accounts,
    owner_slug,
)
from serving.workflow.digest_render import digest_html, digest_markdown

MONTH_ENDS = [date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)]  # Mon, Wed, Sat


# --- the week rule ---


def test_the_week_ends_on_the_first_week_end_day_on_or_after_the_latest_snapshot_before_the_date():
    assert digest_week(MONTH_ENDS, None) == (date(2026, 10, 31), date(2026, 11, 1))  # Sat -> Sun
    assert digest_week(MONTH_ENDS, date(2026, 10, 30)) == (date(2026, 9, 30), date(2026, 10, 4))
    assert digest_week(MONTH_ENDS, date(2026, 9, 30)) == (date(2026, 9, 30), date(2026, 10, 4))  # on the day
    assert digest_week(MONTH_ENDS, date(2027, 1, 1)) == (date(2026, 10, 31), date(2026, 11, 1))
    assert digest_week([date(2026, 11, 1)], None) == (date(2026, 11, 1), date(2026, 11, 1))  # a Sunday: itself
    assert digest_week(MONTH_ENDS, None, "friday") == (date(2026, 10, 31), date(2026, 11, 6))


def test_a_week_before_the_first_snapshot_or_no_snapshot_is_an_error():
    with pytest.raises(DigestError, match="no snapshots on or before 2026-08-30 .the first is 2026-08-31"):
        digest_week(MONTH_ENDS, date(2026, 8, 30))
    with pytest.raises(DigestError, match="empty"):
        digest_week([], None)


# --- improved accounts ---


def _history(rows: list[tuple[str, date, float]], base_rate: float = 0.04) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "as_of", "churn_risk"])
    return frame.assign(churn_lift=frame["churn_risk"] / base_rate)


def test_improved_means_churn_risk_fell_by_more_than_the_threshold_in_base_rates():
    before, now = date(2026, 9, 30), date(2026, 10, 31)
    history = _history(  # base rate 4%: lift = churn risk / 0.04
        [
            ("down_a_lot", before, 0.16),
            ("down_a_lot", now, 0.04),  # 4x -> 1x: 3 lift points
            ("down", before, 0.10),
            ("down", now, 0.0425),  # 2.5x -> 1.0625x: 1.4375 points
            ("exactly", before, 0.08),
            ("exactly", now, 0.03),  # 2x -> 0.75x: 1.25 points, not more than the threshold
            ("up", before, 0.02),
            ("up", now, 0.2),
            ("new", now, 0.01),  # no previous score
            ("gone", before, 0.3),
        ]
    )
    found = improved_accounts(history, now, before, 1.25)
    assert found["account_id"].tolist() == ["down_a_lot", "down"]
    assert found["change"].tolist() == pytest.approx([3.0, 1.4375])
    assert found.iloc[1][["previous_risk", "churn_risk"]].tolist() == [0.10, 0.0425]
    assert found.iloc[1][["previous_lift", "churn_lift"]].tolist() == pytest.approx([2.5, 1.0625])
    assert improved_accounts(history, now, None, 1.25).empty  # nothing to compare with


def test_owner_file_names_are_plain_and_unique():
    taken: set[str] = set()
    assert owner_slug("Chloé Garnier", taken) == "chloe-garnier"
    assert owner_slug("chloe  garnier!", taken) == "chloe-garnier-2"
    assert owner_slug("Ana", taken) == "ana" and owner_slug("***") == "owner"


# --- account data is text, never markup or template code ---

SCRIPT, TEMPLATE = "<script>alert(1)</script>", "{{ 7*7 }}"


def _hostile_digest() -> tuple[OwnerDigest, Digests]:
    bad = f"{SCRIPT} {TEMPLATE} {{% if true %}}x{{% endif %}}"
    trend = ((date(2026, 9, 30), 0.04), (date(2026, 10, 31), 0.12))
    flagged = FlaggedAccount(
        account_id=f"id-{SCRIPT}",
        name=bad,
        segment=f"seg {SCRIPT}",
        mrr=100.0,
        kind="risk",
        risk_tier="red",
        churn_risk=0.12,
        churn_lift=4.0,
        risk_summary="churn risk next 90 days 12% (4.0x typical) · renews 2027-01-31",
        expected_mrr_loss=12.0,
        upsell_likelihood=0.1,
        insight_score=0.9,
        routing="meeting",
        new=True,
        reasons=(f"reason {SCRIPT} {TEMPLATE}",),
        signals=(
            Evidence(kind="driver", text=f"driver {SCRIPT}"),
            Evidence(kind="quote", text=f"quote {SCRIPT} {TEMPLATE}", date=date(2026, 10, 20), channel=SCRIPT),
        ),
        action=f"call {SCRIPT}",
        owner=f"CSM {TEMPLATE}",
        playbook="save",
        trend=trend,
    )
    improved = ImprovedAccount("acc9", bad, 0.12, 0.05, 4.0, 1.7, "yellow", f"helped {SCRIPT} {TEMPLATE}", trend)
    owner = OwnerDigest(
        owner=bad,
        slug="x",
        accounts=3,
        at_risk=(flagged,),
        more_at_risk=0,
        new_at_risk=1,
        opportunities=(),
        more_opportunities=0,
        improved=(improved,),
        more_improved=0,
    )
    lineage = {"renewal_model": SCRIPT, "renewal_model_version": "1", "upsell_model": "u", "upsell_model_version": "2"}
    run = Digests(date(2026, 11, 1), date(2026, 10, 31), date(2026, 9, 30), "alerts", (owner,), lineage, 0.03, 3.0, 1.5)
    return owner, run


def test_hostile_account_data_is_escaped_in_the_html_and_never_evaluated():
    owner, run = _hostile_digest()
    html, md = digest_html(owner, run), digest_markdown(owner, run)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") == 13  # every field that carries it: none is left raw
    for text in (re.sub(r'src="data:[^"]*"', "", html), md):
        assert TEMPLATE in text and "{% if true %}x{% endif %}" in text  # shown as written, not run
        assert "49" not in text
    assert f"# Weekly digest for {owner.owner}" in md and f"call {SCRIPT}" in md  # Markdown is not escaped
    assert f"helped {SCRIPT} {TEMPLATE}" in md and f"| {owner.owner} (acc9) |" in md


# --- end to end on a served project ---

RED = "acc0001"


@pytest.fixture
def project(served_project, tmp_path, red_quotes_workspace):
    """A private copy of the served project's workspace with red quotes for one account in
    two conversations before the latest snapshot."""
    root, _ = served_project
    latest = red_quotes_workspace(root / "out", tmp_path / "out", RED, (4, 15), -0.6, ignore=("digests", "alerts"))
    return root / "radar.toml", tmp_path / "out", latest


def test_radar_digest_writes_a_self_contained_html_and_a_markdown_per_owner(project):
    config, out, latest = project
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(out),
        "COLUMNS": "200",
        "RADAR_DIGEST__ROUTINGS": '["meeting", "review", "tag"]',
        "RADAR_DIGEST__MAX_ACCOUNTS": "500",
    }
    result = CliRunner().invoke(app, ["--config", str(config), "digest"], env=env)
    assert result.exit_code == 0, result.output
    week_end = digest_week([latest], None)[1]
    folder = out / "digests" / str(week_end)
    with duckdb.connect(str(out / "radar.duckdb"), read_only=True) as con:
        owners = {
            r[0] for r in con.execute("SELECT DISTINCT csm_owner FROM snapshots WHERE as_of = ?", [latest]).fetchall()
        }
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{owner_slug(o)}.{ext}" for o in owners for ext in ("html", "md")
    )
    assert f"week ending {week_end}" in result.output and all(f"{o} (" in result.output for o in owners)

    for owner in owners:
        html = (folder / f"{owner_slug(owner)}.html").read_text()
        md = (folder / f"{owner_slug(owner)}.md").read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)  # nothing fetched
        assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
        assert f"Weekly digest for {owner}" in html and f"# Weekly digest for {owner}" in md
        if "Why flagged" in html:
            assert "data:image/png;base64," in html and "Next step:" in html
            assert "**Why flagged:**" in md and "**Next step:**" in md
    with duckdb.connect(str(out / "radar.duckdb"), read_only=True) as con:
        owner = con.execute(
            "SELECT csm_owner FROM snapshots WHERE account_id = ? AND as_of = ?", [RED, latest]
        ).fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "alert_state" not in tables  # the digest reads the alert state, it never writes it
    html = (folder / f"{owner_slug(owner)}.html").read_text()
    md = (folder / f"{owner_slug(owner)}.md").read_text()
    assert f"({RED})" in html and f"({RED})" in md  # flagged: its signals are one alert, the quotes among them
    quote = f"“Honestly it is too expensive for us.” — call, {latest - timedelta(days=4)}"
    assert quote in md and "too expensive for us." in html


@pytest.fixture(scope="module")
def champions(served_project):
    from serving.scoring.champions import load_champions

    return load_champions(served_project[1])


def test_digest_without_evidence_respects_closed_alerts_and_filters_one_owner(served_project, champions, tmp_path):
    from serving.workflow.alerts import change_alert, run_alerts

    root, _ = served_project
    shutil.copytree(root / "out", tmp_path / "out", ignore=shutil.ignore_patterns("digests", "alerts"))
    settings = load_settings(
        root / "radar.toml",
        output_dir=tmp_path / "out",
        digest={"routings": ["meeting", "review", "tag"], "max_accounts": 400},
    )
    run = build_digests(settings, champions)  # no evidence table: no quotes, no error
    assert run.source == "alerts" and run.previous is not None
    flagged = [a for d in run.owners for a in d.at_risk]
    assert flagged and all(a.reasons and a.action and a.owner and len(a.trend) == 6 for a in flagged)
    assert all(s.kind == "driver" for a in flagged for s in a.signals)
    assert all(a.new for a in flagged) and all(d.more_at_risk == 0 for d in run.owners)
    assert [a.trend[-1][1] for a in flagged] == pytest.approx([a.churn_risk for a in flagged])

    stored = run_alerts(settings, champions, write=False)  # `radar alerts`, then someone closes one
    single = next(a for a in flagged if len(a.alert_keys) == 1)
    change_alert(settings, single.alert_keys[0], "closed", reason="handled")
    owner = next(d.owner for d in run.owners if single in d.at_risk)
    again = build_digests(settings, champions, owner=owner.upper())
    assert [d.owner for d in again.owners] == [owner]
    listed = {a.account_id for a in again.owners[0].at_risk}
    assert single.account_id not in listed
    assert listed == {a.account_id for d in run.owners if d.owner == owner for a in d.at_risk} - {single.account_id}
    assert stored.alerts and again.as_of == run.as_of
    with pytest.raises(
        DigestError, match="no account is owned by 'nobody' at this snapshot; the owners are: Ana, Ben, Chloe"
    ):
        build_digests(settings, champions, owner="nobody")


def test_without_alert_rules_the_digest_lists_the_risk_tiers_and_opportunities(served_project, champions):
    root, _ = served_project
    settings = load_settings(
        root / "radar.toml", alerts={"rules": []}, digest={"max_accounts": 400, "max_opportunities": 400}
    )
    run = build_digests(settings, champions)
    assert run.source == "scores"
    flagged = [a for d in run.owners for a in d.at_risk]
    chances = [a for d in run.owners for a in d.opportunities]
    assert flagged and {a.risk_tier for a in flagged} <= {"red", "yellow"}
    assert all(a.reasons[0].endswith(f"risk tier: {risk_words(a.churn_risk, a.churn_lift)}") for a in flagged)
    assert all(a.risk_tier == "green" and a.upsell_likelihood >= settings.serving.opportunity_floor for a in chances)
    assert not (settings.output_dir / "digests").exists()  # building writes nothing
