"""extract_evidence / iter_evidence: one row per matched expression per sentence."""

import math

import pandas as pd
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from features.text.evidence import EVIDENCE_COLUMNS, INPUT_COLUMNS, extract_evidence, iter_evidence


def texts(*rows):
    """Rows of (source_id, account_id, occurred_at, text, language)."""
    return pd.DataFrame(
        [
            {
                "source_table": "feedback",
                "source_id": sid,
                "account_id": acct,
                "occurred_at": pd.Timestamp(ts),
                "channel": "email",
                "text": text,
                "language": lang,
            }
            for sid, acct, ts, text, lang in rows
        ],
        columns=list(INPUT_COLUMNS),
    )


@pytest.fixture
def sample():
    return texts(
        ("f1", "acme", "2024-03-02", "Thanks! We plan to renew next quarter. But it is too expensive.", None),
        ("f2", "acme", "2024-03-01", "Il n'y a pas de coupe budgétaire. Trop cher !", "fr"),
        ("f3", "bolt", "2024-03-05", "Il prezzo è troppo alto.\nServono più licenze.", None),
        ("f4", "bolt", "2024-03-06", None, "en"),
        ("f5", "bolt", "2024-03-07", "", None),
        ("f6", "core", "2024-03-08", "Nothing to report here.", "en"),
    )


def test_columns_and_types(sample):
    ev = extract_evidence(sample)
    assert list(ev.columns) == list(EVIDENCE_COLUMNS)
    assert ev["negated"].dtype == bool
    assert ev["sentence_index"].dtype == "int64"
    assert ev["sentiment"].dtype == "float64"
    assert ev["occurred_at"].dtype == "datetime64[us]"
    assert ev["polarity"].isin(["green", "gray", "red"]).all()
    assert ev["sentiment"].between(-1, 1).all()


def test_rows_carry_the_quote_and_where_it_came_from(sample):
    ev = extract_evidence(sample)
    row = ev[ev["expression"] == "plan to renew"].iloc[0]
    assert row["sentence"] == "We plan to renew next quarter."
    assert row["sentence_index"] == 1
    assert (row["account_id"], row["conversation_id"], row["channel"]) == ("acme", "feedback:f1", "email")
    assert (row["bucket"], row["polarity"], row["negated"]) == ("renewal_likelihood", "green", False)
    assert row["language"] == "en"  # detected
    assert row["occurred_at"] == pd.Timestamp("2024-03-02")


def test_one_row_per_match_and_only_matched_sentences(sample):
    ev = extract_evidence(sample)
    per_text = ev.groupby("source_id")["expression"].apply(list).to_dict()
    assert per_text == {
        "f1": ["plan to renew", "too expensive"],
        "f2": ["coupe budgétaire", "trop cher"],
        "f3": ["prezzo è troppo alto", "servono più licenze"],
    }
    assert "Thanks!" not in set(ev["sentence"])


def test_negated_match_is_kept_as_gray_evidence(sample):
    ev = extract_evidence(sample)
    row = ev[ev["source_id"] == "f2"].iloc[0]
    assert (row["polarity"], row["negated"]) == ("gray", True)
    assert row["sentence"] == "Il n'y a pas de coupe budgétaire."


def test_sentiment_is_vader_for_english_and_taxonomy_polarity_otherwise(sample):
    ev = extract_evidence(sample).set_index("expression")
    vader = SentimentIntensityAnalyzer()
    assert ev.loc["too expensive", "sentiment"] == pytest.approx(
        vader.polarity_scores("But it is too expensive.")["compound"]
    )
    assert ev.loc["coupe budgétaire", "sentiment"] == 0.0  # negated: gray counts 0
    assert ev.loc["trop cher", "sentiment"] == -1.0
    assert ev.loc["servono più licenze", "sentiment"] == 1.0


def test_mixed_sentence_gets_the_mean_taxonomy_polarity():
    ev = extract_evidence(texts(("x", "a", "2024-01-01", "Trop cher, mais le support réactif aide.", "fr")))
    assert sorted(ev["polarity"]) == ["green", "red"]
    assert ev["sentiment"].tolist() == [0.0, 0.0]


def test_given_language_wins(sample):
    # French text labelled Italian: nothing in the Italian taxonomy matches it
    relabelled = sample.assign(language=["it", "it", None, None, None, None])
    ev = extract_evidence(relabelled)
    assert set(ev["source_id"]) == {"f3"}


def test_unsupported_language_gives_no_evidence():
    assert extract_evidence(texts(("x", "a", "2024-01-01", "Too expensive.", "de"))).empty


def test_no_matches_gives_an_empty_frame_with_the_columns():
    ev = extract_evidence(texts(("x", "a", "2024-01-01", "Hello.", "en")))
    assert ev.empty and list(ev.columns) == list(EVIDENCE_COLUMNS)
    assert extract_evidence(texts()).empty


def test_deterministic_and_independent_of_row_order_and_batch_size(sample):
    first = extract_evidence(sample)
    pd.testing.assert_frame_equal(first, extract_evidence(sample))
    pd.testing.assert_frame_equal(first, extract_evidence(sample.iloc[::-1], batch_rows=2))
    pd.testing.assert_frame_equal(first, extract_evidence(sample.sample(frac=1, random_state=3), batch_rows=1))


def test_iter_evidence_yields_one_frame_per_batch(sample):
    frames = list(iter_evidence([sample.iloc[:2], sample.iloc[2:4], sample.iloc[4:]]))
    assert [set(f["source_id"]) for f in frames] == [{"f1", "f2"}, {"f3"}, set()]
    assert all(list(f.columns) == list(EVIDENCE_COLUMNS) for f in frames)


def test_timezones_are_converted_to_naive_utc():
    frame = texts(("x", "a", "2024-01-01", "Too expensive.", "en"))
    frame["occurred_at"] = pd.Series([pd.Timestamp("2024-01-01 01:30", tz="Europe/Paris")])
    assert extract_evidence(frame)["occurred_at"].tolist() == [pd.Timestamp("2024-01-01 00:30")]


def test_ids_become_strings():
    frame = texts(("x", "a", "2024-01-01", "Too expensive.", "en"))
    frame["source_id"] = [42]
    frame["account_id"] = [7]
    ev = extract_evidence(frame)
    assert (ev.loc[0, "conversation_id"], ev.loc[0, "account_id"]) == ("feedback:42", "7")


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"lack columns \['language'\]"):
        extract_evidence(texts(("x", "a", "2024-01-01", "Too expensive.", "en")).drop(columns="language"))


def test_a_custom_taxonomy_is_used(make_taxonomy):
    t = make_taxonomy(en='language = "en"\n[upsell_readiness]\ngreen = ["sandbox"]')
    ev = extract_evidence(texts(("x", "a", "2024-01-01", "Too expensive. We want a sandbox.", "en")), t)
    assert ev["expression"].tolist() == ["sandbox"]
    assert not math.isnan(ev["sentiment"].iloc[0])


def test_streams_from_duckdb_in_batches(sample):
    import duckdb

    with duckdb.connect() as con:
        con.register("texts", sample)
        reader = con.sql("SELECT * FROM texts").to_arrow_reader(2)
        frames = list(iter_evidence(batch.to_pandas() for batch in reader))
    assert len(frames) == 3
    streamed = pd.concat(frames, ignore_index=True)
    expected = extract_evidence(sample)
    keys = ["conversation_id", "sentence_index", "expression"]
    pd.testing.assert_frame_equal(
        streamed.sort_values(keys, ignore_index=True), expected.sort_values(keys, ignore_index=True)
    )
