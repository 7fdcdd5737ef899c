"""QCF evidence: matched quotes from customer text, and their per-snapshot signals.

``extract_evidence`` turns rows of text (feedback, ticket bodies, touchpoint notes, ...)
into one row per matched expression per sentence, with the quote, so people can read
why an account shows a signal. It works batch by batch (``iter_evidence``) so that a
caller streaming from DuckDB keeps memory bounded. ``aggregate_signals`` turns evidence
into snapshot features (DOMAIN section 4). Both are pure: no I/O beyond reading the
shipped taxonomy when none is given.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import duckdb
import pandas as pd

from features.text.language import resolve_languages
from features.text.matcher import Matcher, compile_matcher
from features.text.sentences import split_sentences
from features.text.sentiment import sentence_sentiment
from features.text.taxonomy import BUCKETS, POLARITIES, Taxonomy, load_taxonomy

INPUT_COLUMNS = (
    "source_table", "source_id", "account_id", "occurred_at", "channel", "text", "language",
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
                    (language, index, sentence, m.expression.bucket, m.polarity, m.negated,
                     m.expression.text, score)
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


def iter_evidence(
    batches: Iterable[pd.DataFrame], taxonomy: Taxonomy | None = None
) -> Iterator[pd.DataFrame]:
    """Evidence of each batch of text rows, in input order (possibly empty frames)."""
    matcher = compile_matcher(taxonomy if taxonomy is not None else load_taxonomy())
    for batch in batches:
        yield _evidence_of(batch, matcher)


def extract_evidence(
    texts: pd.DataFrame, taxonomy: Taxonomy | None = None, batch_rows: int = 20_000
) -> pd.DataFrame:
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


def signal_columns(window_days: int) -> list[str]:
    """Feature names ``aggregate_signals`` produces for one window."""
    w = f"{window_days}d"
    cols = []
    for b in BUCKETS:
        cols += [f"qcf_{b}_{p}_{w}" for p in POLARITIES]
        cols += [f"qcf_{b}_sentiment_{w}", f"qcf_{b}_red_conversations_{w}"]
    return cols


def aggregate_signals(
    evidence: pd.DataFrame, snapshots: pd.DataFrame, window_days: int
) -> pd.DataFrame:
    """Per snapshot and bucket: green/gray/red counts, mean sentiment, red conversations.

    For the snapshot (account_id, as_of), evidence counts when
    ``as_of - window_days <= occurred_at < as_of``: never on or after as_of. One output
    row per snapshot row, in order. No evidence gives 0 counts and NaN sentiment.
    """
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    snaps = pd.DataFrame(
        {
            "_row": range(len(snapshots)),
            "account_id": snapshots["account_id"].astype("str").to_numpy(),
            "as_of": _naive_utc(snapshots["as_of"]).to_numpy(),
        }
    )
    ev = pd.DataFrame(
        {
            "account_id": evidence["account_id"].astype("str").to_numpy(),
            "occurred_at": _naive_utc(evidence["occurred_at"]).to_numpy(),
            "conversation_id": evidence["conversation_id"].astype("str").to_numpy(),
            "bucket": evidence["bucket"].astype("str").to_numpy(),
            "polarity": evidence["polarity"].astype("str").to_numpy(),
            # DuckDB reads NaN as NULL, so AVG skips sentences without a score
            "sentiment": evidence["sentiment"].astype("float64").to_numpy(),
        }
    )
    w = f"{window_days}d"
    selects = []
    for b in BUCKETS:
        in_bucket = f"e.bucket = '{b}'"
        for p in POLARITIES:
            selects.append(
                f"count(*) FILTER ({in_bucket} AND e.polarity = '{p}') AS qcf_{b}_{p}_{w}"
            )
        selects.append(f"avg(e.sentiment) FILTER ({in_bucket}) AS qcf_{b}_sentiment_{w}")
        selects.append(
            f"count(DISTINCT e.conversation_id) FILTER ({in_bucket} AND e.polarity = 'red')"
            f" AS qcf_{b}_red_conversations_{w}"
        )
    sql = f"""
        SELECT {", ".join(selects)}
        FROM snaps s
        LEFT JOIN ev e
          ON e.account_id = s.account_id
         AND e.occurred_at >= s.as_of - INTERVAL ({int(window_days)}) DAY
         AND e.occurred_at < s.as_of
        GROUP BY s._row
        ORDER BY s._row
    """
    with duckdb.connect() as con:
        con.register("snaps", snaps)
        con.register("ev", ev)
        features = con.execute(sql).df()
    features = features[signal_columns(window_days)]
    for c in features.columns:
        features[c] = features[c].astype("float64" if "_sentiment_" in c else "int64")
    head = snapshots[["account_id", "as_of"]].reset_index(drop=True)
    return pd.concat([head, features], axis=1)
