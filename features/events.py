"""Per-event-type usage features, generated from the event types found in the data.

Whatever a product calls its actions, the `features.event_type_cap` most frequent event
types (by count, then name; or exactly `features.event_types` when pinned) each get, per
trailing window: events, events per active user, the change against the window before,
distinct users, and the sum of `quantity` when the type carries one (some of its events
have a quantity other than the contract's default 1). This does not depend on the role
mapping (`features.login_events`, ...), which only sets the indicator family.

The types are chosen once, from events before the build's last as-of date, and recorded
in the output folder (`event_features.json`) next to the snapshot table: the feature
registry reads that record, so training, reasons, the scorecard and serving all know the
same generated columns (`recorded_event_types`). Later builds keep the recorded list
(`stable_event_types`): new data that ranks other types first is reported, not followed,
so a served model never loses its columns; `features.event_types` pins a list and
`radar build-features --refresh-event-types` chooses anew. The snapshot build metadata
records the list (`event_types`), training logs it, and a model that needs columns a
table lacks is refused with the fix (`missing_features_message`).

The role mapping also names the role features: `describe_roles` writes the configured
event names into their descriptions ("Value events (invoice_created, ...)").

Feature names are safe identifiers: `ev_<slug>__<measure>_<w>d`, where the slug is the
event name in lower-case letters, digits and single underscores (`slugify`), numbered
when two names give the same slug. The double underscore keeps one event's measure from
ever reading as another event's name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import ibis
import pandas as pd
from ibis import _

from features.exact import exact_sum
from features.registry import FeatureSpec
from features.window import trailing
from radar.settings import FeatureSettings

SRC = "usage_events"
PREFIX = "ev_"
RECORD_FILE = "event_features.json"
SLUG_MAX = 40
# feature role -> the setting that maps event types to it (DOMAIN 3)
ROLE_SETTINGS: dict[str, str] = {
    "login": "login_events",
    "value": "value_events",
    "setup": "setup_events",
    "onboarding": "onboarding_events",
    "feature": "feature_events",
}
# the indicator family of a role's events; unmapped types are usage depth (4)
ROLE_FAMILIES: dict[str, int] = {"login": 5, "value": 14, "setup": 3, "onboarding": 7, "feature": 15}
DEFAULT_FAMILY = 4
# measure -> (label template, unit); {e} is the quoted event name
MEASURES: dict[str, tuple[str, str]] = {
    "count": ("{e} events", "count"),
    "per_user": ("{e} events per active user", "ratio"),
    "trend": ("Change in {e} events vs the window before", "pct"),
    "users": ("Users with {e} events", "count"),
    "quantity": ("Sum of the quantity of {e} events", "count"),
}


@dataclass(frozen=True)
class EventType:
    """One event type that gets per-event features: its name in the data, the slug its
    feature names use, its events (before the build's last as-of) and whether it
    carries a quantity."""

    name: str
    slug: str
    events: int
    has_quantity: bool

    def feature(self, measure: str, window: int | str) -> str:
        return f"{PREFIX}{self.slug}__{measure}_{window}d"

    def measures(self) -> list[str]:
        return [m for m in MEASURES if m != "quantity" or self.has_quantity]


def slugify(name: str) -> str:
    """An event name as a safe identifier part: lower-case ASCII letters, digits and
    single underscores ("Export Report!" -> "export_report"); "event" if nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:SLUG_MAX].strip("_")
    return slug or "event"


def assign_slugs(names: list[str]) -> dict[str, str]:
    """Name -> slug, unique: a slug already taken gets _2, _3, ... in the order given."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = slug = slugify(name)
        n = 1
        while slug in taken:
            n += 1
            slug = f"{base}_{n}"
        taken.add(slug)
        out[name] = slug
    return out


def type_counts(events: ibis.Table, before: date | None = None) -> pd.DataFrame:
    """(event_type, events, with_quantity) of the events before `before` (all when None):
    with_quantity counts events whose quantity is present and not the default 1."""
    if before is not None:
        events = events.filter(events.occurred_at < ibis.literal(before).cast("timestamp"))
    q = events.quantity
    return (
        events.group_by("event_type")
        .aggregate(events=_.count(), with_quantity=ibis.ifelse(q.notnull() & (q != 1), 1, 0).sum())
        .execute()
    )


def _found(events: ibis.Table, before: date) -> dict[str, tuple[int, bool]]:
    """Event type -> (its events before `before`, whether it carries a quantity)."""
    counts = type_counts(events, before)
    return {
        str(r.event_type): (int(r.events), int(r.with_quantity or 0) > 0)
        for r in counts.itertuples(index=False)
        if r.event_type is not None
    }


def _ranked(found: dict[str, tuple[int, bool]]) -> list[str]:
    return sorted(found, key=lambda n: (-found[n][0], n))


def choose_event_types(events: ibis.Table | None, before: date, cfg: FeatureSettings) -> list[EventType]:
    """The event types that get per-event features: `cfg.event_types` when pinned, else
    the `cfg.event_type_cap` most frequent before `before` (ties by name), so the same
    data gives the same choice on every engine."""
    if events is None or (cfg.event_type_cap == 0 and not cfg.event_types):
        return []
    found = _found(events, before)
    names = list(dict.fromkeys(cfg.event_types)) if cfg.event_types else _ranked(found)[: cfg.event_type_cap]
    slugs = assign_slugs(names)
    return [EventType(n, slugs[n], *found.get(n, (0, False))) for n in names]


REFRESH_FLAG = "--refresh-event-types"


@dataclass(frozen=True)
class EventChoice:
    """The event types a build uses and why (`source`: "pinned", "recorded" or "chosen").

    `unused`: types among today's `event_type_cap` most frequent that a kept record leaves
    out; `vanished`: recorded types with no events any more (their features are 0)."""

    chosen: list[EventType]
    source: str
    unused: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    cap: int = 0

    @property
    def names(self) -> list[str]:
        return [et.name for et in self.chosen]

    def source_words(self) -> str:
        n = len(self.chosen)
        if self.source == "pinned":
            return f"pinned by features.event_types ({n} types)"
        if self.source == "recorded":
            return f"kept from the previous build's record ({n} types; {REFRESH_FLAG} chooses anew)"
        return f"chosen: the {n} most frequent (features.event_type_cap = {self.cap})"

    def notes(self) -> list[str]:
        """What the console says about a kept record that today's data would change."""
        out = []
        if self.unused:
            out.append(
                f"frequent event types not used until you rebuild with {REFRESH_FLAG} (and retrain): "
                f"{', '.join(map(_quoted, self.unused))}; the build keeps the {len(self.chosen)} recorded types "
                "the models were trained on"
            )
        if self.vanished:
            out.append(
                f"recorded event types with no events any more (their features are 0): "
                f"{', '.join(map(_quoted, self.vanished))}; {REFRESH_FLAG} chooses anew"
            )
        if self.source == "recorded" and len(self.chosen) > self.cap:
            out.append(
                f"the record keeps {len(self.chosen)} event types, more than features.event_type_cap = {self.cap}: "
                f"rebuild with {REFRESH_FLAG} to apply the cap"
            )
        return out


def stable_event_types(
    events: ibis.Table | None,
    before: date,
    cfg: FeatureSettings,
    recorded: list[EventType],
    refresh: bool = False,
) -> EventChoice:
    """The event types of a build, stable across builds so that served models keep their
    columns: `cfg.event_types` when pinned; else the `recorded` list of the previous build
    (new data that would rank other types first is reported, not followed); else, on a
    first build, with `refresh`, or with `event_type_cap = 0`, a fresh `choose_event_types`.

    The record fixes the columns: a kept type keeps its slug and whether it has a quantity
    measure (0 when it no longer carries one; a new quantity waits for a fresh choice)."""
    cap = cfg.event_type_cap
    if cfg.event_types or refresh or not recorded or cap == 0 or events is None:
        chosen = choose_event_types(events, before, cfg)
        if cfg.event_types:  # a pinned type keeps the quantity column its record had
            had = {et.name for et in recorded if et.has_quantity}
            chosen = [replace(et, has_quantity=et.has_quantity or et.name in had) for et in chosen]
        return EventChoice(chosen, "pinned" if cfg.event_types else "chosen", cap=cap)
    found = _found(events, before)
    kept = [replace(et, events=found.get(et.name, (0, False))[0]) for et in recorded]
    names = {et.name for et in kept}
    unused = [n for n in _ranked(found)[:cap] if n not in names]
    vanished = [et.name for et in kept if et.events == 0]
    return EventChoice(kept, "recorded", unused, vanished, cap)


def _quoted(name: str) -> str:
    return f"'{name}'"


def role_of(name: str, cfg: FeatureSettings) -> list[str]:
    """The feature roles (login, value, setup, onboarding, feature) `name` is mapped to."""
    return [role for role, key in ROLE_SETTINGS.items() if name in getattr(cfg, key)]


def family_of(name: str, cfg: FeatureSettings) -> int | str:
    """`cfg.event_families[name]`, else the family of the first role it is mapped to,
    else usage depth (4)."""
    if name in cfg.event_families:
        return cfg.event_families[name]
    roles = role_of(name, cfg)
    return ROLE_FAMILIES[roles[0]] if roles else DEFAULT_FAMILY


def event_specs(chosen: list[EventType], cfg: FeatureSettings) -> list[FeatureSpec]:
    """The registry entries of the per-event features (one `{w}` spec per measure)."""
    specs = []
    for et in chosen:
        family = family_of(et.name, cfg)
        healthy = cfg.event_directions.get(et.name, "higher")
        for measure in et.measures():
            label, unit = MEASURES[measure]
            specs.append(
                FeatureSpec(
                    et.feature(measure, "{w}"),
                    label.format(e=_quoted(et.name)),
                    family,
                    SRC,
                    healthy,
                    unit,  # type: ignore[arg-type]  # one of the registry's units
                    kind="driver",
                )
            )
    return specs


# the usage features computed from a role's events (features.usage): name -> role
ROLE_FEATURES: dict[str, str] = {
    "logins_{w}d": "login",
    "logins_trend_{w}d": "login",
    "value_events_{w}d": "value",
    "value_events_per_seat_{w}d": "value",
    "time_to_value_days": "value",
    "days_without_value": "value",
    "activation_rate": "setup",
    "onboarding_completion": "onboarding",
    "feature_breadth_{w}d": "feature",
}
NAMED_EVENTS_MAX = 4  # event names written into a role feature's description, then "and N more"


def role_words(role: str, cfg: FeatureSettings) -> str | None:
    """The configured events of `role` in words ("invoice_created, payment_reconciled"),
    or None when the mapping is the default one (the features' own wording fits it)."""
    key = ROLE_SETTINGS[role]
    names = list(getattr(cfg, key))
    if tuple(names) == tuple(type(cfg).model_fields[key].get_default(call_default_factory=True)):
        return None
    if not names:
        return f"no {role} events configured: features.{key}"
    shown = ", ".join(names[:NAMED_EVENTS_MAX])
    more = len(names) - NAMED_EVENTS_MAX
    return f"{shown} and {more} more" if more > 0 else shown


def describe_roles(specs: list[FeatureSpec], cfg: FeatureSettings) -> list[FeatureSpec]:
    """`specs` with the role features (`ROLE_FEATURES`) described by the event names the
    configuration maps to their role: "Value events (invoice_created, payment_reconciled)"
    rather than the default vocabulary's "(reports shared, goals reached)". With the
    default mapping the specs are unchanged."""
    words = {role: role_words(role, cfg) for role in ROLE_SETTINGS}
    out = []
    for spec in specs:
        role = ROLE_FEATURES.get(spec.name)
        if role is not None and words[role] is not None:
            base = re.sub(r"\s*\([^)]*\)$", "", spec.label)  # the default vocabulary's example names
            spec = replace(spec, label=f"{base} ({words[role]})")
        out.append(spec)
    return out


def missing_features_message(missing: list[str], model: str, model_event_types: list[str] | None) -> str:
    """Why a snapshot table lacks columns a model needs and what fixes it: per-event
    features of types the build did not choose (pin the model's list or retrain), others."""
    per_event = [c for c in missing if c.startswith(PREFIX) and "__" in c]
    other = [c for c in missing if c not in per_event]
    parts = [f"the snapshot table lacks {len(missing)} feature column(s) that {model} needs"]
    if per_event:
        slug_names = {slug: name for name, slug in assign_slugs(list(model_event_types or [])).items()}
        slugs = list(dict.fromkeys(c[len(PREFIX) :].split("__")[0] for c in per_event))
        types = ", ".join(_quoted(slug_names[s]) if s in slug_names else s for s in slugs)
        shown = ", ".join(per_event[:8]) + (" ..." if len(per_event) > 8 else "")
        parts.append(
            f"per-event features of the event types {types} ({shown}): this build chose other event types "
            "than the model was trained on"
        )
        if model_event_types:
            pinned = json.dumps(list(model_event_types), ensure_ascii=False)
            fix = (
                f"pin the model's list in radar.toml ([features] event_types = {pinned}) and run `radar build-features`"
            )
        else:
            fix = (
                "pin the model's event types (its training run's snapshot.event_types parameter) as "
                "features.event_types in radar.toml and run `radar build-features`"
            )
        parts.append(f"fix: {fix}, or retrain on this build (`radar train`)")
    if other:
        shown = ", ".join(other[:10]) + (" ..." if len(other) > 10 else "")
        parts.append(
            f"other missing features: {shown} (rebuild with the settings the model was trained with, or retrain)"
        )
    return "; ".join(parts)


def event_parts(
    events: ibis.Table, calendar: ibis.Table, windows: tuple[int, ...], chosen: list[EventType]
) -> list[ibis.Table]:
    """Per window, one table of (account_id, as_of) with each chosen type's events in the
    window and the one before, its quantity and its distinct users (`_e<i>_<w>`, ...).

    Aggregated long first, per (account_id, as_of, event_type), from small daily tables
    of the chosen types only, then turned wide: one filtered aggregate per type over a
    few rows per snapshot, rather than over every event-day."""
    if not chosen:
        return []
    key, long_key = ["account_id", "as_of"], ["account_id", "as_of", "event_type"]
    picked = events.filter(events.event_type.isin([et.name for et in chosen]))
    quantity = [et for et in chosen if et.has_quantity]
    daily = (
        picked.group_by(["account_id", "day", "event_type"])
        .aggregate(n=_.count(), **({"q": exact_sum(_.quantity)} if quantity else {}))
        .cache()
    )
    user_days = picked.filter(_.user_id.notnull()).select("account_id", "day", "event_type", "user_id").distinct()
    user_days = user_days.cache()
    parts = []
    for w in windows:
        ev = trailing(daily, calendar, 2 * w).mutate(cur=_.age_days <= w)
        sums = {"now": _.n.sum(where=_.cur), "before": _.n.sum(where=~_.cur)}
        if quantity:
            sums["q"] = exact_sum(_.q, where=_.cur)
        long = ev.group_by(long_key).aggregate(**sums)
        users = trailing(user_days, calendar, w).group_by(long_key).aggregate(users=_.user_id.nunique())
        long = long.left_join(users, long_key).drop("account_id_right", "as_of_right", "event_type_right")
        wide: dict[str, ibis.Value] = {}
        for i, et in enumerate(chosen):
            is_type = _.event_type == et.name
            wide[f"_e{i}_{w}"] = _.now.max(where=is_type)
            wide[f"_e{i}_prev_{w}"] = _.before.max(where=is_type)
            wide[f"_eu{i}_{w}"] = _.users.max(where=is_type)
            if et.has_quantity:
                wide[f"_eq{i}_{w}"] = _.q.max(where=is_type)
        parts.append(long.group_by(key).aggregate(**wide))
    return parts


def event_columns(t: ibis.Table, chosen: list[EventType], w: int, users: ibis.Value, trend) -> dict[str, ibis.Value]:
    """The per-event features of window `w` from the joined `event_parts` of `t`; `users`
    are the account's active users in the window, `trend` the usage builder's change."""
    out: dict[str, ibis.Value] = {}
    for i, et in enumerate(chosen):
        now, before = t[f"_e{i}_{w}"].fill_null(0), t[f"_e{i}_prev_{w}"].fill_null(0)
        out[et.feature("count", w)] = now
        out[et.feature("per_user", w)] = now / ibis.greatest(users, 1)
        out[et.feature("trend", w)] = trend(now, before)
        out[et.feature("users", w)] = t[f"_eu{i}_{w}"].fill_null(0)
        if et.has_quantity:
            out[et.feature("quantity", w)] = t[f"_eq{i}_{w}"].fill_null(0)
    return out


def record_event_types(output_dir: Path, chosen: list[EventType]) -> Path:
    """Write the build's chosen event types next to its snapshot table (atomically)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RECORD_FILE
    text = json.dumps({"event_types": [asdict(et) for et in chosen]}, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=".event_features-", dir=output_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def recorded_event_types(output_dir: Path) -> list[EventType]:
    """The event types the last build of `output_dir` chose (none before a first build)."""
    path = output_dir / RECORD_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a readable record of event features ({exc}); run `radar build-features`"
        ) from exc
    try:
        return [EventType(**row) for row in data["event_types"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a record of event features; run `radar build-features` again") from exc
