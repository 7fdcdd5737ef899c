"""Data-quality report: label rates, missing shares, constant features, leakage alarm."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.quality import assess, render_markdown


def snapshots(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    churned = rng.random(n) < 0.2
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "as_of": np.repeat(pd.to_datetime(["2024-01-31", "2024-02-29"]), n // 2),
            "churned": churned.astype(float),
            "expanded": (rng.random(n) < 0.1).astype(float),
            "honest": rng.normal(size=n) + churned,  # informative, not perfect
            "leaky": churned * 10 + rng.normal(scale=0.01, size=n),  # knows the label
            "flat": 1.0,
            "gappy": np.where(rng.random(n) < 0.25, np.nan, 1.0 + rng.random(n)),
        }
    )


def test_leakage_alarm_flags_only_the_leaky_feature():
    found = assess(snapshots(), ["honest", "leaky", "flat", "gappy"], set())
    assert [(f, lab) for f, lab, _ in found.leakage] == [("leaky", "churned")]
    assert found.constant == ["flat"]
    assert 0.15 < found.missing["gappy"] < 0.35 and found.missing["honest"] == 0
    assert found.per_as_of["rows"].tolist() == [200, 200]


def test_report_names_the_alarm_and_the_rates():
    md = render_markdown(assess(snapshots(), ["honest", "leaky", "flat", "gappy"], set()))
    assert "**leaky** vs `churned`" in md
    assert "| as_of | rows | churned_rate" in md
    assert "gappy" in md and "flat" in md
