"""Training tables from snapshots and from any exported file, and the errors that say what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.snapshot import LABEL_CONTEXT, LABELS
from radar.settings import Settings
from training.dataset import DatasetError, from_file, from_snapshots
from training.outcome import TARGETS


def test_from_snapshots_keeps_known_labels_and_leaves_the_health_score_to_the_baseline(make_snapshot_frame):
    # given snapshots where some churn labels are unknown (NaN)
    frame = make_snapshot_frame()
    # when
    table = from_snapshots(frame, TARGETS["renewal"], Settings())
    # then unknown labels are gone, labels are 0/1 ints, the health score is a baseline, not a feature
    assert len(table.frame) == frame.churned.notna().sum()
    assert set(table.frame.churned.unique()) <= {0, 1} and table.frame.churned.dtype == np.int64
    assert "health_score" not in table.features and "health_band" not in table.features
    assert table.baseline_col == "health_score" and "health_score" in table.frame
    assert {"segment", "industry", "region", "main_product", "billing_period"} <= set(table.categorical)
    assert set(table.categorical) <= set(table.features)
    assert not {"name", "csm_owner", "churned", "expanded", "account_id", "as_of"} & set(table.features)
    assert (table.weight_col, table.segment_col, table.time_col) == ("mrr", "segment", "as_of")
    assert pd.api.types.is_datetime64_any_dtype(table.frame.as_of)
    assert table.descriptions["adoption_rate_28d"] == "Active users ÷ seats, last 28 days"


def test_the_three_targets_read_their_label_and_none_of_the_label_columns_is_a_feature(make_snapshot_frame):
    # given snapshots with every label and the columns saying which period a label covers
    frame = make_snapshot_frame()
    label_columns = set(LABELS) | set(LABEL_CONTEXT)
    tables = {name: from_snapshots(frame, target, Settings()) for name, target in TARGETS.items()}
    assert set(tables) == {"renewal", "upsell", "next_renewal"}
    for table in tables.values():
        assert not label_columns & set(table.features)  # features come from the registry only
        assert "days_to_next_renewal" in table.features  # a feature, and the band of the band table
    # then next_renewal trains on churned_by_renewal with each row's own label window end
    nxt = tables["next_renewal"]
    assert nxt.target.label == "churned_by_renewal" and nxt.target.model_name == "radar-next-renewal"
    assert len(nxt.frame) == frame.churned_by_renewal.notna().sum()
    assert nxt.label_end_col == "label_end_by_renewal"
    assert pd.api.types.is_datetime64_any_dtype(nxt.label_ends)
    assert (nxt.label_ends >= nxt.frame.as_of + pd.Timedelta(days=90)).all()
    # the churn targets are reported per band of days to the next renewal; upsell is not
    assert nxt.band_col == tables["renewal"].band_col == "days_to_next_renewal"
    assert tables["upsell"].band_col is None
    assert tables["renewal"].label_end_col is None and tables["renewal"].label_ends is None


def test_snapshots_built_before_the_label_existed_ask_for_a_rebuild(make_snapshot_frame):
    frame = make_snapshot_frame().drop(columns=["churned_by_renewal", "next_renewal", "label_end_by_renewal"])
    with pytest.raises(DatasetError, match=r"no churned_by_renewal or label_end_by_renewal column.*build-features"):
        from_snapshots(frame, TARGETS["next_renewal"], Settings())
    assert len(from_snapshots(frame, TARGETS["renewal"], Settings()).frame) > 0  # the others still train


def test_renewal_window_mode_keeps_only_snapshots_with_a_renewal_in_the_horizon(make_snapshot_frame):
    frame = make_snapshot_frame()
    table = from_snapshots(frame, TARGETS["upsell"], Settings(domain={"renewal_window_mode": True}))
    assert len(table.frame) == frame.renewal_in_horizon.sum()


def test_a_snapshot_table_without_a_feature_names_it(make_snapshot_frame):
    frame = make_snapshot_frame().drop(columns=["adoption_rate_28d"])
    with pytest.raises(DatasetError, match="missing column.*adoption_rate_28d"):
        from_snapshots(frame, TARGETS["renewal"], Settings())


def exported(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "customer": np.repeat([f"c{i}" for i in range(n // 3)], 3),
            "month": np.tile(["2025-01-31", "2025-02-28", "2025-03-31"], n // 3),
            "plan": rng.choice(np.array(["basic", "pro", None], dtype=object), n),
            "partner": rng.choice([True, False], n),
            "seats": rng.integers(1, 50, n),
            "usage": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "signed_at": pd.Timestamp("2024-01-01"),
            "left": np.where(rng.random(n) < 0.1, np.nan, rng.binomial(1, 0.3, n)),
        }
    )


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_from_file_reads_categorical_and_missing_values(tmp_path, suffix):
    # given an exported table with text, boolean, integer and float columns, gaps and unknown labels
    frame = exported()
    path = tmp_path / f"export.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    # when
    table = from_file(path, label="left", id_col="customer", time_col="month", name="attrition")
    # then every other column is a feature (except the extra timestamp), text and bool ones categorical
    assert table.features == ["plan", "partner", "seats", "usage"]
    assert table.categorical == ["plan", "partner"]
    assert len(table.frame) == frame.left.notna().sum()
    assert pd.api.types.is_datetime64_any_dtype(table.frame.month)
    assert table.target.name == "attrition" and table.target.label == "left"
    assert table.weight_col is None and table.baseline_col is None


def test_from_file_without_an_id_gives_each_row_its_own(tmp_path):
    path = tmp_path / "t.parquet"
    exported().drop(columns=["customer", "month"]).to_parquet(path)
    table = from_file(path, label="left", id_col=None, time_col=None, name="attrition")
    assert table.ids.is_unique and table.time_col is None


def test_missing_label_column_lists_the_columns(tmp_path):
    path = tmp_path / "t.csv"
    exported().to_csv(path, index=False)
    with pytest.raises(
        DatasetError, match=r"label column 'churn' not found in t.csv; available columns: customer, month"
    ):
        from_file(path, label="churn", id_col="customer", time_col="month", name="x")


def test_non_binary_label_shows_its_values(tmp_path):
    path = tmp_path / "t.csv"
    exported().assign(left=lambda f: f.seats % 3).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"'left' is not binary: its values are 0, 1, 2"):
        from_file(path, label="left", id_col="customer", time_col="month", name="x")


def test_text_labels_are_not_binary(tmp_path):
    path = tmp_path / "t.csv"
    exported().assign(left=lambda f: np.where(f.seats > 20, "yes", "no")).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"values are 'no', 'yes'"):
        from_file(path, label="left", id_col="customer", time_col="month", name="x")


def test_duplicate_ids_per_time_show_an_example(tmp_path):
    frame = exported()
    frame.loc[1, "month"] = frame.loc[0, "month"]  # c0 twice in January
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DatasetError, match=r"'customer' has duplicates per month: 2 rows share a key, e.g. id 'c0' at month 2025-01-31"
    ):
        from_file(path, label="left", id_col="customer", time_col="month", name="x")


def test_duplicate_ids_without_a_time_column_are_an_error(tmp_path):
    path = tmp_path / "t.csv"
    exported().to_csv(path, index=False)
    with pytest.raises(DatasetError, match="no time column was given"):
        from_file(path, label="left", id_col="customer", time_col=None, name="x")


def test_a_label_with_one_class_is_an_error(tmp_path):
    path = tmp_path / "t.csv"
    exported().assign(left=0).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="has only the value 0 in 60 labelled rows"):
        from_file(path, label="left", id_col="customer", time_col="month", name="x")
