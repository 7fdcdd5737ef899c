"""Load a workspace folder into the workspace DuckDB database, losing no row silently.

Every input row ends either in its contract table or in `rejects` (with source file,
row number, column, check and reason, and the raw values), and the counts reconcile.
Re-running replaces each table and its rejects; it never appends.

All or nothing: one DuckDB transaction on the live database holds every write, so a
failure, a refused run (truncated export) or a killed process leaves the previous
ingest in place, and the tables other stages wrote stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from features.contract import TABLES, Table
from features.ingest.checks import quote, typed_select
from features.ingest.contracts import check_loaded_table, with_bounds, with_words
from features.ingest.read import (
    ROW_NUMBER,
    SOURCE_FILE,
    TableFiles,
    TableReadError,
    file_columns,
    find_table_files,
    is_empty,
    native_columns,
    stream_rows,
)
from radar.settings import Settings

# accounts first, so that other tables can be checked against the known account ids
LOAD_ORDER = ("accounts", "subscriptions", "usage_events", "support_tickets", "feedback", "touchpoints")

REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    table_name VARCHAR, source_file VARCHAR, row_number BIGINT, column_name VARCHAR,
    check_name VARCHAR, reason VARCHAR, problems VARCHAR, raw VARCHAR
)"""


class IngestError(RuntimeError):
    """A required table is missing or unusable, or a file cannot be read; nothing was written."""


class IngestRefused(IngestError):
    """The new data looks like a truncated export; nothing was written (see --accept-shrink)."""


@dataclass
class TableReport:
    table: str
    status: str  # loaded | missing | unusable
    source: str = ""
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class IngestReport:
    database: Path
    rejects_dir: Path
    tables: list[TableReport]
    # accounts whose labels are unknown from a rejected subscription row's start (table label_blackouts)
    label_blackout_accounts: int = 0

    def table(self, name: str) -> TableReport:
        return next(t for t in self.tables if t.table == name)


@dataclass(frozen=True)
class _Plan:
    table: Table
    files: TableFiles | None
    columns: list[str]
    ignored: list[str]


def _plan_table(workspace: Path, table: Table, mapping: dict[str, str], encoding: str = "utf-8") -> _Plan:
    files = find_table_files(workspace, table.name)
    if files is None:
        return _Plan(table, None, [], [])
    nonempty = [p for p in files.files if not is_empty(p)]
    if not nonempty:  # 0-byte file(s): a table with no rows
        return _Plan(table, files, table.column_names, [])
    seen: list[str] = []
    for path in nonempty:
        for name in file_columns(path, mapping, encoding):
            if name not in seen:
                seen.append(name)
    missing = [c for c in table.required_columns if c not in seen]
    if missing:
        raise TableReadError(
            f"{table.name} ({files.describe()}): missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(seen) or 'none'}. Rename them in the file or map them in radar.toml "
            f'under [ingest.column_mapping.{table.name}], e.g. your_name = "{missing[0]}"'
        )
    columns = [c for c in table.column_names if c in seen]
    return _Plan(table, files, columns, [c for c in seen if c not in table.column_names])


def plan_ingest(workspace: Path, settings: Settings) -> tuple[list[_Plan], list[TableReport]]:
    """Check every table's files and columns before anything is written."""
    if not workspace.is_dir():
        raise IngestError(f"workspace folder not found: {workspace}")
    plans, problems = [], []
    for name in LOAD_ORDER:
        table = TABLES[name]
        try:
            plan = _plan_table(workspace, table, settings.ingest.column_mapping.get(name, {}), settings.ingest.encoding)
        except TableReadError as exc:
            problems.append(TableReport(name, "unusable", message=str(exc)))
            continue
        if plan.files is None and table.required:
            problems.append(
                TableReport(
                    name,
                    "unusable",
                    message=f"required table {name} not found: add {name}.csv, {name}.parquet "
                    f"or a folder {name}/ of part files to {workspace}",
                )
            )
            continue
        plans.append(plan)
    return plans, problems


def _connect(path: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"SET memory_limit = '{settings.ingest.memory_limit}'")
    con.execute(f"SET threads = {settings.ingest.threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def _rank_duplicates(con, partition: str, candidates: str, column: str, check: str, reason: str) -> None:
    """Reject every valid row after the first of its `partition` group (by file and row).

    Only rows of groups found by `candidates` (a query over `_typed`) are ranked, so the
    expensive window runs over the few duplicates rather than over all rows.
    """
    con.execute(
        f"""
        INSERT INTO _cross
        WITH ranked AS (
            SELECT {SOURCE_FILE}, {ROW_NUMBER}, {partition} AS k,
                   row_number() OVER w AS n,
                   first_value({SOURCE_FILE}) OVER w AS first_file,
                   first_value({ROW_NUMBER}) OVER w AS first_row
            FROM _typed t ANTI JOIN _cross c ON c.{SOURCE_FILE} = t.{SOURCE_FILE} AND c.{ROW_NUMBER} = t.{ROW_NUMBER}
            WHERE len(_problems) = 0 AND {partition} IN ({candidates})
            WINDOW w AS (PARTITION BY {partition} ORDER BY {SOURCE_FILE}, {ROW_NUMBER})
        )
        SELECT {SOURCE_FILE}, {ROW_NUMBER}, '{column}', '{check}', {reason}
        FROM ranked WHERE n > 1
        """
    )


def _cross_row_problems(con, table: Table, known_accounts: str | None) -> None:
    """Rows valid on their own but duplicated, with a repeated id, or naming an unknown account."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cross ({SOURCE_FILE} VARCHAR, {ROW_NUMBER} BIGINT, "
        "column_name VARCHAR, check_name VARCHAR, reason VARCHAR)"
    )
    row = "struct_pack(" + ", ".join(f"{quote(c)} := {quote(c)}" for c in table.column_names) + ")"
    repeated_hashes = f"SELECT hash({row}) FROM _typed WHERE len(_problems) = 0 GROUP BY 1 HAVING count(*) > 1"
    _rank_duplicates(
        con,
        row,
        f"SELECT {row} FROM _typed WHERE len(_problems) = 0 AND hash({row}) IN ({repeated_hashes})",
        "*",
        "duplicate_row",
        "'duplicate of row ' || first_row || ' in ' || first_file",
    )
    if table.key:
        key = quote(table.key)
        _rank_duplicates(
            con,
            key,
            f"SELECT {key} FROM _typed WHERE len(_problems) = 0 GROUP BY 1 HAVING count(*) > 1",
            table.key,
            "duplicate_key",
            f"'duplicate {table.key} ' || '''' || k || '''' || ' (first at row ' || first_row || ' in ' || first_file || ')'",
        )
    if known_accounts and "account_id" in table.column_names and table.name != "accounts":
        con.execute(
            f"""
            INSERT INTO _cross
            SELECT t.{SOURCE_FILE}, t.{ROW_NUMBER}, 'account_id', 'unknown_account',
                   'unknown account_id ' || '''' || t.account_id || '''' || ' (not in {known_accounts})'
            FROM _typed t ANTI JOIN _cross c ON c.{SOURCE_FILE} = t.{SOURCE_FILE} AND c.{ROW_NUMBER} = t.{ROW_NUMBER}
            WHERE len(t._problems) = 0
              AND t.account_id NOT IN (SELECT account_id FROM {known_accounts})
            """
        )


# rejects that lose no subscription line of a known account (an exact copy, an account not in accounts)
HARMLESS_SUBSCRIPTION_CHECKS = ("duplicate_row", "unknown_account")


def _label_blackouts(con, known_accounts: str | None) -> None:
    """`label_blackouts`: per account, the earliest start of its rejected subscription rows.

    A rejected line is a gap in the account's history that would read as a churn, so the
    label builder leaves the account's labels unknown from there on (NULL `blackout_from`,
    a start that did not parse: all of them). Rows whose account_id is unusable, exact
    duplicates and unknown accounts lose no line of a known account and are left out.
    """
    known = f"AND t.account_id IN (SELECT account_id FROM {known_accounts})" if known_accounts == "accounts" else ""
    harmless = ", ".join(f"'{c}'" for c in HARMLESS_SUBSCRIPTION_CHECKS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE label_blackouts AS
        SELECT t.account_id,
               CASE WHEN bool_or(t.start_date IS NULL) THEN NULL ELSE min(t.start_date) END AS blackout_from,
               count(*) AS rejected_rows
        FROM rejects r JOIN _typed t ON t.{SOURCE_FILE} = r.source_file AND t.{ROW_NUMBER} = r.row_number
        WHERE r.table_name = 'subscriptions' AND r.check_name NOT IN ({harmless})
          AND r.column_name <> 'account_id' AND t.account_id IS NOT NULL {known}
        GROUP BY t.account_id
        ORDER BY t.account_id
        """
    )


def _load_table(con, plan: _Plan, settings: Settings, known_accounts: str | None) -> TableReport:
    table, name = with_bounds(plan.table, settings.ingest.plausible_max), plan.table.name
    table = with_words(table, {"billing_period": settings.ingest.billing_period_words})
    mapping = settings.ingest.column_mapping.get(name, {})
    failures: list[TableReadError] = []
    native = native_columns(plan.files, {c: table.column(c).type for c in plan.columns}, mapping)
    reader = stream_rows(
        plan.files, plan.columns, mapping, settings.ingest.batch_rows, failures, settings.ingest.encoding, native
    )
    raw = ", ".join(f"{quote(c)} AS {quote('_raw_' + c)}" for c in plan.columns)
    # the raw values are kept (as JSON text) for the rows with a problem only: the others' raw values
    # are needed only if a cross-row check rejects them, and then their checked values stand for them
    raw_json = ", ".join(f"{quote(c)} := CAST({quote('_raw_' + c)} AS VARCHAR)" for c in plan.columns)
    typed_cols = ", ".join(quote(c) for c in table.column_names)
    con.register("_incoming", reader)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _typed AS
            SELECT {SOURCE_FILE}, {ROW_NUMBER}, {typed_cols}, _problems,
                   CASE WHEN len(_problems) > 0 THEN CAST(to_json(struct_pack({raw_json})) AS VARCHAR) END AS _raw
            FROM (SELECT {SOURCE_FILE}, {ROW_NUMBER}, {raw}, {typed_select(table, set(plan.columns), frozenset(native))}
                  FROM _incoming)"""
        )
    except duckdb.Error as exc:
        if failures:
            raise failures[0] from exc
        raise
    con.unregister("_incoming")
    _cross_row_problems(con, table, known_accounts)

    cols = ", ".join(quote(c) for c in table.column_names)
    read = con.execute("SELECT count(*) FROM _typed").fetchone()[0]
    # a table of one batch is stored sorted (by account, then time); a larger one in the order read:
    # sorting millions of events would cost more than all the checks, and every reader groups or filters
    order = ", ".join(quote(c) for c in ("account_id", table.time_column) if c and c in table.column_names)
    order_by = f"ORDER BY {order}" if read <= settings.ingest.batch_rows else ""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {quote(name)} AS
        SELECT {cols} FROM _typed t ANTI JOIN _cross c ON c.{SOURCE_FILE} = t.{SOURCE_FILE} AND c.{ROW_NUMBER} = t.{ROW_NUMBER}
        WHERE len(_problems) = 0
        {order_by}
        """
    )
    checked_json = ", ".join(f"{quote(c)} := CAST(t.{quote(c)} AS VARCHAR)" for c in plan.columns)
    con.execute("DELETE FROM rejects WHERE table_name = ?", [name])
    con.execute(
        f"""
        INSERT INTO rejects
        SELECT '{name}', {SOURCE_FILE}, {ROW_NUMBER}, _problems[1].column, _problems[1].check, _problems[1].reason,
               array_to_string(list_transform(_problems, lambda p: p.column || ': ' || p.reason), '; '), _raw
        FROM _typed WHERE len(_problems) > 0
        UNION ALL
        SELECT '{name}', c.{SOURCE_FILE}, c.{ROW_NUMBER}, c.column_name, c.check_name, c.reason, c.reason,
               CAST(to_json(struct_pack({checked_json})) AS VARCHAR)
        FROM _cross c JOIN _typed t ON c.{SOURCE_FILE} = t.{SOURCE_FILE} AND c.{ROW_NUMBER} = t.{ROW_NUMBER}
        """
    )
    accepted = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
    rejected = con.execute("SELECT count(*) FROM rejects WHERE table_name = ?", [name]).fetchone()[0]
    if read != accepted + rejected:
        raise AssertionError(f"{name}: {read} read != {accepted} accepted + {rejected} rejected")
    top = con.execute(
        """SELECT column_name || ': ' || check_name, count(*) FROM rejects WHERE table_name = ?
           GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3""",
        [name],
    ).fetchall()
    if name == "subscriptions":
        _label_blackouts(con, known_accounts)
    con.execute("DROP TABLE _typed; DROP TABLE _cross")
    # post-conditions (a bug in ingest, never a user error): in full for a table of one batch, else on one batch
    check_loaded_table(con, table, None if accepted <= settings.ingest.batch_rows else settings.ingest.batch_rows)
    return TableReport(
        name,
        "loaded",
        plan.files.describe(),
        read,
        accepted,
        rejected,
        [(r, n) for r, n in top],
        plan.ignored,
    )


def _write_rejects_file(con, table: str, rejects_dir: Path, count: int) -> None:
    target = rejects_dir / f"{table}.csv"
    target.unlink(missing_ok=True)
    if count:
        rejects_dir.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT * FROM rejects WHERE table_name = '{table}' ORDER BY source_file, row_number) "
            f"TO '{target}' (HEADER, DELIMITER ',')"
        )


def _record(con, reports: list[TableReport]) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE ingest_summary (table_name VARCHAR, status VARCHAR, source VARCHAR, "
        "rows_read BIGINT, rows_accepted BIGINT, rows_rejected BIGINT, message VARCHAR)"
    )
    con.executemany(
        "INSERT INTO ingest_summary VALUES (?, ?, ?, ?, ?, ?, ?)",
        [[r.table, r.status, r.source, r.read, r.accepted, r.rejected, r.message] for r in reports],
    )
    spans = [
        f"SELECT '{t.name}' AS table_name, min({quote(t.time_column)}) AS first_at, "
        f"max({quote(t.time_column)}) AS last_at FROM {quote(t.name)}"
        for t in TABLES.values()
        if t.time_column and any(r.table == t.name and r.status == "loaded" for r in reports)
    ]
    spans.append(
        "SELECT 'subscriptions' AS table_name, CAST(min(start_date) AS TIMESTAMP) AS first_at, "
        "CAST(max(start_date) AS TIMESTAMP) AS last_at FROM subscriptions"
    )
    con.execute(f"CREATE OR REPLACE TABLE workspace_spans AS {' UNION ALL '.join(spans)}")
    con.execute(
        "CREATE OR REPLACE TABLE workspace_meta AS "
        "SELECT min(first_at) AS data_start, max(last_at) AS data_end FROM workspace_spans"
    )


def _previous_counts(con) -> dict[str, int]:
    """Rows accepted per loaded table at the previous ingest (empty on the first one)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ingest_summary' AND schema_name = 'main'"
    ).fetchone()[0]
    if not exists:
        return {}
    rows = con.execute("SELECT table_name, rows_accepted FROM ingest_summary WHERE status = 'loaded'").fetchall()
    return {name: n for name, n in rows}


def _shrink_problem(report: TableReport, table: Table, previous: dict[str, int], settings: Settings) -> str | None:
    """Why a freshly loaded table looks like a truncated export, or None."""
    if table.required and report.accepted == 0:
        return (
            f"required table {report.table} ({report.source}) has no valid rows "
            f"({report.read:,} read, {report.rejected:,} rejected)"
        )
    before = previous.get(report.table)
    share = settings.ingest.max_shrink_share
    if before and report.accepted < before * (1 - share):
        return (
            f"{report.table} ({report.source}) has {report.accepted:,} rows, {before:,} at the previous ingest: "
            f"it lost {1 - report.accepted / before:.0%}, more than ingest.max_shrink_share ({share:.0%})"
        )
    return None


def _unknown_account_problem(con, reports: list[TableReport], settings: Settings) -> str | None:
    """Too many rows rejected as unknown accounts: the accounts export is likely truncated."""
    with_accounts = [
        r.table
        for r in reports
        if r.status == "loaded" and r.table != "accounts" and "account_id" in TABLES[r.table].column_names
    ]
    total = sum(r.read for r in reports if r.table in with_accounts)
    if not total:
        return None
    unknown = con.execute("SELECT count(*) FROM rejects WHERE check_name = 'unknown_account'").fetchone()[0]
    share = settings.ingest.max_unknown_account_share
    if unknown / total <= share:
        return None
    worst = con.execute(
        "SELECT table_name, count(*) FROM rejects WHERE check_name = 'unknown_account' "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    return (
        f"{unknown:,} of {total:,} rows ({unknown / total:.0%}) name an account_id that is not in the accounts "
        f"table (most in {worst[0]}: {worst[1]:,}), more than ingest.max_unknown_account_share ({share:.0%})"
    )


def _mapping_hint(column: str, check: str, example: str | None) -> str:
    """Which setting most likely fixes many subscription rows rejected for `column`/`check`."""
    if column == "billing_period":
        word = (example or "").strip().lower() or "your word"
        return (
            "map your billing period words to months in radar.toml under [ingest.billing_period_words], "
            f'e.g. "{word}" = <its number of months>'
        )
    if column == "*":
        return (
            "check the file's encoding (ingest.encoding) and delimiter: its rows do not split into the header's fields"
        )
    if check in ("missing", "type"):
        return (
            f"check [ingest.column_mapping.subscriptions] in radar.toml: is another of your columns "
            f'the contract\'s {column}? e.g. your_name = "{column}"'
        )
    return "fix the export or map its columns under [ingest.column_mapping.subscriptions] in radar.toml"


def _rejected_subscriptions_problem(con, report: TableReport, settings: Settings) -> str | None:
    """More subscription rows rejected than ingest.max_rejected_subscription_share: each would read
    as a churn, so the mapping is more likely wrong than the data."""
    harmless = ", ".join(f"'{c}'" for c in HARMLESS_SUBSCRIPTION_CHECKS)
    where = f"table_name = 'subscriptions' AND check_name NOT IN ({harmless})"
    lost = con.execute(f"SELECT count(*) FROM rejects WHERE {where}").fetchone()[0]
    share = settings.ingest.max_rejected_subscription_share
    if not report.read or lost / report.read <= share:
        return None
    column, check, n = con.execute(
        f"SELECT column_name, check_name, count(*) FROM rejects WHERE {where} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1"
    ).fetchone()
    value = "NULL" if column == "*" else "json_extract_string(raw, '$.' || column_name)"
    example, reason = con.execute(  # the most frequent rejected value of that column, and its reason
        f"""SELECT {value} AS v, min(reason) FROM rejects WHERE {where} AND column_name = ? AND check_name = ?
            GROUP BY v ORDER BY count(*) DESC, v LIMIT 1""",
        [column, check],
    ).fetchone()
    return (
        f"{lost:,} of {report.read:,} subscription rows ({lost / report.read:.0%}) were rejected, more than "
        f"ingest.max_rejected_subscription_share ({share:.0%}); a rejected line would read as a churn. "
        f"Most for {column} ({check}, {n:,} rows), e.g. {reason}.\n    Fix: {_mapping_hint(column, check, example)}"
    )


def _refuse(problems: list[str], rejected: str | None, database: Path) -> IngestRefused:
    parts = []
    if problems:
        parts.append("ingest refused, the new files look like a truncated export:\n  - " + "\n  - ".join(problems))
    if rejected:
        parts.append(f"ingest refused, too many subscription rows rejected:\n  - {rejected}")
    flags = " and ".join(f for f, on in (("--accept-shrink", problems), ("--accept-rejects", rejected)) if on)
    return IngestRefused(
        "\n".join(parts) + f"\nNothing was changed: {database} still holds the previous ingest. "
        f"If this is intended, run again with {flags}."
    )


def ingest_workspace(
    workspace: Path,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    accept_shrink: bool = False,
    accept_rejects: bool = False,
) -> IngestReport:
    """Validate and load every contract table of `workspace` into the workspace database.

    All or nothing: every table, the rejects, the summary and the metadata are written in
    one DuckDB transaction, committed only once every table loaded, every count reconciled
    and no guard against truncated exports fired (see IngestSettings; `accept_shrink`
    turns the guards off; `accept_rejects` the guard against too many rejected subscription
    rows, ingest.max_rejected_subscription_share). On any failure, or if the process is killed, the database stays
    as the previous ingest left it; the tables other stages wrote are never touched.

    Raises IngestError (IngestRefused for the guards), saying which file stopped it, when
    a required table is missing or unusable, a file cannot be read or a guard fires.
    Missing optional tables are reported (and any earlier copy dropped).
    """
    plans, problems = plan_ingest(workspace, settings)
    if problems:
        unchanged = (
            f"\nNothing was changed: {settings.database_path} still holds the previous ingest."
            if settings.database_path.exists()
            else ""
        )
        raise IngestError("\n".join(p.message for p in problems) + unchanged)
    try:
        con = _connect(settings.database_path, settings)
    except duckdb.IOException as exc:
        raise IngestError(f"cannot open {settings.database_path}, is another program using it? {exc}") from exc
    try:
        con.execute("BEGIN TRANSACTION")
        previous = _previous_counts(con)
        con.execute(REJECTS_DDL)
        reports: list[TableReport] = []
        refusals: list[str] = []
        rejected: str | None = None
        known: str | None = None
        for plan in plans:
            name = plan.table.name
            if progress:
                progress(name)
            if plan.files is None:
                con.execute(f"DROP TABLE IF EXISTS {quote(name)}")
                con.execute("DELETE FROM rejects WHERE table_name = ?", [name])
                reports.append(TableReport(name, "missing", message="optional table not found"))
                continue
            try:
                report = _load_table(con, plan, settings, known)
            except TableReadError as exc:
                raise IngestError(
                    f"{exc}\nNothing was changed: {settings.database_path} still holds the previous ingest."
                ) from exc
            except duckdb.Error as exc:
                raise IngestError(
                    f"{name} ({plan.files.describe()}): {exc}\n"
                    f"Nothing was changed: {settings.database_path} still holds the previous ingest."
                ) from exc
            reports.append(report)
            if name in ("accounts", "subscriptions") and known is None:
                known = name
            if not accept_shrink and (problem := _shrink_problem(report, plan.table, previous, settings)):
                refusals.append(problem)
            if name == "subscriptions" and not accept_rejects:
                rejected = _rejected_subscriptions_problem(con, report, settings)
        if not accept_shrink and (problem := _unknown_account_problem(con, reports, settings)):
            refusals.append(problem)
        if refusals or rejected:
            raise _refuse(refusals, rejected, settings.database_path)
        blackouts = con.execute("SELECT count(*) FROM label_blackouts").fetchone()[0]
        if blackouts:
            subs = next(r for r in reports if r.table == "subscriptions")
            subs.message = (
                f"labels unknown for {blackouts:,} account(s) from the start of their rejected subscription rows "
                "(table label_blackouts)"
            )
        _record(con, reports)
        con.execute("COMMIT")
        # the rejects files mirror the committed `rejects` table
        for r in reports:
            _write_rejects_file(con, r.table, settings.rejects_dir, r.rejected)
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction open (it committed, or never began)
        raise
    finally:
        con.close()
    return IngestReport(settings.database_path, settings.rejects_dir, reports, blackouts)
