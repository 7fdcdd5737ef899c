"""The QCF taxonomy (DOMAIN section 4): buyer expressions per language, bucket and polarity.

A taxonomy file is TOML, one language per file, written to be edited by a CS team::

    language = "en"

    [renewal_likelihood]
    green = ["plan to renew", "funding allocated"]
    red = ["looking at other vendors", "budget cut"]

Top-level tables are buckets (``BUCKETS``), their keys polarities (``POLARITIES``), and
each polarity a list of expressions written as people say them; case, accents,
punctuation and simple inflection are handled by the matcher. The shipped files live in
``taxonomies/``; ``load_taxonomy(extra_dir=...)`` adds every ``*.toml`` of a folder.

Validation is strict and names the file, line, bucket, polarity and entry of each
problem. Listing the same expression twice with the same polarity is harmless (the
first wins); listing it in one bucket with two polarities is an error, also across
files — change a shipped polarity by editing the shipped file, not by overriding it.
Two expressions are "the same" when they have the same light stems ("vendor" and
"Vendors!" are), since the matcher could not tell them apart.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from features.registry import QCF_BUCKETS
from features.text.normalize import normalize, stems

LANGUAGES = ("en", "fr", "it")
BUCKETS = QCF_BUCKETS  # the six signal buckets of DOMAIN 4, declared once in the registry
POLARITIES = ("green", "gray", "red")
SHIPPED_DIR = Path(__file__).parent / "taxonomies"


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used; the message says where and what to fix."""


@dataclass(frozen=True)
class Expression:
    """One listed buyer expression."""

    text: str  # as written in the file
    language: str
    bucket: str
    polarity: str
    source: str  # ".../en.toml:12 [renewal_likelihood] red #3"
    key: tuple[str, ...]  # light stems of the normalized tokens


@dataclass(frozen=True)
class Taxonomy:
    """Validated expressions of one or more languages."""

    expressions: tuple[Expression, ...]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({e.language for e in self.expressions}))

    def for_language(self, language: str) -> tuple[Expression, ...]:
        return tuple(e for e in self.expressions if e.language == language)


def _find(lines: Sequence[str], pattern: re.Pattern[str], start: int) -> int:
    """Index of the first line from ``start`` matching ``pattern``, else ``start``."""
    return next((i for i in range(start, len(lines)) if pattern.search(lines[i])), start)


def _header(name: str) -> re.Pattern[str]:
    """``[name]`` or ``name = ...`` / ``name.x = ...``, quoted or not."""
    q = rf"[\"']?{re.escape(name)}[\"']?"
    return re.compile(rf"^\s*\[\s*{q}\s*\]|(^|[\s{{,]){q}\s*(=|\.)")


def _literal(value: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(q + value + q) for q in ('"', "'")))


def read_taxonomy_file(path: Path) -> list[Expression]:
    """Parse and validate one taxonomy file; raise TaxonomyError listing every problem.

    Problems are located as ``file:line [bucket] polarity #entry``; line numbers are
    found by searching the text, since TOML parsers do not report them.
    """
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"{path}: not valid TOML: {exc}") from exc
    lines = raw.splitlines()
    problems: list[str] = []
    language = data.get("language")
    if language not in LANGUAGES:
        problems.append(f"{path}: 'language' must be one of {', '.join(LANGUAGES)}, got {language!r}")
    out: list[Expression] = []
    for bucket, table in data.items():
        if bucket == "language":
            continue
        bucket_line = _find(lines, _header(bucket), 0)
        where = f"{path}:{bucket_line + 1} [{bucket}]"
        if bucket not in BUCKETS:
            problems.append(f"{where}: unknown bucket {bucket!r}; expected one of {', '.join(BUCKETS)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: must be a table of polarities, got {type(table).__name__}")
            continue
        for polarity, entries in table.items():
            cursor = _find(lines, _header(polarity), bucket_line)
            where = f"{path}:{cursor + 1} [{bucket}] {polarity}"
            if polarity not in POLARITIES:
                problems.append(f"{where}: unknown polarity {polarity!r}; expected one of {', '.join(POLARITIES)}")
                continue
            if not isinstance(entries, list):
                problems.append(f"{where}: must be a list of expressions, got {type(entries).__name__}")
                continue
            for n, text in enumerate(entries, start=1):
                if isinstance(text, str):
                    cursor = _find(lines, _literal(text), cursor)
                at = f"{path}:{cursor + 1} [{bucket}] {polarity} #{n}"
                if not isinstance(text, str):
                    problems.append(f"{at}: expression must be a string, got {text!r}")
                    continue
                if language in LANGUAGES:
                    key = stems(text, language)
                else:  # already reported; still check the entry itself
                    key = tuple(normalize(text).split())
                if not key:
                    problems.append(f"{at}: empty expression {text!r}")
                    continue
                out.append(Expression(text, language, bucket, polarity, at, key))
    if problems:
        raise TaxonomyError("invalid taxonomy:\n" + "\n".join(problems))
    return out


def build_taxonomy(expressions: Iterable[Expression]) -> Taxonomy:
    """Merge expressions from files: drop repeats, refuse conflicting polarities."""
    seen: dict[tuple[str, str, tuple[str, ...]], Expression] = {}
    problems: list[str] = []
    for e in expressions:
        first = seen.setdefault((e.language, e.bucket, e.key), e)
        if first.polarity != e.polarity:
            problems.append(
                f"{e.source}: {e.text!r} is {e.polarity} but {first.source} lists "
                f"{first.text!r} as {first.polarity} (same bucket, same words)"
            )
    if problems:
        raise TaxonomyError("conflicting taxonomy entries:\n" + "\n".join(problems))
    return Taxonomy(tuple(seen.values()))


def load_taxonomy(languages: Sequence[str] = LANGUAGES, extra_dir: Path | None = None) -> Taxonomy:
    """The shipped taxonomy of ``languages`` plus every ``*.toml`` in ``extra_dir``.

    Extra files of other languages are skipped. Results are cached per argument set, so
    callers may call this freely; the files are read once per process.
    """
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise TaxonomyError(f"unsupported taxonomy languages {unknown}; supported: {LANGUAGES}")
    extra = None
    if extra_dir is not None:
        extra = Path(extra_dir)
        if not extra.is_dir():
            raise TaxonomyError(f"taxonomy folder not found: {extra}")
    return _load(tuple(languages), extra)


@lru_cache(maxsize=8)
def _load(languages: tuple[str, ...], extra_dir: Path | None) -> Taxonomy:
    files = [SHIPPED_DIR / f"{lang}.toml" for lang in languages]
    if extra_dir is not None:
        files += sorted(extra_dir.glob("*.toml"))
    expressions = [e for f in files for e in read_taxonomy_file(f) if e.language in languages]
    return build_taxonomy(expressions)
