"""Text normalization shared by taxonomy expressions and the sentences they are matched in.

Both sides go through the same functions (folding, tokenizing, light stemming per
language), so a CS team can write an expression the way people say it ("Too
expensive!", "d'autres fournisseurs", "più licenze") and still match "too EXPENSIVE",
"d’autres fournisseurs", "piu licenze" or "Other vendors".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters that NFKD does not decompose but that French and Italian text uses.
_LIGATURES = {"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d"}
_STRIP = {cp: None for cp in range(0x300, 0x370)}  # combining diacritical marks
_STRIP.update({ord(k): v for k, v in _LIGATURES.items()})
_NON_WORD = re.compile(r"[\W_]+")
# Punctuation that ends a clause; tokenize() keeps each as a token of its own.
CLAUSE_MARKS = frozenset(',;:()[]"“”«».!?…-–—')
_TOKEN = re.compile(r"[^\W_]+|[,;:()\[\]\"“”«».!?…]|(?<!\S)[-–—](?!\S)")


def fold(text: str) -> str:
    """Casefold and strip accents, keeping punctuation (``"Déjà, OK!"`` -> ``"deja, ok!"``)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text.casefold()).translate(_STRIP)


def normalize(text: str) -> str:
    """Casefold, strip accents, turn punctuation into spaces and collapse whitespace.

    Apostrophes are punctuation too: ``"don't"`` -> ``"don t"``, ``"d'autres"`` ->
    ``"d autres"``; the negation cues of the matcher are written for that form.
    """
    return _NON_WORD.sub(" ", fold(text)).strip()


def tokenize(text: str) -> list[str]:
    """The words of ``normalize(text)``, with clause punctuation kept as tokens.

    Commas, semicolons, colons, brackets, quotes, free-standing dashes and sentence
    punctuation stay in the list (``CLAUSE_MARKS``, one character each): expressions
    never match across them, and the matcher stops a negation cue from reaching over
    them ("No, we plan to renew" is not a negated "plan to renew").
    """
    return _TOKEN.findall(fold(text))


# --- Light stemming -------------------------------------------------------------------
# Enough inflection for expressions written once to match the forms people write:
# plurals, gender, the common verb endings. Both sides are stemmed the same way, so
# consistency matters more than linguistic accuracy ("pricing", "priced", "prices" and
# "price" all become "pric"). Rules are (suffix, replacement, shortest stem left).
_EN_RULES = (("ingly", "", 3), ("edly", "", 3), ("ing", "", 3), ("ed", "", 3), ("ly", "", 3))
_FR_RULES = tuple(
    (s, r, 3)
    for s, r in (
        ("eraient", ""),
        ("erions", ""),
        ("tions", "tion"),
        ("sions", "sion"),
        ("eaux", "eau"),
        ("issons", ""),
        ("issent", ""),
        ("ement", ""),
        ("erons", ""),
        ("eront", ""),
        ("aient", ""),
        ("erait", ""),
        ("issez", ""),
        ("eriez", ""),
        ("euse", "eu"),
        ("erai", ""),
        ("erez", ""),
        ("ions", ""),
        ("eux", "eu"),
        ("iez", ""),
        ("ons", ""),
        ("ent", ""),
        ("ant", ""),
        ("ait", ""),
        ("ais", ""),
        ("ive", "if"),
        ("ee", ""),
        ("es", ""),
        ("er", ""),
        ("ez", ""),
        ("ss", "ss"),
        ("e", ""),
        ("s", ""),
    )
)
_IT_RULES = tuple(
    (s, "", 4)
    for s in (
        "erebbero",
        "erebbe",
        "eranno",
        "eremo",
        "erete",
        "iamo",
        "iate",
        "ando",
        "endo",
        "ato",
        "ata",
        "ati",
        "ate",
        "uto",
        "uta",
        "uti",
        "ute",
        "ito",
        "ita",
        "iti",
        "ite",
        "are",
        "ere",
        "ire",
    )
) + tuple((v, "", 3) for v in "aeio")
_UNDOUBLE = {"en": frozenset("bdglmnprt"), "fr": frozenset("lnmtps"), "it": frozenset()}


def _strip_one(word: str, rules: tuple[tuple[str, str, int], ...]) -> str:
    for suffix, replacement, shortest in rules:
        if word.endswith(suffix) and len(word) - len(suffix) >= shortest:
            return word[: len(word) - len(suffix)] + replacement
    return word


def _undouble(word: str, letters: frozenset[str]) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] in letters:
        return word[:-1]
    return word


@lru_cache(maxsize=262_144)
def stem(token: str, language: str) -> str:
    """The light stem of one normalized token; tokens of unknown languages are kept."""
    w = token
    if len(w) <= 3 or not w.isalpha() or language not in _UNDOUBLE:
        return w
    if language == "en":
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        w = _strip_one(w, _EN_RULES)
        w = _undouble(w, _UNDOUBLE["en"])
        return w[:-1] if w.endswith("e") and len(w) > 3 else w
    if language == "fr":
        for _ in range(3):  # "satisfaites" -> "satisfait" -> "satisf"
            w = _strip_one(w, _FR_RULES)
        return _undouble(w, _UNDOUBLE["fr"])
    w = _strip_one(w, _IT_RULES)
    return _strip_one(w, _IT_RULES[-4:])  # a final vowel left by a verb ending


def stems(text: str, language: str) -> tuple[str, ...]:
    """Stems of the normalized tokens of ``text``: the key an expression is matched by."""
    return tuple(stem(t, language) for t in normalize(text).split())
