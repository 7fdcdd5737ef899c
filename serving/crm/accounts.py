"""How a write moves `crm_accounts`: one row per account, changed only when a CSM would see it.

`plan_accounts` takes the stored account rows and a batch of history rows (a whole
portfolio scored at one as_of, or several) and returns the account rows to write. The
rules, per account:

- new: inserted `active`, `changed` and `changed_at` = the write's time.
- scored at a later as_of than its row: the row takes the new scores; the previous tier
  and likelihoods (`previous_*`) become the stored ones; `changed` says whether something
  a CSM sees (`table.VISIBLE`: tier, the likelihood integers, the reasons, the next step
  and its owner, the status) changed enough to act on, and only then `changed_at` moves
  (otherwise it keeps its old value; the row still takes the new values, quietly):
  tier, next step, its owner and status on any change; a likelihood integer when it is
  at least `change_points` (`ServingSettings.crm_change_points`) away from its value at
  the account's last change (`synced_*`, so a drift of 1 point a week counts once it adds
  up, not never); the reasons when the first renewal or first expansion reason names
  another feature or direction (its key, `table.reason_keys`; the 2nd/3rd reasons, and
  texts whose quoted values alone moved, update quietly). A stored row written before
  the keys existed (no keys, some reason text) is compared by its first reasons' texts,
  once; one written before `synced_*` against its stored integers.
- scored again at the same as_of (a rerun): nothing is written when the values are the
  same (not even `scored_at`); when something visible differs (say a new model), `changed`
  is set and `changed_at` moves, the `previous_*` still being the as_of before.
- scored at an earlier as_of than its row: the row is left alone (a backfill of the
  history never moves the current state).
- absent from the batch's latest as_of (snapshots hold the accounts active at as_of, so
  its subscriptions ended): it turns `churned` (`status_since` = that as_of, `changed`,
  `changed_at` moved) and keeps its last scores. A churned account scored again is
  `active` again.

So a write must hold the whole portfolio at its latest as_of (what `radar score` writes).
Every changed row of one write has the same `changed_at`, later than any stored one (a
write's time is moved past the latest stored `changed_at` should the clock lag), so a
reverse-ETL sync that remembers the largest `changed_at` it read and asks for
`changed_at > :last_sync` picks up each write's changes once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from radar.settings import ServingSettings
from serving.crm.table import (
    ACCOUNTS,
    ACTIVE,
    ALWAYS,
    CHURNED,
    FIRST_REASONS,
    PCT,
    REASON_KEYS,
    REASON_TEXTS,
    SCORE_COLUMNS,
    SYNCED,
    empty,
    normalise,
    same_values,
)

SCORE_NAMES = [c.name for c in SCORE_COLUMNS]


@dataclass(frozen=True)
class AccountsPlan:
    rows: pd.DataFrame  # account rows to insert or replace (normalised `ACCOUNTS` columns)
    inserted: int
    changed: int  # rows whose changed_at moved
    churned: int  # of which turned churned
    written_at: datetime


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _same(a, b) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(a == b)


def _without_keys(rows: pd.DataFrame) -> np.ndarray:
    """Per row, whether it has reason texts but no reason keys (written before the keys existed)."""
    no_keys = rows[list(REASON_KEYS)].isna().all(axis=1).to_numpy(dtype=bool)
    return no_keys & rows[REASON_TEXTS].notna().any(axis=1).to_numpy(dtype=bool)


def first_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """The key of the first renewal and the first expansion reason per row (`reason_keys`
    lists them in column order; the first is the strongest driver)."""
    return pd.DataFrame({c: rows[c].map(lambda k: k if k is None else k.split(", ")[0]) for c in REASON_KEYS})


def synced_values(stored: pd.DataFrame) -> pd.DataFrame:
    """Per stored row, the likelihood integers at its last change (`SYNCED`); a row written
    before those columns existed has none, and its stored integers stand in."""
    return pd.DataFrame({c: stored[SYNCED[c]].where(stored[SYNCED[c]].notna(), stored[c]) for c in PCT})


def visible_change(incoming: pd.DataFrame, stored: pd.DataFrame, change_points: int) -> np.ndarray:
    """Per row of two aligned frames (normalised account columns), whether something a CSM
    acts on changed: one of `ALWAYS`, the first reason of either kind (by its key, or by its
    text where a row has no keys, `_without_keys`), or a likelihood integer at least
    `change_points` away from its value at the last change (`synced_values`; one missing
    and the other not counts)."""
    moved = ~same_values(incoming, stored, ALWAYS)
    moved |= ~same_values(first_keys(incoming), first_keys(stored), list(REASON_KEYS))
    by_text = _without_keys(incoming) | _without_keys(stored)
    if by_text.any():
        a, b = incoming[by_text].reset_index(drop=True), stored[by_text].reset_index(drop=True)
        moved[by_text] = ~same_values(a, b, [*ALWAYS, *FIRST_REASONS])
    synced = synced_values(stored)
    for c in PCT:
        new = pd.to_numeric(incoming[c]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        old = pd.to_numeric(synced[c]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        one_missing = np.isnan(new) != np.isnan(old)
        with np.errstate(invalid="ignore"):
            far = np.abs(new - old) >= change_points
        moved |= one_missing | np.nan_to_num(far, nan=False).astype(bool)
    return moved


def _synced(row: dict, column: str):
    """A stored row's likelihood integer at its last change (`synced_values`, for one row)."""
    kept = row.get(SYNCED[column])
    return row[column] if _missing(kept) else kept


def write_time(existing: pd.DataFrame, written_at: datetime | None) -> pd.Timestamp:
    """The write's `changed_at`: now (or `written_at`), moved past the latest stored one."""
    stamp = pd.Timestamp(written_at or datetime.now(UTC))
    stamp = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).floor("us")
    if len(existing) and existing["changed_at"].notna().any():
        stamp = max(stamp, existing["changed_at"].max() + pd.Timedelta(microseconds=1))
    return stamp


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts (faster than `DataFrame.to_dict("records")`); missing values stay missing."""
    columns = list(frame.columns)
    values = [frame[c].to_numpy(dtype=object) for c in columns]
    return [dict(zip(columns, row)) for row in zip(*values)]


def plan_accounts(
    existing: pd.DataFrame,
    history: pd.DataFrame,
    written_at: datetime | None = None,
    change_points: int | None = None,
) -> AccountsPlan:
    """The account rows a write of `history` rows (normalised) makes, given the stored
    account rows (normalised `ACCOUNTS`); see the module doc for the rules. `change_points`:
    `ServingSettings.crm_change_points` (its default when None)."""
    points = ServingSettings().crm_change_points if change_points is None else change_points
    stamp = write_time(existing, written_at)
    if not len(history):
        return AccountsPlan(empty(ACCOUNTS), 0, 0, 0, stamp.to_pydatetime())
    latest = history.sort_values("as_of", kind="stable").drop_duplicates("account_id", keep="last")
    batch_as_of = max(history["as_of"])
    stored = {r["account_id"]: r for r in _records(existing)}
    # what a CSM sees, compared for every account at once (the loop below only assembles rows)
    incoming = latest[SCORE_NAMES].assign(status=ACTIVE).reset_index(drop=True)
    known = incoming["account_id"].isin(existing["account_id"]).to_numpy()
    visible_moved = np.ones(len(incoming), dtype=bool)
    if known.any():
        before = existing.set_index("account_id").loc[incoming["account_id"][known]].reset_index()
        visible_moved[known] = visible_change(incoming[known].reset_index(drop=True), before, points)
    state = dict(stored)
    candidates: dict[str, dict] = {}
    written: dict[str, dict] = {}
    inserted = 0
    for new, visible in zip(_records(incoming), visible_moved.tolist()):
        account = new["account_id"]
        prev = stored.get(account)
        row = dict(new)
        if prev is None:
            row.update(status_since=new["as_of"], previous_as_of=None, previous_risk_tier=None, changed=True)
            row.update({f"previous_{c}": None for c in PCT}, changed_at=stamp)
            row.update({SYNCED[c]: new[c] for c in PCT})
            state[account] = written[account] = row
            inserted += 1
            continue
        was_churned = prev["status"] == CHURNED
        if new["as_of"] < (prev["status_since"] if was_churned else prev["as_of"]):
            continue  # an older snapshot never moves the current row
        if was_churned or new["as_of"] > prev["as_of"]:  # a new snapshot: the stored values become the previous
            row.update(previous_as_of=prev["as_of"], previous_risk_tier=prev["risk_tier"], changed=visible)
            row.update({f"previous_{c}": prev[c] for c in PCT})
            row["status_since"] = new["as_of"] if was_churned else prev["status_since"]
        else:  # the same snapshot again
            row.update({c: prev[c] for c in ("previous_as_of", "previous_risk_tier", "status_since")})
            row.update({f"previous_{c}": prev[f"previous_{c}"] for c in PCT}, changed=visible or bool(prev["changed"]))
        row["changed_at"] = stamp if visible else prev["changed_at"]
        row.update({SYNCED[c]: new[c] if visible else _synced(prev, c) for c in PCT})
        candidates[account] = row
    if candidates:  # rows equal to the stored ones (scored_at aside) are not rewritten
        frame = normalise(pd.DataFrame(list(candidates.values())), ACCOUNTS)
        before = existing.set_index("account_id").loc[frame["account_id"]].reset_index()
        moved = ~same_values(frame, before, ACCOUNTS.compared)
        for account, row in zip(frame["account_id"], moved.tolist()):
            if row:
                state[account] = written[account] = candidates[account]
    for account, row in state.items():  # not in the latest snapshot: its subscriptions ended
        if row["status"] == ACTIVE and row["as_of"] < batch_as_of:
            gone = {**row, "status": CHURNED, "status_since": batch_as_of, "changed": True, "changed_at": stamp}
            gone.update({SYNCED[c]: row[c] for c in PCT})  # what the sync reads with the churned status
            state[account] = written[account] = gone
    rows = list(written.values())
    frame = normalise(pd.DataFrame(rows), ACCOUNTS) if rows else empty(ACCOUNTS)
    changed = sum(1 for r in rows if _same(r["changed_at"], stamp))
    churned = sum(1 for r in rows if r["status"] == CHURNED and _same(r["changed_at"], stamp))
    return AccountsPlan(frame, inserted, changed, churned, stamp.to_pydatetime())
