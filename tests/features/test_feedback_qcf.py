"""qcf_features: per-snapshot QCF features from the evidence table, point in time."""

import math
import random

import ibis
import pandas as pd
import pytest

from features.feedback import QCF_SPECS, qcf_features
from features.text.evidence import empty_evidence
from features.text.taxonomy import BUCKETS, POLARITIES
from radar.settings import FeatureSettings


def signal_columns(window_days: int) -> list[str]:
    return [f.name for spec in QCF_SPECS if spec.name.startswith("qcf_") for f in spec.expand((window_days,))]


def aggregate_signals(evidence: pd.DataFrame, snapshots: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """qcf_features on a real DuckDB backend, one output row per snapshot row, in order."""
    con = ibis.duckdb.connect()
    ev = evidence.assign(
        channel="chat",
        source_table="feedback",
        source_id="1",
        language="en",
        sentence_index=0,
        sentence="s",
        negated=False,
        expression="e",
    )
    spine = snapshots.assign(as_of=snapshots.as_of.dt.date)
    calendar = ibis.memtable(pd.DataFrame({"as_of": sorted(set(spine.as_of))}))
    out = qcf_features(
        con.create_table("evidence", ev),
        con.create_table("spine", spine),
        calendar,
        FeatureSettings(windows=(window_days,)),
    ).execute()
    out["as_of"] = pd.to_datetime(out["as_of"])
    return snapshots.merge(out, on=["account_id", "as_of"], how="left")[
        ["account_id", "as_of", *signal_columns(window_days)]
    ]


def evidence(*rows):
    """Rows of (account_id, occurred_at, conversation_id, bucket, polarity, sentiment)."""
    frame = empty_evidence()
    data = pd.DataFrame(
        rows, columns=["account_id", "occurred_at", "conversation_id", "bucket", "polarity", "sentiment"]
    )
    data["occurred_at"] = pd.to_datetime(data["occurred_at"])
    return pd.concat([frame, data], ignore_index=True) if rows else frame


def snapshots(*rows):
    return pd.DataFrame({"account_id": [r[0] for r in rows], "as_of": pd.to_datetime([r[1] for r in rows])})


AS_OF = "2024-04-01"


def test_columns_follow_the_naming_scheme():
    out = aggregate_signals(evidence(), snapshots(("a", AS_OF)), 28)
    assert list(out.columns) == ["account_id", "as_of", *signal_columns(28)]
    assert "qcf_pricing_perception_red_28d" in out.columns
    assert "qcf_renewal_likelihood_sentiment_28d" in out.columns
    assert "qcf_support_friction_red_conversations_28d" in out.columns


def test_point_in_time_window_boundaries():
    ev = evidence(
        ("a", "2024-03-04 00:00:00", "c1", "pricing_perception", "red", -1.0),  # as_of - 28d: in
        ("a", "2024-03-03 23:59:59", "c2", "pricing_perception", "red", -1.0),  # just before: out
        ("a", "2024-03-31 23:59:59", "c3", "pricing_perception", "red", -1.0),  # just before as_of: in
        ("a", "2024-04-01 00:00:00", "c4", "pricing_perception", "red", -1.0),  # at as_of: out
        ("a", "2024-04-02 00:00:00", "c5", "pricing_perception", "red", -1.0),  # after: out
    )
    out = aggregate_signals(ev, snapshots(("a", AS_OF)), 28)
    assert out.loc[0, "qcf_pricing_perception_red_28d"] == 2
    assert out.loc[0, "qcf_pricing_perception_red_conversations_28d"] == 2


def test_counts_sentiment_and_distinct_red_conversations():
    ev = evidence(
        ("a", "2024-03-20", "t:1", "support_friction", "red", -0.5),
        ("a", "2024-03-20", "t:1", "support_friction", "red", -0.5),  # same conversation
        ("a", "2024-03-21", "t:2", "support_friction", "red", float("nan")),
        ("a", "2024-03-22", "t:3", "support_friction", "green", 0.5),  # green only: not a red conversation
        ("a", "2024-03-22", "t:3", "support_friction", "gray", 0.3),
        ("b", "2024-03-22", "t:9", "support_friction", "red", -1.0),  # other account
    )
    row = aggregate_signals(ev, snapshots(("a", AS_OF)), 90).iloc[0]
    assert (
        row["qcf_support_friction_green_90d"],
        row["qcf_support_friction_gray_90d"],
        row["qcf_support_friction_red_90d"],
    ) == (1, 1, 3)
    assert row["qcf_support_friction_red_conversations_90d"] == 2
    assert row["qcf_support_friction_sentiment_90d"] == pytest.approx((-0.5 - 0.5 + 0.5 + 0.3) / 4)
    assert row["qcf_pricing_perception_red_90d"] == 0


def test_snapshots_without_evidence_get_zero_counts_and_nan_sentiment():
    ev = evidence(("a", "2024-03-20", "c", "pricing_perception", "red", -1.0))
    out = aggregate_signals(ev, snapshots(("z", AS_OF), ("a", "2024-01-01")), 28)
    counts = [c for c in signal_columns(28) if "_sentiment_" not in c]
    sentiment = [c for c in signal_columns(28) if "_sentiment_" in c]
    assert (out[counts] == 0).all().all()
    assert out[sentiment].isna().all().all()


def test_no_text_tables_means_missing_not_zero():
    con = ibis.duckdb.connect()
    spine = con.create_table("spine", pd.DataFrame({"account_id": ["a"], "as_of": [pd.Timestamp(AS_OF).date()]}))
    calendar = ibis.memtable(pd.DataFrame({"as_of": [pd.Timestamp(AS_OF).date()]}))
    out = qcf_features(None, spine, calendar, FeatureSettings(windows=(28,))).execute()
    assert out[signal_columns(28)].isna().all().all()


def test_one_row_per_snapshot_in_input_order():
    snaps = snapshots(("b", AS_OF), ("a", AS_OF), ("b", "2024-03-01"))
    out = aggregate_signals(evidence(), snaps, 28)
    pd.testing.assert_frame_equal(out[["account_id", "as_of"]], snaps)


def test_matches_a_plain_python_reference_on_random_data():
    rng = random.Random(11)
    accounts = ["a", "b", "c"]
    start = pd.Timestamp("2024-01-01")
    rows = [
        (
            rng.choice(accounts),
            start + pd.Timedelta(hours=rng.randint(0, 24 * 120)),
            f"c{rng.randint(0, 30)}",
            rng.choice(BUCKETS),
            rng.choice(POLARITIES),
            rng.choice([float("nan"), rng.uniform(-1, 1)]),
        )
        for _ in range(400)
    ]
    ev = evidence(*rows)
    snaps = snapshots(*[(a, d) for a in accounts for d in ("2024-02-01", "2024-03-01", "2024-04-01")])
    window = 30
    out = aggregate_signals(ev, snaps, window)
    for i, snap in snaps.iterrows():
        lo, hi = snap["as_of"] - pd.Timedelta(days=window), snap["as_of"]
        mine = [r for r in rows if r[0] == snap["account_id"] and lo <= r[1] < hi]
        for b in BUCKETS:
            for p in POLARITIES:
                assert out.loc[i, f"qcf_{b}_{p}_30d"] == sum(1 for r in mine if r[3] == b and r[4] == p)
            scores = [r[5] for r in mine if r[3] == b and not math.isnan(r[5])]
            expected = sum(scores) / len(scores) if scores else float("nan")
            assert out.loc[i, f"qcf_{b}_sentiment_30d"] == pytest.approx(expected, nan_ok=True)
            reds = {r[2] for r in mine if r[3] == b and r[4] == "red"}
            assert out.loc[i, f"qcf_{b}_red_conversations_30d"] == len(reds)
