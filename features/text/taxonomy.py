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

from features.text.normalize import stems

LANGUAGES = ("en", "fr", "it")
BUCKETS = (
    "renewal_likelihood",
    "upsell_readiness",
    "onboarding_clarity",
    "value_realization",
    "support_friction",
    "pricing_perception",
)
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


def _line_of(lines: Sequence[str], bucket: str, polarity: str | None, value: str | None) -> int | None:
    """Best-effort 1-based line of an entry: after its bucket header, its polarity key."""
    start = 0
    header = re.compile(rf"^\s*\[\s*[\"']?{re.escape(bucket)}[\"']?\s*\]|^\s*{re.escape(bucket)}\s*[=.]")
    for i, line in enumerate(lines):
        if header.search(line):
            start = i
            break
    if polarity is not None:
        key = re.compile(rf"(^|[\s{{,.]){re.escape(polarity)}\s*=")
        for i in range(start, len(lines)):
            if key.search(lines[i]):
                start = i
                break
    if value is None:
        return start + 1
    literals = [f'"{value}"', f"'{value}'", f'"{value.replace(chr(34), chr(92) + chr(34))}"']
    for i in range(start, len(lines)):
        if any(lit in lines[i] for lit in literals):
            return i + 1
    return start + 1


def read_taxonomy_file(path: Path) -> list[Expression]:
    """Parse and validate one taxonomy file; raise TaxonomyError listing every problem."""
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
        problems.append(
            f"{path}: 'language' must be one of {', '.join(LANGUAGES)}, got {language!r}"
        )
    out: list[Expression] = []
    for bucket, table in data.items():
        if bucket == "language":
            continue
        where = f"{path}:{_line_of(lines, bucket, None, None)} [{bucket}]"
        if bucket not in BUCKETS:
            problems.append(f"{where}: unknown bucket {bucket!r}; expected one of {', '.join(BUCKETS)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: a bucket must be a table of polarities, got {type(table).__name__}")
            continue
        for polarity, entries in table.items():
            where = f"{path}:{_line_of(lines, bucket, polarity, None)} [{bucket}] {polarity}"
            if polarity not in POLARITIES:
                problems.append(
                    f"{where}: unknown polarity {polarity!r}; expected one of {', '.join(POLARITIES)}"
                )
                continue
            if not isinstance(entries, list):
                problems.append(f"{where}: must be a list of expressions, got {type(entries).__name__}")
                continue
            for n, text in enumerate(entries, start=1):
                value = text if isinstance(text, str) else None
                at = f"{path}:{_line_of(lines, bucket, polarity, value)} [{bucket}] {polarity} #{n}"
                if not isinstance(text, str):
                    problems.append(f"{at}: expression must be a string, got {text!r}")
                    continue
                key = stems(text, language) if language in LANGUAGES else ()
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


def load_taxonomy(
    languages: Sequence[str] = LANGUAGES, extra_dir: Path | None = None
) -> Taxonomy:
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
