"""Per-event-type features: generated from whatever event types the data holds.

A small workspace whose product names its actions its own way (none of the default
event names): the most frequent types get counts, per-active-user rates, trends,
distinct users and quantity sums per window, with hand-checked values; the cap is
honoured; names are safe identifiers; the registry describes them and the reasons
use those descriptions; and with such a vocabulary most usage features still vary.
The choice is stable: a later build keeps the recorded types (and says which frequent
ones it leaves out) until --refresh-event-types, and scoring a model whose per-event
columns a build lacks names them and the fix.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from features import events as per_event
from features.events import EventType, assign_slugs, choose_event_types, recorded_event_types, slugify
from features.snapshot import feature_registry, snapshot_expr
from radar.settings import load_settings

AS_OF = date(2024, 6, 30)
DATES = [date(2024, 4, 30), date(2024, 5, 31), AS_OF]
SAFE = re.compile(r"^[a-z][a-z0-9_]*$")


def _at(day_offset: int, hour: int = 10) -> datetime:
    return datetime.combine(AS_OF, datetime.min.time()) + timedelta(days=day_offset, hours=hour)


def _subs(accounts: list[str]) -> list[dict]:
    return [
        {
            "subscription_id": f"S{a}",
            "account_id": a,
            "product": "base",
            "start_date": date(2023, 6, 1),
            "end_date": date(2025, 6, 1),
            "mrr": 100.0,
            "seats": 10,
            "billing_period": 12,
        }
        for a in accounts
    ]


def unknown_vocabulary(seed: int = 3) -> dict[str, list[dict]]:
    """Twelve accounts using a product whose events are named after its own actions:
    some use it a lot, some little, some stop; `invoice_sent` carries an amount."""
    rng = np.random.default_rng(seed)
    types = {"canvas_opened": 8, "Export Report": 4, "invoice_sent": 2, "comment_posted": 3, "user_signed_in": 10}
    accounts = [f"A{i:02d}" for i in range(12)]
    rows = []
    for i, a in enumerate(accounts):
        intensity = 0.2 + i / 6  # account i uses the product (i+1)/6 times as much as the first
        stop = -40 if i % 4 == 0 else 0  # every fourth account stopped 40 days before AS_OF
        for t, per_week in types.items():
            n = int(rng.poisson(per_week * intensity * 26))
            for _ in range(n):
                day = int(rng.integers(-180, stop))
                rows.append(
                    {
                        "account_id": a,
                        "occurred_at": _at(day, int(rng.integers(0, 24))),
                        "event_type": t,
                        "user_id": f"{a}-u{rng.integers(0, 2 + i)}",
                        "quantity": float(rng.integers(10, 500)) if t == "invoice_sent" else 1.0,
                    }
                )
    return {"subscriptions": _subs(accounts), "usage_events": rows}


def build(factory, tables, settings, dates=DATES) -> pd.DataFrame:
    ws = factory(tables, date(2025, 3, 31))
    return snapshot_expr(ws, dates, settings, None).execute()


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings(output_dir=tmp_path_factory.mktemp("out"))


def test_slugs_are_safe_identifiers_and_collisions_get_numbers():
    assert slugify("Export Report!") == "export_report"
    assert slugify("  ") == "event" and slugify("über") == "ber"
    slugs = assign_slugs(["Export Report", "export-report", "export_report", "42 done"])
    assert slugs == {
        "Export Report": "export_report",
        "export-report": "export_report_2",
        "export_report": "export_report_3",
        "42 done": "42_done",
    }
    et = EventType("42 done", "42_done", 1, False)
    assert SAFE.match(et.feature("per_user", 28))


def test_the_most_frequent_types_are_chosen_by_count_then_name_up_to_the_cap(workspace_factory):
    rows = [
        {"account_id": "A", "occurred_at": _at(-d), "event_type": t, "user_id": "u", "quantity": 1.0}
        for t, n in (("b", 3), ("a", 3), ("c", 5), ("d", 1))
        for d in range(1, n + 1)
    ]
    rows.append({"account_id": "A", "occurred_at": _at(0), "event_type": "d", "user_id": "u", "quantity": 1.0})
    ws = workspace_factory({"subscriptions": _subs(["A"]), "usage_events": rows}, date(2025, 1, 1))
    cfg = load_settings(features={"event_type_cap": 3}).features
    chosen = choose_event_types(ws.tables["usage_events"], AS_OF, cfg)
    assert [et.name for et in chosen] == ["c", "a", "b"]  # d's event on AS_OF is not counted
    assert [et.events for et in chosen] == [5, 3, 3]
    pinned = load_settings(features={"event_types": ("d", "zzz")}).features
    assert [(et.name, et.events) for et in choose_event_types(ws.tables["usage_events"], AS_OF, pinned)] == [
        ("d", 1),
        ("zzz", 0),
    ]
    assert (
        choose_event_types(ws.tables["usage_events"], AS_OF, load_settings(features={"event_type_cap": 0}).features)
        == []
    )


def test_the_cap_bounds_the_generated_columns(workspace_factory, tmp_path):
    capped = load_settings(output_dir=tmp_path, features={"event_type_cap": 2})
    snap = build(workspace_factory, unknown_vocabulary(), capped)
    generated = sorted(c for c in snap.columns if c.startswith("ev_"))
    # user_signed_in (10/week) and canvas_opened (8/week): 4 measures each, two windows; no quantity
    assert generated == sorted(
        f"ev_{s}__{m}_{w}d"
        for s in ("user_signed_in", "canvas_opened")
        for m in ("count", "per_user", "trend", "users")
        for w in (28, 90)
    )


def test_counts_rates_trends_users_and_quantity_sums_by_hand(workspace_factory, tmp_path):
    def ev(day, t, user, q=1.0):
        return {"account_id": "A", "occurred_at": _at(day), "event_type": t, "user_id": user, "quantity": q}

    rows = [
        ev(-1, "Pay Invoice", "u1", 120.5),
        ev(-10, "Pay Invoice", "u2", 30.0),
        ev(-27, "Pay Invoice", "u1", None),  # a missing quantity adds nothing
        ev(-40, "Pay Invoice", "u1", 7.0),  # the window before: trend and 90-day sums
        ev(0, "Pay Invoice", "u3", 1000.0),  # on as_of: not seen
        ev(-2, "open", "u3"),
        ev(-3, "open", "u3"),
    ]
    s = load_settings(output_dir=tmp_path, features={"windows": (28, 90)})
    snap = build(workspace_factory, {"subscriptions": _subs(["A"]), "usage_events": rows}, s, [AS_OF]).iloc[0]
    assert snap["ev_pay_invoice__count_28d"] == 3
    assert snap["ev_pay_invoice__users_28d"] == 2
    assert snap["ev_pay_invoice__per_user_28d"] == pytest.approx(3 / 3)  # 3 active users in 28 days
    assert snap["ev_pay_invoice__trend_28d"] == pytest.approx((3 - 1) / 1)
    assert snap["ev_pay_invoice__quantity_28d"] == pytest.approx(150.5)
    assert snap["ev_pay_invoice__quantity_90d"] == pytest.approx(157.5)
    assert snap["ev_open__count_28d"] == 2 and snap["ev_open__users_28d"] == 1
    assert "ev_open__quantity_28d" not in snap.index  # every `open` has the default quantity 1


def test_with_an_unknown_vocabulary_most_usage_features_vary(workspace_factory, settings):
    snap = build(workspace_factory, unknown_vocabulary(), settings)
    chosen = choose_event_types(
        workspace_factory(unknown_vocabulary(), date(2025, 3, 31)).tables["usage_events"], AS_OF, settings.features
    )
    registry = feature_registry(settings, chosen)
    usage = [f.name for f in registry.from_source("usage_events")]
    assert len([c for c in usage if c.startswith("ev_")]) == 2 * (4 * 5 + 1)  # 5 types, invoice_sent has amounts
    varying = [c for c in usage if snap[c].nunique(dropna=True) > 1]
    assert len(varying) / len(usage) >= 0.8, sorted(set(usage) - set(varying))
    # the mapped-role features are the constant ones: nothing is called "login" here
    assert snap["logins_28d"].eq(0).all() and snap["onboarding_completion"].eq(0).all()


def test_generated_specs_describe_themselves_and_follow_the_configured_family_and_direction():
    cfg = load_settings(
        features={
            "value_events": ("Export Report",),
            "event_families": {"canvas_opened": 15},
            "event_directions": {"error_shown": "lower"},
        }
    ).features
    chosen = [
        EventType("Export Report", "export_report", 10, False),
        EventType("canvas_opened", "canvas_opened", 9, False),
        EventType("error_shown", "error_shown", 5, True),
    ]
    from features.registry import FeatureRegistry

    registry = FeatureRegistry(per_event.event_specs(chosen, cfg), (28, 90))
    spec = registry["ev_export_report__per_user_28d"]
    assert spec.description == "'Export Report' events per active user, last 28 days"
    assert (spec.family, spec.kind, spec.healthy, spec.source) == (14, "driver", "higher", "usage_events")
    assert registry["ev_canvas_opened__count_90d"].family == 15
    assert registry["ev_error_shown__quantity_90d"].healthy == "lower"
    assert registry["ev_error_shown__users_28d"].family == 4  # unmapped: usage depth
    assert registry["ev_error_shown__trend_28d"].description == (
        "Change in 'error_shown' events vs the window before, last 28 days"
    )
    assert all(SAFE.match(name) for name in registry.names)


def test_the_build_records_its_types_and_the_registry_and_reasons_use_them(workspace_factory, tmp_path):
    from serving.scoring.explain import reason

    s = load_settings(output_dir=tmp_path)
    assert recorded_event_types(tmp_path) == [] and not any(n.startswith("ev_") for n in feature_registry(s).names)
    chosen = [EventType("Export Report", "export_report", 10, False)]
    per_event.record_event_types(tmp_path, chosen)
    assert recorded_event_types(tmp_path) == chosen
    registry = feature_registry(s)
    spec = registry["ev_export_report__per_user_28d"]
    assert registry.is_driver(spec.name)
    why = reason(spec, spec.name, 0.25, -0.4, "renewal likelihood", False)
    assert why == "'Export Report' events per active user is 0.25 over the last 28 days — lowers renewal likelihood"
    (tmp_path / per_event.RECORD_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="build-features"):
        feature_registry(s)


FOREIGN = ("Export Report!", "canvas-opened")  # names of another product's, one carrying an amount


def add_foreign_events(database) -> None:
    """Add events named after another product's actions to an ingested workspace database
    (for the engine equivalence tests): `Export Report!` with amounts beside every third
    login, `canvas-opened` beside every dashboard view."""
    import duckdb

    with duckdb.connect(str(database)) as con:
        con.execute(
            "INSERT INTO usage_events (account_id, occurred_at, event_type, user_id, quantity) "
            "SELECT account_id, occurred_at, 'Export Report!', user_id, (hash(user_id) % 40) * 1.25 + 0.5 "
            "FROM usage_events WHERE event_type = 'login' AND hash(account_id || CAST(occurred_at AS VARCHAR)) % 3 = 0"
        )
        con.execute(
            "INSERT INTO usage_events (account_id, occurred_at, event_type, user_id, quantity) "
            "SELECT account_id, occurred_at, 'canvas-opened', user_id, 1.0 "
            "FROM usage_events WHERE event_type = 'feature_dashboards'"
        )


def assert_foreign_features(snapshots: pd.DataFrame) -> None:
    """The per-event features of the added types are there and vary."""
    for name in ("ev_export_report__quantity_28d", "ev_export_report__per_user_90d", "ev_canvas_opened__users_28d"):
        assert name in snapshots.columns and snapshots[name].nunique() > 3, name


# --- the choice is stable across builds (train/serve skew) -----------------------------


def _ranked_events(counts: dict[str, int], quantity: str | None = None) -> list[dict]:
    return [
        {
            "account_id": "A",
            "occurred_at": _at(-d),
            "event_type": t,
            "user_id": "u",
            "quantity": 25.0 if t == quantity else 1.0,
        }
        for t, n in counts.items()
        for d in range(1, n + 1)
    ]


def test_a_later_build_keeps_the_recorded_types_and_reports_what_it_leaves_out(workspace_factory):
    def events_of(counts, quantity=None):
        tables = {"subscriptions": _subs(["A"]), "usage_events": _ranked_events(counts, quantity)}
        return workspace_factory(tables, date(2025, 1, 1)).tables["usage_events"]

    cfg = load_settings(features={"event_type_cap": 2}).features
    first = per_event.stable_event_types(events_of({"a": 5, "b": 3, "c": 1}, "b"), AS_OF, cfg, [])
    assert (first.names, first.source) == (["a", "b"], "chosen") and first.chosen[1].has_quantity
    # new data: `c` is now the most frequent, `b` has stopped and lost its quantity
    later = events_of({"a": 2, "c": 9, "new type": 4})
    kept = per_event.stable_event_types(later, AS_OF, cfg, first.chosen)
    assert kept.source == "recorded"
    assert [(et.name, et.slug, et.events, et.has_quantity) for et in kept.chosen] == [
        ("a", "a", 2, False),
        ("b", "b", 0, True),  # the same columns: its quantity measure stays (0)
    ]
    assert (kept.unused, kept.vanished) == (["c", "new type"], ["b"])
    notes = " ".join(kept.notes())
    assert "not used until you rebuild with --refresh-event-types" in notes and "'c'" in notes and "'b'" in notes
    assert "kept from the previous build" in kept.source_words()
    # asked for, a fresh choice; pinned, exactly the list (a recorded quantity column kept)
    fresh = per_event.stable_event_types(later, AS_OF, cfg, first.chosen, refresh=True)
    assert (fresh.names, fresh.source, fresh.notes()) == (["c", "new type"], "chosen", [])
    pinned_cfg = load_settings(features={"event_type_cap": 2, "event_types": ("b", "new type")}).features
    pinned = per_event.stable_event_types(later, AS_OF, pinned_cfg, first.chosen)
    assert pinned.source == "pinned" and [(et.name, et.has_quantity) for et in pinned.chosen] == [
        ("b", True),
        ("new type", False),
    ]
    # a record longer than a lowered cap is kept, and the console says how to apply the cap
    one = load_settings(features={"event_type_cap": 1}).features
    assert "rebuild with --refresh-event-types to apply the cap" in " ".join(
        per_event.stable_event_types(later, AS_OF, one, first.chosen).notes()
    )


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """Four accounts on monthly plans, in CSV; their product's most frequent event type
    (`Exported [bold]PDF[/bold]`) is new since the previous build chose two others."""
    root = tmp_path_factory.mktemp("stable-types")
    ws = root / "ws"
    ws.mkdir()
    accounts = ["A1", "A2", "A3", "A4"]
    pd.DataFrame({"account_id": accounts, "name": accounts}).to_csv(ws / "accounts.csv", index=False)
    pd.DataFrame(
        {
            "subscription_id": [f"S{a}{n}" for n in (1, 2) for a in accounts],
            "account_id": accounts * 2,
            "product": "base",
            "start_date": ["2023-01-05"] * 4 + ["2023-12-05"] * 4,  # renewed: the data runs to 2023-12-05
            "end_date": ["2023-12-05"] * 4 + [None] * 4,
            "mrr": 100.0,
            "billing_period": "month",
        }
    ).to_csv(ws / "subscriptions.csv", index=False)
    per_week = {"Exported [bold]PDF[/bold]": 4, "board_opened": 3, "card_moved": 2}
    rows = [
        (a, datetime(2023, 1, 6, 10) + timedelta(days=7 * k, hours=h), t, f"{a}-u{h % 2}")
        for i, a in enumerate(accounts)
        for k in range(52)
        for t, n in per_week.items()
        for h in range(n + i)
    ]
    pd.DataFrame(rows, columns=["account_id", "occurred_at", "event_type", "user_id"]).to_csv(
        ws / "usage_events.csv", index=False
    )
    return root


def test_rebuilding_on_new_data_keeps_the_models_columns_until_asked(tiny_folder, monkeypatch):
    import duckdb
    from typer.testing import CliRunner

    from features import snapshot_meta
    from radar.cli import app

    out = tiny_folder / "out"
    monkeypatch.chdir(tiny_folder)
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(out))
    monkeypatch.setenv("RADAR_FEATURES__EVENT_TYPE_CAP", "2")
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "ws"]).exit_code == 0
    # the previous build (on older data) chose these two, and the served models read their columns
    per_event.record_event_types(
        out, [EventType("board_opened", "board_opened", 90, False), EventType("card_moved", "card_moved", 60, True)]
    )
    span = ["--from", "2023-10-31", "--to", "2023-11-30"]  # two month-ends: enough, and quick
    again = runner.invoke(app, ["build-features", *span])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert "per-event features: kept from the previous build's record (2 types" in said
    assert "not used until you rebuild with --refresh-event-types" in said
    assert "'Exported [bold]PDF[/bold]'" in said  # the user's name, shown as written
    columns = list(pd.read_parquet(out / "snapshots.parquet").columns)
    kept = ["ev_board_opened__count_28d", "ev_card_moved__users_90d", "ev_card_moved__quantity_28d"]
    assert set(kept) <= set(columns) and not any(c.startswith("ev_exported") for c in columns)
    meta = snapshot_meta.read_parquet_meta(out / "snapshots.parquet")
    assert meta["event_types"] == ["board_opened", "card_moved"] and "kept" in meta["event_types_source"]
    with duckdb.connect(str(out / "radar.duckdb"), read_only=True) as con:
        stored = dict(con.execute(f"SELECT key, value FROM {snapshot_meta.BUILD_TABLE}").fetchall())
    assert json.loads(stored["event_types"]) == ["board_opened", "card_moved"]

    fresh = runner.invoke(app, ["build-features", *span, "--refresh-event-types"])
    assert fresh.exit_code == 0, fresh.output
    assert "per-event features: chosen: the 2 most frequent" in fresh.output
    columns = list(pd.read_parquet(out / "snapshots.parquet").columns)
    assert "ev_exported_bold_pdf_bold__count_28d" in columns and "ev_card_moved__count_28d" not in columns
    assert [et.name for et in recorded_event_types(out)] == ["Exported [bold]PDF[/bold]", "board_opened"]
    assert snapshot_meta.read_parquet_meta(out / "snapshots.parquet")["event_types"] == [
        "Exported [bold]PDF[/bold]",
        "board_opened",
    ]


def test_scoring_with_a_model_whose_per_event_columns_are_missing_names_them_and_the_fix(tmp_path):
    from serving.scoring.score import score_frame
    from tests.serving.conftest import serving_snapshots, train_models

    per_event.record_event_types(tmp_path, [EventType("Comment, posted", "comment_posted", 50, False)])
    s = load_settings(
        output_dir=tmp_path,
        training={"bootstrap_samples": 0, "lightgbm": {"n_estimators": 10, "min_child_samples": 10}},
    )
    frame = serving_snapshots(n_accounts=120, n_dates=3)
    rng = np.random.default_rng(1)
    generated = [f.name for f in feature_registry(s) if f.name.startswith("ev_")]
    for name in generated:
        frame[name] = rng.poisson(5, len(frame)).astype(float)
    models = train_models(frame, s)
    assert "ev_comment_posted__count_28d" in models.renewal.model.features
    models.renewal.model.metadata["event_types"] = ["Comment, posted"]  # as training saves it
    rebuilt = frame.drop(columns=generated)  # a build that chose other event types
    with pytest.raises(ValueError) as caught:
        score_frame(rebuilt, models, s, explain=False)
    message = str(caught.value)
    assert f"lacks {len(generated)} feature column(s) that the renewal model (radar-renewal version 7) needs" in (
        message
    )
    assert "per-event features of the event types 'Comment, posted' (ev_comment_posted__count_28d" in message
    assert 'event_types = ["Comment, posted"]' in message and "radar build-features" in message
    assert "retrain" in message
    assert len(score_frame(frame, models, s, explain=False)) == len(frame)  # with the columns, it scores


def test_the_missing_columns_message_without_the_models_list_points_at_the_training_run():
    message = per_event.missing_features_message(
        ["ev_export_report__trend_90d", "nps_last"], "the upsell model (radar-upsell version 3)", None
    )
    assert "event types export_report (ev_export_report__trend_90d)" in message
    assert "snapshot.event_types parameter" in message and "features.event_types" in message
    assert "other missing features: nps_last" in message
