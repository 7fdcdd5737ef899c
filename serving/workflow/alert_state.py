"""What people decided about alerts, kept in the workspace database so every run respects it.

`alert_state` holds one row per alert key: open, snoozed (until a date), closed, or
resolved (its condition stopped holding); `alert_history` logs every change with its
reason. What a CSM records while working an alert (`work_alert`, from the pages or the
CLI) sits beside it: `alert_assignment` (the owner an alert was handed to, whose digest
lists it from then on) and `alert_notes` (notes, a closing outcome among them); a run
never rewrites those. A run (`apply_state`) marks each triggered alert:

- new: never seen, resolved earlier, or its snooze ended (on or before as_of): opened;
- open: raised by an earlier run and still open: not raised again;
- snoozed / closed: held back while the snooze lasts, or while the condition holds.

An open or closed alert whose rule was evaluated but did not trigger, in a run at or
after the alert was last seen, is resolved: if it comes back, it is a new alert.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pandas as pd

from serving.workflow.alert_rules import Alert, AlertError

STATE, HISTORY = "alert_state", "alert_history"
STATUSES = ("open", "snoozed", "closed", "resolved")
ASSIGNMENT, NOTES = "alert_assignment", "alert_notes"
OUTCOMES = ("called", "meeting booked", "no action needed", "saved", "lost")  # closing an alert says which
ACTIONS = ("snooze", "close", "assign", "note")
MAX_NOTE = 2000  # characters of a note kept

DDL = (
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
        key VARCHAR PRIMARY KEY, account_id VARCHAR, rule VARCHAR, subject VARCHAR, status VARCHAR,
        opened_as_of DATE, last_seen_as_of DATE, snoozed_until DATE, reason VARCHAR, changed_at TIMESTAMP,
        insight_score DOUBLE, routing VARCHAR, owner VARCHAR, title VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {HISTORY} (
        key VARCHAR, changed_at TIMESTAMP, status VARCHAR, as_of DATE, until DATE, reason VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {ASSIGNMENT} (
        key VARCHAR PRIMARY KEY, assignee VARCHAR, assigned_by VARCHAR, assigned_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {NOTES} (
        key VARCHAR, written_at TIMESTAMP, author VARCHAR, kind VARCHAR, note VARCHAR)""",
)
COLUMNS = (
    "key",
    "account_id",
    "rule",
    "subject",
    "status",
    "opened_as_of",
    "last_seen_as_of",
    "snoozed_until",
    "reason",
    "changed_at",
    "insight_score",
    "routing",
    "owner",
    "title",
)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL:
        con.execute(ddl)


def stored(con: duckdb.DuckDBPyConnection, statuses: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The stored alert states (all, or those with `statuses`), latest change first."""
    ensure_tables(con)
    where = f"WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
    frame = con.execute(
        f"SELECT * FROM {STATE} {where} ORDER BY changed_at DESC, insight_score DESC, key", list(statuses or ())
    ).df()
    frame["assignee"] = frame["key"].map(assignments(con))  # whom it was handed to (work_alert)
    return frame.astype(object).where(frame.notna(), None)


def utc_naive(now: datetime) -> pd.Timestamp:
    """A timestamp as stored: naive UTC."""
    stamp = pd.Timestamp(now)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _as_date(v) -> date | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def held_keys(con: duckdb.DuckDBPyConnection, as_of: date) -> frozenset[str]:
    """Keys of the alerts a run at `as_of` holds back if raised: closed, or snoozed past as_of.
    They take no place under the per-owner cap (`alert_rules.cap_per_owner`)."""
    ensure_tables(con)
    rows = con.execute(
        f"SELECT key FROM {STATE} WHERE status = 'closed' OR (status = 'snoozed' AND "
        "(snoozed_until IS NULL OR snoozed_until > ?))",
        [as_of],
    ).fetchall()
    return frozenset(r[0] for r in rows)


def apply_state(
    con: duckdb.DuckDBPyConnection, alerts: list[Alert], as_of: date, evaluated: tuple[str, ...], now: datetime
) -> list[Alert]:
    """The alerts with their status (new, open, snoozed, closed), the state stored, in one transaction."""
    ensure_tables(con)
    known = {r["key"]: r for r in con.execute(f"SELECT * FROM {STATE}").df().to_dict("records")}
    rows, log, out = {}, [], []
    stamp = utc_naive(now)
    opened: date | None
    for a in alerts:
        s = known.get(a.key)
        until = _as_date(s["snoozed_until"]) if s else None
        ended = s is not None and s["status"] == "snoozed" and until is not None and until <= as_of
        if s is None or s["status"] == "resolved" or ended:
            status, opened, state, reason, until = "new", as_of, "open", None, None
            log.append((a.key, stamp, "open", as_of, None, "raised"))
        else:
            status = state = s["status"]
            opened, reason = _as_date(s["opened_as_of"]), s["reason"]
        last = max(as_of, _as_date(s["last_seen_as_of"]) or as_of) if s and status != "new" else as_of
        changed = stamp if status == "new" or s is None else s["changed_at"]
        rows[a.key] = (
            a.key,
            a.account_id,
            a.rule,
            a.subject,
            state,
            opened,
            last,
            until,
            reason,
            changed,
            a.insight_score,
            a.routing,
            a.owner,
            a.title,
        )
        out.append(a.model_copy(update={"status": status, "opened_as_of": opened}))
    for key, s in known.items():
        seen = _as_date(s["last_seen_as_of"])
        if key in rows or s["status"] not in ("open", "closed") or s["rule"] not in evaluated:
            continue
        if seen is None or as_of >= seen:
            rows[key] = (
                *(s[c] for c in COLUMNS[:4]),
                "resolved",
                *(s[c] for c in COLUMNS[5:9]),
                stamp,
                *(s[c] for c in COLUMNS[10:]),
            )
            log.append((key, stamp, "resolved", as_of, None, "condition no longer holds"))
    con.execute("BEGIN TRANSACTION")
    try:
        if rows:
            frame = pd.DataFrame(list(rows.values()), columns=list(COLUMNS))
            con.register("incoming_alert_state", frame)
            con.execute(f"INSERT OR REPLACE INTO {STATE} SELECT {', '.join(COLUMNS)} FROM incoming_alert_state")
            con.unregister("incoming_alert_state")
        if log:
            con.executemany(f"INSERT INTO {HISTORY} VALUES (?, ?, ?, ?, ?, ?)", log)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return out


def set_status(
    con: duckdb.DuckDBPyConnection,
    key: str,
    status: str,
    *,
    reason: str | None,
    until: date | None = None,
    now: datetime,
) -> None:
    """Snooze (until a date), close or reopen one stored alert, with the reason logged."""
    if status not in ("snoozed", "closed", "open"):
        raise AlertError(f"an alert can be snoozed, closed or reopened, not {status!r}")
    if status == "snoozed" and until is None:
        raise AlertError("a snooze needs a date (--until)")
    if status in ("snoozed", "closed") and not (reason or "").strip():
        raise AlertError(f"say why the alert is {status} (--reason)")
    ensure_tables(con)
    found = con.execute(f"SELECT status FROM {STATE} WHERE key = ?", [key]).fetchone()
    if found is None:
        raise AlertError(f"no alert {key!r} in the workspace: `radar alerts list` shows the stored keys")
    stamp = utc_naive(now)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"UPDATE {STATE} SET status = ?, snoozed_until = ?, reason = ?, changed_at = ? WHERE key = ?",
            [status, until if status == "snoozed" else None, reason, stamp, key],
        )
        con.execute(f"INSERT INTO {HISTORY} VALUES (?, ?, ?, NULL, ?, ?)", [key, stamp, status, until, reason])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def work_alert(
    con: duckdb.DuckDBPyConnection,
    key: str,
    action: str,
    *,
    by: str,
    now: datetime,
    until: date | None = None,
    outcome: str | None = None,
    assignee: str | None = None,
    note: str | None = None,
) -> str:
    """What a CSM did with one stored alert, in one transaction: `snooze` (until a date),
    `close` (with one of OUTCOMES), `assign` (to another owner) or `note`; an optional note
    goes with each. Returns the sentence logged (`alert_history.reason`)."""
    if action not in ACTIONS:
        raise AlertError(f"an alert can be {', '.join(ACTIONS)}-ed, not {str(action)[:40]!r}")
    note = (note or "").strip()[:MAX_NOTE] or None
    ensure_tables(con)
    found = con.execute(f"SELECT status FROM {STATE} WHERE key = ?", [key]).fetchone()
    if found is None:
        raise AlertError(f"no alert {key[:200]!r} in the workspace: `radar alerts list` shows the stored keys")
    status = found[0]
    if action == "snooze":
        if until is None:
            raise AlertError("a snooze needs a date")
        status, reason = "snoozed", f"{note} (by {by})" if note else f"by {by}"
    elif action == "close":
        if outcome not in OUTCOMES:
            raise AlertError(f"closing an alert needs its outcome, one of: {', '.join(OUTCOMES)}")
        status, reason = "closed", f"outcome: {outcome} (by {by})" + (f": {note}" if note else "")
    elif action == "assign":
        if not (assignee or "").strip():
            raise AlertError("say whom to assign the alert to")
        reason = f"assigned to {assignee} by {by}" + (f": {note}" if note else "")
    else:
        if note is None:
            raise AlertError("the note is empty")
        reason = f"note by {by}: {note}"
    stamp = utc_naive(now)
    con.execute("BEGIN TRANSACTION")
    try:
        if action in ("snooze", "close"):
            con.execute(
                f"UPDATE {STATE} SET status = ?, snoozed_until = ?, reason = ?, changed_at = ? WHERE key = ?",
                [status, until if status == "snoozed" else None, reason, stamp, key],
            )
        if action == "assign":
            con.execute(f"INSERT OR REPLACE INTO {ASSIGNMENT} VALUES (?, ?, ?, ?)", [key, assignee.strip(), by, stamp])
        if action == "close" or note is not None:
            text = outcome if action == "close" and note is None else note
            kind = "outcome" if action == "close" else action
            con.execute(
                f"INSERT INTO {NOTES} VALUES (?, ?, ?, ?, ?)",
                [key, stamp, by, kind, f"{outcome}: {note}" if action == "close" and note else text],
            )
        con.execute(
            f"INSERT INTO {HISTORY} VALUES (?, ?, ?, NULL, ?, ?)",
            [key, stamp, status, until if action == "snooze" else None, reason],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return reason


def assignments(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Alert key -> the owner it was assigned to (read-only connections without the table: none)."""
    if not _has(con, ASSIGNMENT):
        return {}
    return dict(con.execute(f"SELECT key, assignee FROM {ASSIGNMENT}").fetchall())


def notes_of(con: duckdb.DuckDBPyConnection, keys: list[str] | None = None) -> pd.DataFrame:
    """The notes on alerts (of `keys`, or all), newest first: key, written_at, author, kind, note."""
    columns = ["key", "written_at", "author", "kind", "note"]
    if not _has(con, NOTES):
        return pd.DataFrame(columns=columns)
    if keys is not None and not keys:
        return pd.DataFrame(columns=columns)
    where = f"WHERE key IN ({', '.join('?' * len(keys))})" if keys else ""
    return con.execute(f"SELECT * FROM {NOTES} {where} ORDER BY written_at DESC, key", list(keys or [])).df()


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
    )
