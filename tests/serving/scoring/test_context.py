"""The context line: contract end, MRR and tenure, said apart from the drivers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from serving.scoring.context import context_line, context_lines, renewal_text, tenure_text


def test_the_context_line_says_contract_end_mrr_and_tenure():
    row = {"as_of": date(2026, 12, 3), "days_to_next_renewal": 88, "mrr": 5028.4, "tenure_days": 840}
    assert context_line(row) == "renews 2027-03-01, in 88 days · MRR 5,028 · customer for 2.3 years"


def test_the_next_renewal_date_is_used_when_the_snapshot_has_it():
    row = {"as_of": pd.Timestamp("2026-12-03"), "next_renewal": pd.Timestamp("2027-03-01"), "mrr": None}
    assert context_line(row) == "renews 2027-03-01, in 88 days"
    frame = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2026-12-03", "2026-12-03"]),
            "next_renewal": [date(2027, 1, 2), None],
            "days_to_next_renewal": [30.0, 10.0],  # the date wins where there is one
            "mrr": [100.0, np.nan],
            "tenure_days": [30.0, 200.0],
        }
    )
    assert context_lines(frame) == [
        "renews 2027-01-02, in 30 days · MRR 100 · customer for 30 days",
        "renews 2026-12-13, in 10 days · customer for 7 months",
    ]


def test_missing_and_edge_cases_read_plainly():
    assert renewal_text(None, None, date(2026, 1, 1)) == "no contract end recorded"
    assert renewal_text(date(2026, 1, 1), 0, date(2026, 1, 1)) == "renews 2026-01-01, today"
    assert renewal_text(None, 1, date(2026, 1, 1)) == "renews 2026-01-02, in 1 day"
    assert tenure_text(None) is None and tenure_text(400) == "customer for 1.1 years"
    assert context_lines(pd.DataFrame({"mrr": [12.0]}), [date(2026, 1, 1)]) == ["no contract end recorded · MRR 12"]


def test_score_output_has_the_context_line(models, latest, settings, scored_at):
    from serving.scoring.score import score_frame

    rows = latest.iloc[:10]
    out = score_frame(rows, models, settings, scored_at=scored_at)
    assert out["context"].tolist() == context_lines(rows.reset_index(drop=True), out["as_of"].tolist())
    assert all(line.startswith(("renews", "no contract end", "contract ended")) for line in out["context"])
