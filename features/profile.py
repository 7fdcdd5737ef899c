"""`radar profile`: the event vocabulary of a workspace, and which feature role each type plays.

The usage features of DOMAIN 3 read event types by role: logins, value events, setup
steps, onboarding items and product features (`features.login_events`, ...). A product
names its actions its own way, so this lists every event type found (events, accounts,
users, first and last dates, whether it carries a quantity) with the roles it is mapped
to, warns about roles no event in the data is mapped to (their features would be
constant), and writes a `[features]` section for radar.toml: the mapped types that exist
plus, for the unmapped ones, a role guessed from the name (`suggest_role`), marked as a
suggestion to review. The per-event-type features (`features.events`) do not depend on
this mapping.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import ibis
import pandas as pd
from ibis import _

from features.events import ROLE_SETTINGS, role_of
from radar.settings import FeatureSettings

ROLES = ROLE_SETTINGS
# what a role's features become without any event mapped to it
ROLE_FEATURES: dict[str, str] = {
    "login": "logins and their trend",
    "value": "value events, time to value, days without value",
    "setup": "activation rate",
    "onboarding": "onboarding completion",
    "feature": "feature adoption breadth",
}
# name fragments that suggest a role, checked in this order (the first match wins)
ROLE_HINTS: list[tuple[str, tuple[str, ...]]] = [
    ("onboarding", ("onboarding", "onboard", "tutorial", "welcome", "walkthrough", "checklist", "getting_started")),
    ("setup", ("setup", "set_up", "configure", "config", "install", "connect", "invite", "sso", "integration")),
    ("login", ("login", "log_in", "logged_in", "logon", "sign_in", "signed_in", "session", "authenticat")),
    (
        "value",
        ("share", "export", "publish", "goal", "achiev", "paid", "purchase", "order", "invoice", "deliver", "won"),
    ),
]
# name fragments that suggest fewer is healthier
LOWER_HINTS = ("error", "fail", "crash", "cancel", "delete", "remove", "downgrade", "churn", "complain", "bounce")


def _tokens(name: str) -> str:
    """The name in lower case with single underscores between words, wrapped in underscores."""
    return "_" + re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()).strip("_") + "_"


def suggest_role(name: str) -> str:
    """A guess from the name: onboarding, setup, login or value by its words, else a
    product feature (one type per feature action makes feature breadth count them)."""
    words = _tokens(name)
    squashed = words.replace("_", "")
    for role, hints in ROLE_HINTS:
        if any(h in words or h.replace("_", "") in squashed for h in hints):
            return role
    return "feature"


def suggest_direction(name: str) -> str | None:
    """'lower' when the name speaks of errors, failures, cancellations, ...; else None."""
    words = _tokens(name)
    return "lower" if any(h in words for h in LOWER_HINTS) else None


@dataclass(frozen=True)
class TypeProfile:
    """One event type as found in the data, and its place in the mapping."""

    event_type: str
    events: int
    accounts: int
    users: int
    first: datetime | None
    last: datetime | None
    with_quantity: int  # events whose quantity is present and not the default 1
    quantity_total: float  # the sum of those quantities
    roles: list[str]  # roles it is mapped to in the settings
    suggested: str | None  # for an unmapped type: the role its name suggests


@dataclass
class EventProfile:
    """Every event type of a workspace, most frequent first, and the state of the mapping."""

    types: list[TypeProfile]
    unmapped_roles: list[str]  # roles no event type of the data is mapped to
    absent: dict[str, list[str]] = field(default_factory=dict)  # role -> configured names not in the data

    @property
    def events(self) -> int:
        return sum(t.events for t in self.types)

    def mapped(self, role: str) -> list[str]:
        return [t.event_type for t in self.types if role in t.roles]

    def suggested(self, role: str) -> list[str]:
        return [t.event_type for t in self.types if t.suggested == role]

    def to_json(self) -> dict:
        rows = []
        for t in self.types:
            row = asdict(t)
            row["first"] = t.first.isoformat() if t.first is not None else None
            row["last"] = t.last.isoformat() if t.last is not None else None
            rows.append(row)
        return {
            "events": self.events,
            "event_types": rows,
            "unmapped_roles": self.unmapped_roles,
            "configured_but_absent": self.absent,
        }


def _when(value) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def profile_events(events: ibis.Table, cfg: FeatureSettings) -> EventProfile:
    """The profile of a usage_events table (contract columns) under the mapping of `cfg`."""
    q = events.quantity
    frame = (
        events.group_by("event_type")
        .aggregate(
            events=_.count(),
            accounts=_.account_id.nunique(),
            users=_.user_id.nunique(),
            first=_.occurred_at.min(),
            last=_.occurred_at.max(),
            with_quantity=ibis.ifelse(q.notnull() & (q != 1), 1, 0).sum(),
            quantity_total=q.sum(where=q.notnull() & (q != 1)).cast("float64"),
        )
        .execute()
    )
    frame = frame[frame.event_type.notna()]
    frame = frame.assign(event_type=frame.event_type.astype(str))
    frame = frame.sort_values(["events", "event_type"], ascending=[False, True], kind="stable")
    types = []
    for r in frame.itertuples(index=False):
        roles = role_of(r.event_type, cfg)
        types.append(
            TypeProfile(
                r.event_type,
                int(r.events),
                int(r.accounts),
                int(r.users),
                _when(r.first),
                _when(r.last),
                int(r.with_quantity or 0),
                0.0 if pd.isna(r.quantity_total) else float(r.quantity_total),
                roles,
                None if roles else suggest_role(r.event_type),
            )
        )
    found = {t.event_type for t in types}
    unmapped = [role for role in ROLES if not any(role in t.roles for t in types)]
    absent = {
        role: [n for n in dict.fromkeys(getattr(cfg, key)) if n not in found]
        for role, key in ROLES.items()
        if any(n not in found for n in getattr(cfg, key))
    }
    return EventProfile(types, unmapped, absent)


def _toml_list(names: list[str]) -> str:
    return "[" + ", ".join(json.dumps(n, ensure_ascii=False) for n in names) + "]"


def mapping_toml(profile: EventProfile) -> str:
    """A `[features]` section for radar.toml: per role, the mapped types found in the data,
    or, for a role none is mapped to, the unmapped types whose names suggest it (commented
    as suggestions; a role that works keeps its mapping, its suggestions only listed in a
    comment), then suggested healthy directions. Review it: the roles are guessed."""
    lines = [
        "# Event roles for radar.toml, written by `radar profile`.",
        "# Types already mapped are kept; SUGGESTED ones are guessed from their names: review them.",
        "[features]",
    ]
    for role, key in ROLES.items():
        mapped, suggested = profile.mapped(role), profile.suggested(role)
        if profile.absent.get(role):
            lines.append(f"# {key}: not in the data, left out: {_toml_list(profile.absent[role])}")
        if mapped and suggested:  # a working mapping is kept as it is
            lines.append(f"# {key}: also possible (SUGGESTED, not added): {_toml_list(suggested)}")
            suggested = []
        elif suggested:
            lines.append(f"# {key}: SUGGESTED from the names: {_toml_list(suggested)}")
        elif not mapped:
            lines.append(f"# {key}: no event type looks like one; its features ({ROLE_FEATURES[role]}) stay constant")
        lines.append(f"{key} = {_toml_list(mapped + suggested)}")
    lower = [t.event_type for t in profile.types if suggest_direction(t.event_type)]
    if lower:
        lines.append("# SUGGESTED: fewer of these is healthier (their per-event features)")
        pairs = ", ".join(f'{json.dumps(n, ensure_ascii=False)} = "lower"' for n in lower)
        lines.append(f"event_directions = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def raw_usage_events(folder: Path, column_mapping: dict[str, str]) -> ibis.Table:
    """The usage_events file(s) of a workspace folder, before ingest: renamed by the
    ingest column mapping (your name -> contract name) and typed as the contract says
    (values that do not parse are missing). ValueError naming what is absent."""
    from features.ingest.read import find_table_files

    files = find_table_files(folder, "usage_events")
    if files is None:
        raise ValueError(f"{folder} has no usage_events table (usage_events.csv, .parquet or a usage_events/ folder)")
    con = ibis.duckdb.connect()
    paths = [str(p) for p in files.files]
    parquet = all(p.endswith(".parquet") for p in paths)
    table = con.read_parquet(paths) if parquet else con.read_csv(paths, all_varchar=True)
    table = table.rename({contract: yours for yours, contract in column_mapping.items() if yours in table.columns})
    missing = [c for c in ("account_id", "occurred_at", "event_type") if c not in table.columns]
    if missing:
        raise ValueError(
            f"usage_events ({files.describe()}): no column {', '.join(missing)}; found {', '.join(table.columns)} "
            "(map yours with [ingest.column_mapping.usage_events])"
        )
    typed = {
        "account_id": table.account_id.cast("string"),
        "occurred_at": table.occurred_at.try_cast("timestamp"),
        "event_type": table.event_type.cast("string"),
        "user_id": table.user_id.cast("string") if "user_id" in table.columns else ibis.null("string"),
        "quantity": table.quantity.try_cast("float64") if "quantity" in table.columns else ibis.null("float64"),
    }
    return table.select(**typed)
