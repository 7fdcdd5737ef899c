"""Throughput guard for extract_evidence (marked slow; the floor is far below the
measured ~8,000 texts/s on one core so that a loaded CI machine does not flake)."""

import random
import time

import pandas as pd
import pytest

from features.text.evidence import INPUT_COLUMNS, extract_evidence

SENTENCES = {
    "en": [
        "We plan to renew next quarter.",
        "Honestly it is too expensive.",
        "Can you resend the invoice?",
        "We are not looking at other vendors.",
        "The meeting moved to Tuesday, e.g. 3 p.m.",
    ],
    "fr": [
        "Nous prévoyons de renouveler le contrat.",
        "C'est trop cher pour nous.",
        "Pouvez-vous renvoyer la facture ?",
        "Nous ne cherchons pas d'autres fournisseurs.",
    ],
    "it": [
        "Prevediamo di rinnovare il contratto.",
        "Il prezzo è troppo alto.",
        "Potete inviare di nuovo la fattura?",
        "Non stiamo valutando altri fornitori.",
    ],
}


def synthetic_texts(n: int, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lang = rng.choice(["en", "en", "fr", "it"])
        text = " ".join(rng.choice(SENTENCES[lang]) for _ in range(rng.randint(2, 5)))
        rows.append(
            (
                "feedback",
                str(i),
                f"a{i % 97}",
                pd.Timestamp("2024-01-01"),
                "email",
                text,
                lang if rng.random() > 0.3 else None,
            )
        )
    return pd.DataFrame(rows, columns=list(INPUT_COLUMNS))


@pytest.mark.slow
def test_throughput_floor():
    frame = synthetic_texts(10_000)
    extract_evidence(frame.head(50))  # load models once
    start = time.perf_counter()
    ev = extract_evidence(frame)
    rate = len(frame) / (time.perf_counter() - start)
    assert not ev.empty
    assert rate >= 1_000, f"{rate:,.0f} texts/s"
