"""Survey and qualitative-feedback features (indicators 6, 11, 13, 14 and the QCF buckets).

Surveys (NPS, CSAT) come from `feedback`. Qualitative signals come from the evidence
table (one row per matched expression in any text, built by `features.text`), so the
counts per bucket and polarity stay readable back to the quotes behind them.
"""

from __future__ import annotations

import ibis
from ibis import _

from features.exact import exact_mean
from features.registry import QCF_BUCKETS, FeatureSpec, feature_names, missing_features
from features.window import day_of, trailing
from radar.settings import FeatureSettings

SRC = "feedback"
NPS_DAYS = 365
SURVEY_SPECS = [
    FeatureSpec("nps_latest", "Latest NPS answer (0–10), last 365 days", 11, SRC, "higher", "score"),
    FeatureSpec("nps_change", "Change between the two latest NPS answers", 11, SRC, "higher", "score"),
    FeatureSpec("account_nps_365d", "Account NPS (% promoters − % detractors)", 11, SRC, "higher", "score", window=365),
    FeatureSpec("csat_survey_mean_365d", "Mean CSAT survey score (1–5)", 12, SRC, "higher", "score", window=365),
    FeatureSpec("feedback_items_{w}d", "Feedback items and notes", 5, SRC, "neutral", "count"),
    FeatureSpec(
        "negative_surveys_{w}d", "Survey answers that are detractors (NPS ≤ 6) or CSAT ≤ 2", 13, SRC, "lower", "count"
    ),
]

EVIDENCE = "evidence"
POLARITY_WORDS = {"green": "positive", "gray": "neutral", "red": "risk"}
INTERACTION_CHANNELS = ("chat", "call", "email", "ticket")
QCF_SPECS = [
    spec
    for b in QCF_BUCKETS
    for spec in (
        *[
            FeatureSpec(
                f"qcf_{b}_{p}_{{w}}d",
                f"{POLARITY_WORDS[p].capitalize()} mentions about {b.replace('_', ' ')}",
                f"qcf:{b}",
                EVIDENCE,
                {"green": "higher", "gray": "neutral", "red": "lower"}[p],
                "count",
            )
            for p in ("green", "gray", "red")
        ],
        FeatureSpec(
            f"qcf_{b}_sentiment_{{w}}d",
            f"Mean sentiment of mentions about {b.replace('_', ' ')}",
            f"qcf:{b}",
            EVIDENCE,
            "higher",
            "score",
        ),
        FeatureSpec(
            f"qcf_{b}_red_conversations_{{w}}d",
            f"Distinct conversations with a risk cue about {b.replace('_', ' ')}",
            f"qcf:{b}",
            EVIDENCE,
            "lower",
            "count",
        ),
    )
] + [
    FeatureSpec(
        "interaction_sentiment_{w}d",
        "Mean sentiment of matched sentences in chats, calls and tickets",
        6,
        EVIDENCE,
        "higher",
        "score",
    ),
]


def survey_features(
    feedback: ibis.Table | None, spine: ibis.Table, calendar: ibis.Table, cfg: FeatureSettings
) -> ibis.Table:
    """NPS, CSAT and feedback volume per snapshot; NULL when there is no feedback table."""
    names = feature_names(SURVEY_SPECS, cfg.windows)
    key = ["account_id", "as_of"]
    if feedback is None:
        return missing_features(spine, names)
    fb = feedback.mutate(day=day_of(feedback, "submitted_at"))
    nps = trailing(fb.filter((_.channel == "nps_survey") & _.score.notnull()), calendar, NPS_DAYS)
    ranked = nps.mutate(
        rank=ibis.row_number().over(group_by=key, order_by=[ibis.desc(nps.submitted_at), ibis.desc(nps.feedback_id)])
    )
    latest = ranked.group_by(key).aggregate(
        nps_latest=_.score.max(where=_.rank == 0),
        nps_previous=_.score.max(where=_.rank == 1),
        promoters=_.count(where=_.score >= 9),
        detractors=_.count(where=_.score <= 6),
        answers=_.count(),
    )
    csat = (
        trailing(fb.filter((_.channel == "csat_survey") & _.score.notnull()), calendar, NPS_DAYS)
        .group_by(key)
        .aggregate(csat=_.score.mean())
    )
    out = spine.select(*key)
    for part in (latest, csat):
        out = out.left_join(part, key).drop("account_id_right", "as_of_right")
    cols: dict[str, ibis.Value] = {
        "nps_latest": out.nps_latest,
        "nps_change": out.nps_latest - out.nps_previous,
        "account_nps_365d": 100.0 * (out.promoters - out.detractors) / out.answers.cast("float64").nullif(0),
        "csat_survey_mean_365d": out.csat,
    }
    negative = ((_.channel == "nps_survey") & (_.score <= 6)) | ((_.channel == "csat_survey") & (_.score <= 2))
    for w in cfg.windows:
        agg = (
            trailing(fb, calendar, w)
            .group_by(key)
            .aggregate(**{f"_items_{w}": _.count(), f"_neg_{w}": _.count(where=negative)})
        )
        out = out.left_join(agg, key).drop("account_id_right", "as_of_right")
        cols[f"feedback_items_{w}d"] = out[f"_items_{w}"].fill_null(0)
        cols[f"negative_surveys_{w}d"] = out[f"_neg_{w}"].fill_null(0)
    return out.select(*key, **{n: cols[n].cast("float64") for n in names})


def qcf_features(
    evidence: ibis.Table | None, spine: ibis.Table, calendar: ibis.Table, cfg: FeatureSettings
) -> ibis.Table:
    """Per bucket and window: green/gray/red counts, mean sentiment, red conversations.

    `evidence` is None when the workspace has no text at all (features missing); an
    account without matches in a window gets zero counts and a missing sentiment.
    """
    names = feature_names(QCF_SPECS, cfg.windows)
    key = ["account_id", "as_of"]
    if evidence is None:
        return missing_features(spine, names)
    ev = evidence.mutate(day=day_of(evidence, "occurred_at"))
    out = spine.select(*key)
    cols: dict[str, ibis.Value] = {}
    for w in cfg.windows:
        win = trailing(ev, calendar, w)
        aggs = {}
        for b in QCF_BUCKETS:
            in_b = win.bucket == b
            for p in ("green", "gray", "red"):
                aggs[f"_{b}_{p}_{w}"] = win.count(where=in_b & (win.polarity == p))
            aggs[f"_{b}_sent_{w}"] = exact_mean(win.sentiment, where=in_b)
            aggs[f"_{b}_redconv_{w}"] = win.conversation_id.nunique(where=in_b & (win.polarity == "red"))
        aggs[f"_inter_{w}"] = exact_mean(win.sentiment, where=win.channel.isin(list(INTERACTION_CHANNELS)))
        agg = win.group_by(key).aggregate(**aggs)
        out = out.left_join(agg, key).drop("account_id_right", "as_of_right")
        for b in QCF_BUCKETS:
            for p in ("green", "gray", "red"):
                cols[f"qcf_{b}_{p}_{w}d"] = out[f"_{b}_{p}_{w}"].fill_null(0)
            cols[f"qcf_{b}_sentiment_{w}d"] = out[f"_{b}_sent_{w}"]
            cols[f"qcf_{b}_red_conversations_{w}d"] = out[f"_{b}_redconv_{w}"].fill_null(0)
        cols[f"interaction_sentiment_{w}d"] = out[f"_inter_{w}"]
    return out.select(*key, **{n: cols[n].cast("float64") for n in names})
