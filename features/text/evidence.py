"""QCF evidence: matched quotes from customer text, for people to read.

``extract_evidence`` turns rows of text (feedback, ticket bodies, touchpoint notes, ...)
into one row per matched expression per sentence, with the quote, so people can read
why an account shows a signal. It works batch by batch (``iter_evidence``) so that a
caller streaming from DuckDB keeps memory bounded. Per-snapshot signals from evidence are computed by ``features.feedback.qcf_features``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import ibis
import pandas as pd

from features.text.language import resolve_languages
from features.text.matcher import Matcher, compile_matcher
from features.text.sentences import split_sentences
from features.text.sentiment import sentence_sentiment
from features.text.taxonomy import Taxonomy, load_taxonomy

INPUT_COLUMNS = (
    "source_table",
    "source_id",
    "account_id",
    "occurred_at",
    "channel",
    "text",
    "language",
)
EVIDENCE_COLUMNS: dict[str, str] = {
    "account_id": "str",
    "occurred_at": "datetime64[us]",
    "channel": "str",
    "source_table": "str",
    "source_id": "str",
    "conversation_id": "str",  # source_table + ":" + source_id
    "language": "str",
    "sentence_index": "int64",  # position of the sentence in its text, from 0
    "sentence": "str",
    "bucket": "str",
    "polarity": "str",  # green / gray / red; gray when negated
    "negated": "bool",
    "expression": "str",  # the taxonomy expression as written
    "sentiment": "float64",  # [-1, 1]; see features.text.sentiment
}
# the same columns as a database table (the `evidence` table of the workspace)
EVIDENCE_SCHEMA = ibis.schema(
    {
        c: {"str": "string", "datetime64[us]": "timestamp", "int64": "int64", "bool": "boolean", "float64": "float64"}[
            t
        ]
        for c, t in EVIDENCE_COLUMNS.items()
    }
)
_ROW_COLUMNS = ("account_id", "occurred_at", "channel", "source_table", "source_id")
_MATCH_COLUMNS = tuple(c for c in EVIDENCE_COLUMNS if c not in (*_ROW_COLUMNS, "conversation_id"))
_SORT = ["account_id", "occurred_at", "conversation_id", "sentence_index"]


def _naive_utc(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[us]")


def empty_evidence() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in EVIDENCE_COLUMNS.items()})


def _evidence_of(batch: pd.DataFrame, matcher: Matcher) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in batch.columns]
    if missing:
        raise ValueError(f"text rows lack columns {missing}; expected {list(INPUT_COLUMNS)}")
    texts = batch["text"].tolist()
    languages = resolve_languages(texts, batch["language"].tolist())
    rows: list[int] = []  # position in the batch of each match's text row
    found: list[tuple] = []  # _MATCH_COLUMNS of each match
    for row, (text, language) in enumerate(zip(texts, languages)):
        if language not in matcher.languages or not isinstance(text, str):
            continue
        for index, sentence in enumerate(split_sentences(text)):
            matches = matcher.match(sentence, language)
            if not matches:
                continue
            score = sentence_sentiment(sentence, language, [m.polarity for m in matches])
            for m in matches:
                rows.append(row)
                found.append(
                    (language, index, sentence, m.expression.bucket, m.polarity, m.negated, m.expression.text, score)
                )
    if not rows:
        return empty_evidence()
    picked = batch.iloc[rows]
    frame = pd.DataFrame(found, columns=list(_MATCH_COLUMNS))
    for c in _ROW_COLUMNS:
        frame[c] = picked[c].astype("str").to_numpy()
    frame["occurred_at"] = _naive_utc(picked["occurred_at"]).to_numpy()
    frame["conversation_id"] = frame["source_table"] + ":" + frame["source_id"]
    return frame[list(EVIDENCE_COLUMNS)].astype(EVIDENCE_COLUMNS)


def iter_evidence(batches: Iterable[pd.DataFrame], taxonomy: Taxonomy | None = None) -> Iterator[pd.DataFrame]:
    """Evidence of each batch of text rows, in input order (possibly empty frames)."""
    matcher = compile_matcher(taxonomy if taxonomy is not None else load_taxonomy())
    for batch in batches:
        yield _evidence_of(batch, matcher)


def extract_evidence(texts: pd.DataFrame, taxonomy: Taxonomy | None = None, batch_rows: int = 20_000) -> pd.DataFrame:
    """All evidence of ``texts``, sorted by account, time, conversation and sentence.

    ``texts`` has ``INPUT_COLUMNS``; ``text`` and ``language`` may be empty. Within a
    sentence, matches keep their order in the text. The result does not depend on the
    order of the input rows or on ``batch_rows``.
    """
    if batch_rows <= 0:
        raise ValueError("batch_rows must be positive")
    batches = (texts.iloc[i : i + batch_rows] for i in range(0, len(texts), batch_rows))
    frames = [f for f in iter_evidence(batches, taxonomy) if len(f)]
    if not frames:
        return empty_evidence()
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(_SORT, kind="stable", ignore_index=True)
