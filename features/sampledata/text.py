"""Free text in English, French and Italian, assembled from the phrase banks in
`phrases/<lang>.toml`.

A text is 1-5 sentences. Each sentence is neutral or, with a context-dependent
probability, a buyer expression from one of the six DOMAIN 4 buckets; the polarity of an
expression (green / gray / red) is drawn from a "driver" per bucket that the caller
computes from the hidden state (health, seat pressure, pending price increase, ...).
Surface variation (capitalisation, punctuation) keeps the text from being canonical.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Sequence
from importlib import resources

import numpy as np

from features.sampledata.accounts import LANGUAGES

BUCKETS = (
    "renewal_likelihood",
    "upsell_readiness",
    "onboarding_clarity",
    "value_realization",
    "support_friction",
    "pricing_perception",
)
POLARITIES = ("green", "gray", "red")
_ALTERNATIVES = re.compile(r"\{([^{}]*)\}")


def expand(template: str) -> list[str]:
    """All variants of a template: "{We are|We're} late" -> ["We are late", "We're late"]."""
    parts = _ALTERNATIVES.split(template)
    options = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    return ["".join(choice) for choice in itertools.product(*options)]


class PhraseBank:
    """Expanded templates per (language, pool): "neutral.survey", "subject.bug" and
    "ticket_body.bug" (aligned: item k of one goes with item k of the other),
    "renewal_likelihood.red", ..."""

    def __init__(self, banks: dict[str, dict]):
        self._pools: dict[tuple[str, str], list[list[str]]] = {}
        for lang, data in banks.items():
            for key, items in data["neutral"].items():
                self._pools[(lang, f"neutral.{key}")] = [expand(t) for t in items]
            for key, pairs in data["ticket_opening"].items():  # aligned subject and body
                self._pools[(lang, f"subject.{key}")] = [[subject] for subject, _ in pairs]
                self._pools[(lang, f"ticket_body.{key}")] = [[body] for _, body in pairs]
            for bucket in BUCKETS:
                for polarity in POLARITIES:
                    items = data["signals"][bucket][polarity]
                    self._pools[(lang, f"{bucket}.{polarity}")] = [expand(t) for t in items]

    @classmethod
    def load(cls, languages: Sequence[str] = LANGUAGES) -> PhraseBank:
        root = resources.files("features.sampledata").joinpath("phrases")
        return cls({lang: tomllib.loads(root.joinpath(f"{lang}.toml").read_text("utf-8")) for lang in languages})

    def pool(self, lang: str, key: str) -> list[list[str]]:
        return self._pools[(lang, key)]

    def keys(self, lang: str) -> list[str]:
        return [k for (lg, k) in self._pools if lg == lang]


def polarity_probabilities(x: np.ndarray) -> np.ndarray:
    """(n,) driver -> (n, 3) probabilities of green, gray, red."""
    logits = np.stack([1.3 * x, np.full_like(x, 0.3), -1.5 * x - 0.5], axis=-1)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Composer:
    """Draws texts; all randomness comes from the generator it is given."""

    def __init__(self, bank: PhraseBank, rng: np.random.Generator):
        self.bank, self.rng = bank, rng

    def _pick(self, lang: str, key: str, u1: float, u2: float, u3: float) -> str:
        templates = self.bank.pool(lang, key)
        variants = templates[int(u1 * len(templates))]
        text = variants[int(u2 * len(variants))]
        return text.replace("<n>", str(2 + int(u3 * 18)))

    @staticmethod
    def _surface(sentence: str, u: float, v: float, last: bool, red: bool, cue: bool) -> str:
        if red and u < 0.03:
            sentence = sentence.upper()
        elif u < 0.14:
            sentence = sentence[0].lower() + sentence[1:]
        else:
            sentence = sentence[0].upper() + sentence[1:]
        if sentence.endswith("?"):
            return sentence
        if v < 0.80 or (not last and v >= 0.93):
            return sentence + "."
        if v < 0.88:
            return sentence + ("!" if cue else ".")
        if v < 0.93:
            return sentence + "..."
        return sentence

    def compose(
        self,
        langs: Sequence[str],
        neutral: Sequence[str],
        drivers: np.ndarray,
        weights: np.ndarray,
        n_sentences: np.ndarray,
        p_signal: np.ndarray,
        opening: Sequence[str] | None = None,
    ) -> list[str]:
        """One text per row. `neutral[i]` names the neutral pool of row i, `opening[i]`
        an optional first sentence counted in `n_sentences`; drivers and weights are
        (rows, 6) arrays over BUCKETS."""
        rng, n = self.rng, len(langs)
        counts = np.asarray(n_sentences, dtype=np.int64)
        total = int(counts.sum())
        row = np.repeat(np.arange(n), counts)
        first = np.zeros(total, bool)
        starts = np.cumsum(counts) - counts
        first[starts[counts > 0]] = True
        last = np.zeros(total, bool)
        last[(starts + counts - 1)[counts > 0]] = True
        u = rng.random((total, 8))
        w = np.asarray(weights, dtype=float)[row]
        cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        bucket = np.minimum((u[:, 1:2] > cum).sum(axis=1), len(BUCKETS) - 1)
        x = np.asarray(drivers, dtype=float)[row, bucket]
        probs = np.cumsum(polarity_probabilities(x), axis=1)
        polarity = np.minimum((u[:, 2:3] > probs).sum(axis=1), 2)
        signal = u[:, 0] < np.asarray(p_signal, dtype=float)[row]
        if opening is not None:
            signal &= ~first
        texts: list[list[str]] = [[] for _ in range(n)]
        seen: list[set[str]] = [set() for _ in range(n)]
        for i in range(total):
            r = int(row[i])
            lang = langs[r]
            if signal[i]:
                s = self._pick(lang, f"{BUCKETS[bucket[i]]}.{POLARITIES[polarity[i]]}", u[i, 3], u[i, 4], u[i, 5])
            elif first[i] and opening is not None:
                s = opening[r]
            else:
                s = self._pick(lang, neutral[r], u[i, 3], u[i, 4], u[i, 5])
            if s in seen[r]:  # never repeat a sentence within one text
                continue
            seen[r].add(s)
            texts[r].append(
                self._surface(s, u[i, 6], u[i, 7], bool(last[i]), bool(signal[i] and polarity[i] == 2), bool(signal[i]))
            )
        return [" ".join(t) for t in texts]

    def ticket_openings(self, langs: Sequence[str], categories: Sequence[str]) -> tuple[list[str], list[str]]:
        """A matching subject and first body sentence per ticket."""
        subjects, openings = [], []
        for lang, cat, u in zip(langs, categories, self.rng.random(len(langs))):
            pool = self.bank.pool(lang, f"subject.{cat}")
            k = int(u * len(pool))
            subjects.append(pool[k][0])
            openings.append(self.bank.pool(lang, f"ticket_body.{cat}")[k][0])
        return subjects, openings
