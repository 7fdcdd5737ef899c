"""A sentiment score in [-1, 1] for each sentence that carries evidence.

English: VADER's compound score, an offline lexicon-and-rules model that reads the
sentence as written (negation, intensifiers, capitals, "!!"), so "not happy" scores
negative on its own.

French and Italian have no lexicon model among our dependencies, so their score is the
mean taxonomy polarity of the sentence's matches (+1 green, 0 gray, -1 red), using the
polarity the matcher reports: a negated match counts 0, never flipped. A sentence
without matches has no score (NaN). The two scales are not the same instrument: VADER
grades tone on a continuum while the taxonomy score only counts cues, so compare
bucket sentiment across languages with care.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POLARITY_SCORE = {"green": 1.0, "gray": 0.0, "red": -1.0}
LEXICON_LANGUAGES = frozenset({"en"})


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads its lexicon from the installed package


def sentence_sentiment(sentence: str, language: str | None, polarities: Sequence[str]) -> float:
    """VADER compound for English; mean taxonomy polarity of ``polarities`` otherwise."""
    if language in LEXICON_LANGUAGES:
        return float(_vader().polarity_scores(sentence)["compound"])
    if not polarities:
        return math.nan
    return sum(POLARITY_SCORE[p] for p in polarities) / len(polarities)
