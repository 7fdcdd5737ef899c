"""Per-row checks of the contract, as DuckDB SQL generated from its declarations.

For each table this gives the typed value of every column and, per row, the list of
problems found (column, check, reason). A row with no problem is accepted. The SQL runs
inside DuckDB over the staged text rows, so memory stays bounded at any size.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from features.contract import Column, Table
from features.ingest.read import READ_COLUMN, READ_REASON

SQL_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
}
TYPE_WORDS = {
    "timestamp": "a timestamp",
    "date": "a date",
    "float": "a number",
    "int": "a whole number",
    "bool": "true/false",
}


INT_LIMIT = 9e18  # whole numbers beyond this do not fit a BIGINT: rejected, never an overflow error
CONTROL = "[\\x00-\\x1f\\x7f]"  # (RE2) NUL and the other non-printable control characters


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def raw_value(col: Column, native: frozenset[str] = frozenset()) -> str:
    """The raw text of a column, with blank meaning missing; a native column (read from Parquet
    already in its contract type) as itself."""
    if col.name in native:
        return quote(col.name)
    return f"NULLIF(TRIM({quote(col.name)}), '')"


def raw_text(col: Column, native: frozenset[str] = frozenset()) -> str:
    """The raw value as text, as reasons show it."""
    if col.name in native:
        return f"CAST({quote(col.name)} AS VARCHAR)"
    return raw_value(col)


def normalised_word(word: str) -> str:
    """The form words are compared in: lower case, runs of spaces, '-' and '_' as one space."""
    return re.sub(r"[\s_-]+", " ", word.strip().lower())


def _word_value(col: Column, raw: str) -> str:
    """SQL: the number a word (or "N months" / "N years") stands for, NULL when unknown."""
    norm = f"regexp_replace(lower({raw}), '[\\s_-]+', ' ', 'g')"
    digits = f"CAST(regexp_extract({norm}, '^([0-9]+)', 1) AS BIGINT)"
    cases = " ".join(f"WHEN {_lit(w)} THEN {n:d}" for w, n in col.words)
    return (
        f"CASE WHEN regexp_matches({norm}, '^[0-9]{{1,4}} ?(month|months|mo|mos)$') THEN {digits} "
        f"WHEN regexp_matches({norm}, '^[0-9]{{1,3}} ?(year|years|yr|yrs)$') THEN 12 * {digits} "
        f"ELSE CASE {norm} {cases} END END"
    )


def typed_value(col: Column, native: frozenset[str] = frozenset()) -> str:
    """SQL turning the raw text into the contract type; NULL where it does not parse.

    Timestamps: naive values are UTC, values with an offset are converted to UTC, and
    the result is stored as a naive UTC timestamp. Whole numbers with `words` also
    accept those words ("quarterly" -> 3) and "N months" / "N years" (as months).
    A native column already holds the contract type (no text to parse).
    """
    if col.name in native:
        return quote(col.name)
    raw = raw_value(col)
    if col.type == "string":
        return raw
    if col.type in ("timestamp", "date"):
        ts = f"(TRY_CAST({raw} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
        return ts if col.type == "timestamp" else f"CAST({ts} AS DATE)"
    if col.type == "int":
        num = f"TRY_CAST({raw} AS DOUBLE)"
        whole = f"CASE WHEN {num} = ROUND({num}) AND abs({num}) < {INT_LIMIT:g} THEN CAST({num} AS BIGINT) END"
        if col.words:
            return f"(CASE WHEN {num} IS NOT NULL THEN {whole} ELSE {_word_value(col, raw)} END)"
        return whole
    return f"TRY_CAST({raw} AS {SQL_TYPES[col.type]})"


class Problem(NamedTuple):
    """One check as SQL: the condition that fails it and the struct (column, check, reason) it reports."""

    condition: str
    sql: str


def _problem(column: str, check: str, condition: str, reason_sql: str) -> Problem:
    return Problem(
        condition,
        f"CASE WHEN {condition} THEN {{'column': {_lit(column)}, 'check': {_lit(check)}, 'reason': {reason_sql}}} END",
    )


def _shown(raw: str) -> str:
    return f"'''' || left({raw}, 60) || ''''"


def column_problems(col: Column, native: frozenset[str] = frozenset()) -> list[Problem]:
    """SQL struct expressions, one per check of the column, NULL when the check passes.

    A native column skips the text checks (it parsed as its type already); its value is
    shown as text in reasons.
    """
    if col.name in native:
        return _native_problems(col)
    raw, typed = raw_value(col), typed_value(col)
    checks: list[Problem] = []
    if col.required:
        checks.append(_problem(col.name, "missing", f"{raw} IS NULL", _lit("missing required value")))
    if col.type == "string" and col.name.endswith("_id"):
        visible = f"regexp_replace({raw}, '{CONTROL}', '?', 'g')"
        checks.append(
            _problem(
                col.name,
                "control_character",
                f"regexp_matches({raw}, '{CONTROL}')",
                f"'non-printable control character ' || printf('0x%02x', unicode(regexp_extract({raw}, '{CONTROL}'))) "
                f"|| ' in an id: ' || {_shown(visible)}",
            )
        )
    elif col.type == "string":  # text may hold tabs and line ends, never a NUL (PostgreSQL, C tools cut there)
        visible = f"replace({raw}, chr(0), '?')"
        checks.append(
            _problem(
                col.name,
                "control_character",
                f"contains({raw}, chr(0))",
                f"'NUL byte (0x00) in text: ' || {_shown(visible)}",
            )
        )
    if col.type in ("float", "int") and col.max is not None:  # first: an implausible number is its own reason
        number = f"TRY_CAST({raw} AS DOUBLE)"
        if col.words:  # "99 years" is above the maximum too
            number = f"coalesce({number}, {typed})"
        checks.append(
            _problem(
                col.name,
                "max",
                f"isfinite({number}) AND {number} > {col.max}",
                f"{_shown(raw)} || ' is above the maximum {col.max:g}'",
            )
        )
    if col.words:  # neither a whole number nor a known word
        checks.append(
            _problem(
                col.name,
                "allowed",
                f"{raw} IS NOT NULL AND {typed} IS NULL",
                f"{_shown(raw)} || {_lit(f' is not {col.words_hint}; map other words under [ingest.{col.name}_words]')}",
            )
        )
    elif col.type != "string":
        checks.append(
            _problem(
                col.name,
                "type",
                f"{raw} IS NOT NULL AND {typed} IS NULL",
                f"'not {TYPE_WORDS[col.type]}: ' || {_shown(raw)}",
            )
        )
    return checks + _value_checks(col, typed, _shown(raw))


def _native_problems(col: Column) -> list[Problem]:
    """The checks of a column that arrived in its contract type: missing, finite, allowed, min, max."""
    value, shown = quote(col.name), _shown(raw_text(col, frozenset({col.name})))
    checks: list[Problem] = []
    if col.required:
        checks.append(_problem(col.name, "missing", f"{value} IS NULL", _lit("missing required value")))
    if col.type in ("float", "int") and col.max is not None:
        number = f"CAST({value} AS DOUBLE)"
        checks.append(
            _problem(
                col.name,
                "max",
                f"isfinite({number}) AND {number} > {col.max}",
                f"{shown} || ' is above the maximum {col.max:g}'",
            )
        )
    return checks + _value_checks(col, value, shown)


def _value_checks(col: Column, value: str, shown: str) -> list[Problem]:
    """The checks of a typed value, whether parsed from text or read in its type: finite,
    allowed, min, and max for non-numbers (numbers check max first, in their own way)."""
    checks: list[Problem] = []
    if col.type == "float":
        checks.append(_problem(col.name, "finite", f"NOT isfinite({value})", f"'not a finite number: ' || {shown}"))
    if col.allowed:
        allowed = ", ".join(_lit(a) for a in col.allowed)
        checks.append(
            _problem(
                col.name,
                "allowed",
                f"{value} IS NOT NULL AND {value} NOT IN ({allowed})",
                f"{shown} || ' is not one of {', '.join(col.allowed)}'",
            )
        )
    if col.min is not None:
        checks.append(
            _problem(col.name, "min", f"{value} < {col.min}", f"{shown} || ' is below the minimum {col.min:g}'")
        )
    if col.max is not None and col.type not in ("float", "int"):
        checks.append(
            _problem(col.name, "max", f"{value} > {col.max}", f"{shown} || ' is above the maximum {col.max:g}'")
        )
    return checks


def order_problems(table: Table, present: set[str], native: frozenset[str] = frozenset()) -> list[Problem]:
    checks = []
    for later, earlier in table.ordered:
        if later not in present or earlier not in present:
            continue
        a, b = typed_value(table.column(later), native), typed_value(table.column(earlier), native)
        checks.append(
            _problem(
                later,
                "order",
                f"{a} < {b}",
                f"'{later} ' || CAST({a} AS VARCHAR) || ' is before {earlier} ' || CAST({b} AS VARCHAR)",
            )
        )
    return checks


def typed_select(table: Table, present: set[str], native: frozenset[str] = frozenset()) -> str:
    """SELECT list of typed contract columns plus `_problems`, over the staged text table.

    Columns absent from every file are NULL (so optional columns may be left out). A row
    the reader could not read (`_read_reason` set) has that as its only problem. `native`
    columns arrive in their contract type (Parquet), so they are used as they are.
    """
    parts = []
    problems: list[Problem] = []
    for col in table.columns:
        if col.name in present:
            value = typed_value(col, native)
            problems.extend(column_problems(col, native))
        else:
            value = "NULL"
            if col.required:
                raise AssertionError("required columns are checked before typing")
        if col.default is not None:
            value = f"COALESCE({value}, {col.default!r})"
        parts.append(f"CAST({value} AS {SQL_TYPES[col.type]}) AS {quote(col.name)}")
    problems.extend(order_problems(table, present, native))
    unread = f"{{'column': {READ_COLUMN}, 'check': 'unreadable', 'reason': {READ_REASON}}}"
    problem_list = f"CASE WHEN {READ_REASON} IS NOT NULL THEN [{unread}] "
    if problems:  # the list is built only for the rows failing a check (few): the others are tested once, cheaply
        failing = " OR ".join(f"({p.condition})" for p in problems)
        listed = "list_filter([" + ", ".join(p.sql for p in problems) + "], lambda x: x IS NOT NULL)"
        problem_list += f"WHEN {failing} THEN {listed} "
    problem_list += "ELSE [] END"
    return ", ".join(parts) + f", {problem_list} AS _problems"
