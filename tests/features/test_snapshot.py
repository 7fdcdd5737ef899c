"""Snapshots: point in time by construction, labels from subscriptions only, missing tables."""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from features.snapshot import LABEL_CONTEXT, LABELS, META, build_evidence, feature_registry, snapshot_expr
from radar.settings import load_settings

AS_OF = date(2024, 6, 30)
DATA_END = date(2025, 3, 31)
# an output folder of its own: no recorded per-event choice of another build is read
SETTINGS = load_settings(
    output_dir=Path(tempfile.mkdtemp(prefix="radar-snapshot-tests-")), features={"windows": (28, 90)}
)
TEXTS = [
    "We plan to renew next quarter.",
    "We are looking at other vendors. The price is too expensive.",
    "Nous envisageons d'autres fournisseurs.",
    "Abbiamo bisogno di più licenze.",
    "Thanks for the call.",
]
# the defaults' names, and names of another product's own (per-event-type features, some with quantities)
EVENTS = ["login", "report_shared", "feature_api", "setup_invite_team", "onboarding_profile", "Pay Invoice", "canvas"]


def _ts(day_offset: int, hour: int = 12) -> datetime:
    return datetime.combine(AS_OF, datetime.min.time()) + timedelta(days=day_offset, hours=hour)


def base_tables() -> dict[str, list[dict]]:
    return {
        "accounts": [
            {"account_id": "A1", "name": "Acme", "segment": "smb", "csm_owner": "Ann"},
            {"account_id": "A2", "name": "Beta", "segment": "enterprise", "csm_owner": "Bob"},
        ],
        "subscriptions": [
            {
                "subscription_id": "S1",
                "account_id": "A1",
                "product": "base",
                "start_date": date(2024, 1, 1),
                "end_date": date(2025, 1, 1),
                "mrr": 100.0,
                "seats": 10,
                "billing_period": 12,
            },
            {
                "subscription_id": "S2",
                "account_id": "A2",
                "product": "base",
                "start_date": date(2023, 7, 1),
                "end_date": date(2024, 8, 1),
                "mrr": 300.0,
                "seats": 30,
                "billing_period": 12,
            },
        ],
    }


rows_at = st.integers(min_value=-120, max_value=60)  # day offsets around as_of


@st.composite
def workspaces(draw):
    tables = base_tables()
    acct = st.sampled_from(["A1", "A2"])
    tables["usage_events"] = [
        {
            "account_id": draw(acct),
            "occurred_at": _ts(draw(rows_at), draw(st.integers(0, 23))),
            "event_type": draw(st.sampled_from(EVENTS)),
            "user_id": f"u{draw(st.integers(0, 4))}",
            "quantity": draw(st.sampled_from([1.0, 1.0, 12.5, 300.0])),
        }
        for _ in range(draw(st.integers(1, 25)))
    ]
    tables["support_tickets"] = []
    for i in range(draw(st.integers(0, 5))):
        opened = _ts(draw(rows_at))
        tables["support_tickets"].append(
            {
                "ticket_id": f"T{i}",
                "account_id": draw(acct),
                "opened_at": opened,
                "first_response_at": opened + timedelta(hours=draw(st.integers(1, 300))),
                "resolved_at": opened + timedelta(hours=draw(st.integers(1, 2000))),
                "priority": draw(st.sampled_from(["low", "high"])),
                "escalated": draw(st.booleans()),
                "reopened": False,
                "csat": float(draw(st.integers(1, 5))),
                "subject": "Help",
                "body": draw(st.sampled_from(TEXTS)),
            }
        )
    tables["feedback"] = [
        {
            "feedback_id": f"F{i}",
            "account_id": draw(acct),
            "submitted_at": _ts(draw(rows_at)),
            "channel": draw(st.sampled_from(["nps_survey", "chat"])),
            "score": float(draw(st.integers(0, 10))),
            "text": draw(st.sampled_from(TEXTS)),
            "language": None,
        }
        for i in range(draw(st.integers(0, 5)))
    ]
    tables["touchpoints"] = [
        {
            "account_id": draw(acct),
            "occurred_at": _ts(draw(rows_at)),
            "kind": draw(st.sampled_from(["qbr", "call"])),
            "notes": draw(st.sampled_from(TEXTS)),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    return tables


ID_COLUMNS = ("account_id", "subscription_id", "ticket_id", "feedback_id")


def merge(portfolio: list[dict[str, list[dict]]]) -> dict[str, list[dict]]:
    """Many random workspaces side by side in one, their accounts and ids prefixed W<i>_.

    Features are per account, so one build checks every workspace of the portfolio;
    the first keeps its names (A1, A2) for the rows `mutate_future` adds."""
    out: dict[str, list[dict]] = {}
    for i, tables in enumerate(portfolio):
        prefix = f"W{i}_" if i else ""
        for name, rows in tables.items():
            out.setdefault(name, []).extend(
                {k: (prefix + v if k in ID_COLUMNS and isinstance(v, str) else v) for k, v in r.items()} for r in rows
            )
    return out


def build(factory, tables: dict[str, list[dict]], as_of: date = AS_OF) -> pd.DataFrame:
    ws = factory(tables, DATA_END)
    evidence = build_evidence(ws, SETTINGS)
    return snapshot_expr(ws, [as_of], SETTINGS, evidence).execute().set_index("account_id")


def _time_of(table: str, row: dict):
    col = {
        "usage_events": "occurred_at",
        "support_tickets": "opened_at",
        "feedback": "submitted_at",
        "touchpoints": "occurred_at",
        "subscriptions": "start_date",
    }[table]
    value = row[col]
    return value if isinstance(value, date) and not isinstance(value, datetime) else value.date()


def mutate_future(tables: dict[str, list[dict]], rng: np.random.Generator) -> dict[str, list[dict]]:
    """Change, delete and add rows dated on or after AS_OF; leave the past alone."""
    out = {k: [dict(r) for r in v] for k, v in tables.items()}
    for name in ("usage_events", "support_tickets", "feedback", "touchpoints"):
        kept = []
        for row in out[name]:
            if _time_of(name, row) >= AS_OF:
                if rng.random() < 0.4:
                    continue  # delete
                for k, v in row.items():  # change every non-time value
                    if isinstance(v, float):
                        row[k] = v + 1
                    elif isinstance(v, str) and k not in (
                        "account_id",
                        "ticket_id",
                        "feedback_id",
                        "channel",
                        "kind",
                        "priority",
                    ):
                        row[k] = v + " We are cancelling. Budget cut."
            kept.append(row)
        out[name] = kept
    out["usage_events"] += [
        {"account_id": "A1", "occurred_at": _ts(int(d)), "event_type": "login", "user_id": "new", "quantity": 1.0}
        for d in rng.integers(0, 30, size=3)
    ]
    out["feedback"].append(
        {
            "feedback_id": "FX",
            "account_id": "A2",
            "submitted_at": _ts(0, 0),
            "channel": "chat",
            "score": None,
            "text": "We are looking at other vendors.",
            "language": "en",
        }
    )
    out["support_tickets"].append(
        {
            "ticket_id": "TX",
            "account_id": "A1",
            "opened_at": _ts(1),
            "priority": "urgent",
            "escalated": True,
            "body": "Too expensive, budget cut.",
        }
    )
    out["touchpoints"].append({"account_id": "A1", "occurred_at": _ts(0, 0), "kind": "qbr", "notes": "Budget cut."})
    out["subscriptions"].append(
        {
            "subscription_id": "SX",
            "account_id": "A1",
            "product": "addon_api",
            "start_date": AS_OF,
            "end_date": None,
            "mrr": 50.0,
            "seats": 5,
            "billing_period": 1,
        }
    )
    return out


@hsettings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(portfolio=st.lists(workspaces(), min_size=3, max_size=12), seed=st.integers(0, 2**16))
def test_rows_dated_on_or_after_as_of_never_change_a_snapshot(workspace_factory, portfolio, seed):
    tables = merge(portfolio)
    before = build(workspace_factory, tables)
    after = build(workspace_factory, mutate_future(tables, np.random.default_rng(seed)))
    # next_renewal and label_end_by_renewal are known at as_of: they are compared too
    features = [c for c in before.columns if c not in (*LABELS, "renewal_in_horizon")]
    assert {"next_renewal", "label_end_by_renewal"} <= set(features)
    if any(_time_of("usage_events", r) < AS_OF for r in tables["usage_events"]):  # per-event features compared too
        assert any(c.startswith("ev_") for c in features) and list(after.columns) == list(before.columns)
    pd.testing.assert_frame_equal(before[features], after[features], check_exact=False, rtol=1e-9)


def test_the_mutation_does_change_later_snapshots(workspace_factory):
    """Guard against a vacuous property: the same mutation is visible one month later."""
    tables = base_tables() | {"usage_events": [], "feedback": [], "support_tickets": [], "touchpoints": []}
    later = AS_OF + timedelta(days=31)
    before = build(workspace_factory, tables, later)
    after = build(workspace_factory, mutate_future(tables, np.random.default_rng(0)), later)
    assert after.loc["A1", "logins_28d"] > before.loc["A1", "logins_28d"]
    assert after.loc["A1", "tickets_90d"] == before.loc["A1", "tickets_90d"] + 1
    assert after.loc["A2", "qcf_renewal_likelihood_red_90d"] > before.loc["A2", "qcf_renewal_likelihood_red_90d"]


@hsettings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(portfolio=st.lists(workspaces(), min_size=2, max_size=8), other=st.lists(workspaces(), min_size=2, max_size=8))
def test_labels_depend_only_on_subscriptions(workspace_factory, portfolio, other):
    tables = merge(portfolio)
    mixed = merge(other) | {"subscriptions": tables["subscriptions"]}
    a, b = build(workspace_factory, tables), build(workspace_factory, mixed)
    pd.testing.assert_frame_equal(a[LABELS + LABEL_CONTEXT], b[LABELS + LABEL_CONTEXT])


def test_only_subscriptions_and_usage_gives_missing_not_zero(workspace_factory):
    tables = {
        "subscriptions": base_tables()["subscriptions"],
        "usage_events": [{"account_id": "A1", "occurred_at": _ts(-3), "event_type": "login", "user_id": "u1"}],
    }
    snap = build(workspace_factory, tables)
    registry = feature_registry(SETTINGS)
    assert snap.loc["A1", "logins_28d"] == 1 and snap.loc["A2", "logins_28d"] == 0
    for source in ("support_tickets", "feedback", "touchpoints", "evidence"):
        cols = [f.name for f in registry.from_source(source)]
        assert cols and snap[cols].isna().all().all(), source
    assert snap["segment"].isna().all()
    assert snap["health_score"].notna().all()  # from the components that exist


def test_one_row_per_active_account_with_every_registered_feature(workspace_factory):
    snap = build(workspace_factory, base_tables(), date(2024, 9, 30))
    assert list(snap.index) == ["A1"]  # A2's contract ended 2024-08-01 and was not renewed
    registry = feature_registry(SETTINGS)
    assert list(snap.columns) == ["as_of", *META, *registry.names, *LABELS, *LABEL_CONTEXT]
    assert LABELS == ["churned", "expanded", "churned_by_renewal"]
    assert LABEL_CONTEXT == ["renewal_in_horizon", "next_renewal", "label_end_by_renewal"]
    # A1's contract ends 2025-01-01, 93 days after as_of: T = renewal + 30 days
    assert snap.loc["A1", "next_renewal"] == pd.Timestamp("2025-01-01")
    assert snap.loc["A1", "label_end_by_renewal"] == pd.Timestamp("2025-01-31")
    assert snap.loc["A1", "days_to_next_renewal"] == 93
    assert pd.isna(snap.loc["A1", "adoption_rate_28d"])  # no usage table: missing, not zero
