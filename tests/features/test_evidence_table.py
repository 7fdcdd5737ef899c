"""The `evidence` table holds the matches of every text, however many batches they take."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from features.snapshot import build_evidence, text_rows
from features.text.evidence import extract_evidence
from radar.settings import load_settings

TEXTS = ["We plan to renew next quarter.", "The price is too expensive.", "Abbiamo bisogno di più licenze."]


def test_every_batch_of_texts_reaches_the_evidence_table(workspace_factory):
    start = datetime(2024, 1, 1, 9)
    tables = {
        "subscriptions": [
            {
                "subscription_id": "S1",
                "account_id": "A1",
                "product": "base",
                "start_date": date(2023, 1, 1),
                "mrr": 100.0,
            }
        ],
        "feedback": [
            {
                "feedback_id": f"F{i}",
                "account_id": "A1",
                "submitted_at": start + timedelta(days=i),
                "channel": "chat",
                "text": TEXTS[i % 3],
            }
            for i in range(23)
        ],
        "touchpoints": [
            {
                "account_id": "A1",
                "occurred_at": start + timedelta(days=i, hours=1),
                "kind": "call",
                "notes": TEXTS[i % 3],
            }
            for i in range(11)
        ],
    }
    ws = workspace_factory(tables, date(2024, 6, 30))
    settings = load_settings(features={"text_batch_rows": 5})  # 34 texts: 7 batches

    evidence = build_evidence(ws, settings).execute()

    expected = extract_evidence(text_rows(ws).execute())
    assert len(evidence) == len(expected) == 34
    assert sorted(evidence.conversation_id) == sorted(expected.conversation_id)
