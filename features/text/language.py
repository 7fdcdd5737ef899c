"""Which language a text is in: the row's own label when usable, else offline detection.

Detection uses lingua restricted to the taxonomy languages (English, French, Italian).
Texts shorter than ``SHORT_TEXT_CHARS`` go to its high-accuracy mode, which stays
reliable on one-line chat messages; longer texts go to its low-accuracy mode (trigrams
only), which lingua documents as reliable from about that length and which is two to
three times faster on them. The detectors are built once per process and load their
models, shipped inside the wheel, on first use; nothing is downloaded.

A given label wins when it is valid: "fr", "FR", "fr-CA", "fr_FR", "French",
"français" all mean "fr". A valid code of another language ("de", "pt-BR") is kept as
is, so German text is not forced into English; no taxonomy matches it. Empty or
unreadable labels ("", "unknown", "??") fall back to detection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from lingua import Language, LanguageDetectorBuilder

_LINGUA = {Language.ENGLISH: "en", Language.FRENCH: "fr", Language.ITALIAN: "it"}
_NAMES = {
    "english": "en",
    "anglais": "en",
    "inglese": "en",
    "french": "fr",
    "francais": "fr",
    "francese": "fr",
    "italian": "it",
    "italien": "it",
    "italiano": "it",
}
_CODE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*$")
_NOT_A_LANGUAGE = frozenset({"und", "unk", "xx", "zz", "mul", "zxx", "na", "nan", "none"})
DETECT_MAX_CHARS = 1000  # the opening of a long ticket is plenty to tell the language
SHORT_TEXT_CHARS = 120


@lru_cache(maxsize=2)
def detector(low_accuracy: bool = False):
    """A lingua detector restricted to en/fr/it; thread-safe, built once."""
    builder = LanguageDetectorBuilder.from_languages(*_LINGUA)
    return (builder.with_low_accuracy_mode() if low_accuracy else builder).build()


def given_language(value: object) -> str | None:
    """The language code a row's label means, or None when detection should decide."""
    if not isinstance(value, str):
        return None
    label = value.strip().casefold().replace("ç", "c")
    if label in _NAMES:
        return _NAMES[label]
    m = _CODE.match(label)
    if m is None or m.group(1) in _NOT_A_LANGUAGE:
        return None
    return m.group(1)


def resolve_languages(texts: Sequence[object], given: Sequence[object] | None = None) -> list[str | None]:
    """One language per text: the valid given label, else lingua's answer (None if unsure).

    Texts needing detection are sent to lingua in one call per mode, which spreads them
    over idle cores; texts that are empty or not strings get None.
    """
    given = given if given is not None else [None] * len(texts)
    if len(given) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(given)} language labels")
    out = [given_language(g) for g in given]
    todo = [
        i for i, (lang, text) in enumerate(zip(out, texts)) if lang is None and isinstance(text, str) and text.strip()
    ]
    for low_accuracy in (False, True):
        part = [i for i in todo if (len(texts[i]) >= SHORT_TEXT_CHARS) == low_accuracy]
        if not part:
            continue
        found = detector(low_accuracy).detect_languages_in_parallel_of([texts[i][:DETECT_MAX_CHARS] for i in part])
        for i, language in zip(part, found):
            out[i] = _LINGUA.get(language)
    return out
