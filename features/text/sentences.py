"""Sentence splitting: simple rules that hold up on chat, e-mail, survey and ticket text.

A sentence ends at a run of ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing
quotes or brackets) that is followed by whitespace or the end of the text, and at every
line break. A period does not end a sentence inside a number ("2.5", "1.200,00") or
after a known abbreviation ("e.g.", "p. ex.", "ecc."). Lines of bullets stay separate
sentences, which is what a reader of the evidence expects.
"""

from __future__ import annotations

import re

# Lower-cased, without the final period. Multi-part ones are listed by their last part
# too ("p. ex." ends in "ex"), since the check looks at the word just before the period.
ABBREVIATIONS = frozenset(
    {
        # English
        "e.g",
        "i.e",
        "etc",
        "vs",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "inc",
        "ltd",
        "co",
        "approx",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "st",
        "jr",
        "sr",
        "dept",
        "min",
        "max",
        # French
        "p",
        "ex",
        "mme",
        "mlle",
        "m",
        "cf",
        "env",
        "av",
        "bd",
        "tél",
        "tel",
        # Italian
        "es",
        "ecc",
        "sig",
        "sigg",
        "sig.ra",
        "dott",
        "ing",
        "avv",
        "pag",
        "n",
    }
)

_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s|$)|\s*[\r\n]+\s*")


def _ends_with_abbreviation(text: str, end: int) -> bool:
    # Abbreviations are short: the last word of a small window is enough to look at.
    head = text[max(0, end - 12) : end].split()
    return bool(head) and head[-1].lower().lstrip("(\"'«“") in ABBREVIATIONS


def split_sentences(text: str | None) -> list[str]:
    """The non-empty sentences of ``text`` in order, stripped of surrounding whitespace."""
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        mark = m.group()
        if mark == "." and _ends_with_abbreviation(text, m.start()):
            continue
        piece = text[start : m.end()].strip()
        if piece:
            sentences.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
