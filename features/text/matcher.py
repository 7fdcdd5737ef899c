"""Finding taxonomy expressions in sentences.

How a sentence is matched:

1. The sentence and every expression go through the same normalization (casefold, no
   accents, punctuation as spaces) and light stemming per language, so "RENEWING",
   "Renewed" and "renews" all match the listed "renew", "vendors" matches "vendor",
   "fournisseurs" "fournisseur", "costosa" "costoso".
2. Expressions are token sequences in one trie per language, built once; they never
   match across clause punctuation (commas, colons, ...). Matches are leftmost-longest
   and do not overlap: scanning left to right, the longest expression starting at a
   token wins and scanning resumes after it. So a longer listed expression always beats
   a shorter one it contains ("issue resolved with a documented workaround" over "issue
   resolved", "not happy" over "happy"). An expression listed in several buckets gives
   one match per bucket.
3. Negation: nothing is ever flipped to the opposite polarity. A match is *negated*
   when a negation cue (``NEGATION_CUES``: EN "not", "no", "never", "n't", ...; FR "ne",
   "n'", "pas", "jamais", "aucun", ...; IT "non", "mai", "nessun", ...) is among the
   ``NEGATION_WINDOW`` = 3 words before it, in the same clause (a comma, colon,
   semicolon, bracket or dash ends the reach: "No, we plan to renew" is not negated).
   A negated match is reported with polarity "gray" and ``negated=True`` (the listed
   polarity stays in ``listed_polarity``), so people can read the quote in the evidence
   and the green/red counts are not polluted either way. Expressions that contain a cue
   themselves ("not happy", "won't renew", "pas clair", "non vale il prezzo") are taken
   as written: listing the negated form is how a CS team says what it means.

   What happens to "not happy": the shipped English taxonomy lists "not happy" (red),
   so "We are not happy" gives "not happy", value_realization, red, negated=False. With
   a taxonomy that lists only "happy" (green), it gives "happy", gray, negated=True.
   Likewise "We are not looking at other vendors" gives "looking at other vendors",
   gray, negated=True when only that red cue is listed; the shipped taxonomy also lists
   "not looking at other vendors" as green, which then wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from features.text.normalize import CLAUSE_MARKS, stem, tokenize
from features.text.taxonomy import Expression, Taxonomy

NEGATION_WINDOW = 3
NEGATION_CUES: dict[str, frozenset[str]] = {
    # Normalized tokens: "don't" is "don t", so "t" stands for every "n't".
    "en": frozenset(
        "not no never t cannot cant dont doesnt didnt wont isnt arent wasnt werent "
        "havent hasnt hadnt wouldnt shouldnt couldnt neither nor without none nobody "
        "nothing".split()
    ),
    # "n'est" is "n est"; "ni", "sans", "rien" and "non" negate too.
    "fr": frozenset("ne n pas jamais aucun aucune ni sans rien non".split()),
    # Not "ne" (accent-stripped "né" collides with the very common pronoun "ne").
    "it": frozenset("non mai nessun nessuno nessuna senza neanche nemmeno neppure niente nulla".split()),
}
_END = ""  # trie key for "an expression ends here"; never a token


@dataclass(frozen=True)
class Match:
    """One expression found in a sentence (tokens ``start:end``)."""

    expression: Expression
    start: int
    end: int
    polarity: str  # "gray" when negated, else the listed polarity
    negated: bool

    @property
    def listed_polarity(self) -> str:
        return self.expression.polarity


class Matcher:
    """Compiled taxonomy: build once, then ``match`` many sentences."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.tries: dict[str, dict] = {}
        for e in taxonomy.expressions:
            node = self.tries.setdefault(e.language, {})
            for token in e.key:
                node = node.setdefault(token, {})
            cues = NEGATION_CUES.get(e.language, frozenset())
            has_cue = any(t in cues for t in tokenize(e.text))
            node.setdefault(_END, []).append((e, has_cue))

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.tries)

    def match(self, sentence: str, language: str) -> list[Match]:
        """Leftmost-longest, non-overlapping matches of ``sentence`` in ``language``."""
        trie = self.tries.get(language)
        if trie is None:
            return []
        tokens = tokenize(sentence)
        stems = [stem(t, language) for t in tokens]
        cues = NEGATION_CUES[language]
        found: list[Match] = []
        n = len(stems)
        i = 0
        while i < n:
            node = trie.get(stems[i])
            if node is None:
                i += 1
                continue
            best, end, j = node.get(_END), i + 1, i + 1
            while j < n and (node := node.get(stems[j])) is not None:
                j += 1
                if _END in node:
                    best, end = node[_END], j
            if best is None:
                i += 1
                continue
            cue_before = _cue_before(tokens, i, cues)
            for expression, has_cue in best:
                negated = cue_before and not has_cue
                polarity = "gray" if negated else expression.polarity
                found.append(Match(expression, i, end, polarity, negated))
            i = end
        return found


def _cue_before(tokens: list[str], start: int, cues: frozenset[str]) -> bool:
    """A cue among the NEGATION_WINDOW words before ``start``, within the same clause."""
    words = 0
    for k in range(start - 1, -1, -1):
        if tokens[k] in CLAUSE_MARKS or words == NEGATION_WINDOW:
            return False
        if tokens[k] in cues:
            return True
        words += 1
    return False


@lru_cache(maxsize=8)
def compile_matcher(taxonomy: Taxonomy) -> Matcher:
    """The matcher of ``taxonomy``, compiled once per distinct taxonomy."""
    return Matcher(taxonomy)
