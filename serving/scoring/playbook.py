"""What to do about an account, and who does it (DOMAIN 5, playbooks).

The playbooks are data: `serving/scoring/playbooks.toml` ships with the code, and
`serving.playbooks_file` points to a team's own file. `load_playbooks` checks a file
when it loads it and names the file, the playbook and the field of any mistake.

An at-risk account (red or yellow tier) gets the first "at_risk" playbook (file order)
whose indicator families or feedback buckets hold its largest renewal driver that lowers
renewal likelihood; without such a driver it gets the fallback playbook. Drivers only:
a context feature (contract timing, tenure, MRR, plan) never picks a playbook nor
becomes its "because", even when a caller passes one in. A green account
flagged as an expansion opportunity gets the "opportunity" playbook, any other account
the "otherwise" one. The owner is a role of DOMAIN 3: the usual one for a yellow
account, the escalation for a red one (alerts escalate too, see `serving.workflow.alerts`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from features.registry import INDICATORS, QCF_BUCKETS, FeatureRegistry

SHIPPED = Path(__file__).with_name("playbooks.toml")
QCF = "qcf:"

Owner = StrictInt | StrictStr


class PlaybookError(ValueError):
    """A playbooks file that cannot be used, with the file, playbook and field to fix."""


def _role(owner: int | str) -> str:
    return INDICATORS[owner][1] if isinstance(owner, int) else owner


def _check_owner(value: int | str | None) -> int | str | None:
    if isinstance(value, int) and value not in INDICATORS:
        raise ValueError(
            f"unknown indicator {value}: an owner is an indicator number 1-15 (its owner role) or a role name"
        )
    if isinstance(value, str) and not value.strip():
        raise ValueError("an owner role name must not be empty")
    return value


class Playbook(BaseModel):
    """One playbook: when it applies, the action, who does it, and the drivers that pick it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrictStr = Field(min_length=1)
    when: Literal["at_risk", "opportunity", "otherwise"]
    action: StrictStr = Field(min_length=1)
    owner: Owner
    escalation: Owner | None = None
    families: tuple[StrictInt, ...] = ()
    buckets: tuple[StrictStr, ...] = ()
    fallback: StrictBool = False

    _owner = field_validator("owner", "escalation")(_check_owner)

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the action must say what to do")
        return v.strip()

    @field_validator("families")
    @classmethod
    def _families(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        unknown = [f for f in v if f not in INDICATORS]
        if unknown:
            raise ValueError(
                f"unknown indicator family {unknown[0]}: families are the indicator numbers 1-15 "
                "(`radar features` lists them)"
            )
        return v

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [b for b in v if b not in QCF_BUCKETS]
        if unknown:
            raise ValueError(f"unknown feedback bucket {unknown[0]!r}: buckets are {', '.join(QCF_BUCKETS)}")
        return v

    @model_validator(mode="after")
    def _fallback_only_at_risk(self) -> Playbook:
        if self.fallback and self.when != "at_risk":
            raise ValueError("fallback: only an 'at_risk' playbook can be the fallback")
        return self

    def owner_for(self, escalated: bool) -> str:
        """The role that acts: the escalation owner when escalated (if one is set)."""
        return _role(self.escalation if escalated and self.escalation is not None else self.owner)

    def holds(self, family: int | str) -> bool:
        """Whether a driver of this indicator family (or "qcf:<bucket>") picks this playbook."""
        if isinstance(family, str) and family.startswith(QCF):
            return family[len(QCF) :] in self.buckets
        return family in self.families


class Playbooks(BaseModel):
    """A validated playbooks file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    playbook: tuple[Playbook, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Playbooks:
        names = [p.name for p in self.playbook]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"playbook names must be unique: {', '.join(twice)} appear twice")
        for when in ("opportunity", "otherwise"):
            found = [p.name for p in self.playbook if p.when == when]
            if len(found) != 1:
                raise ValueError(
                    f"exactly one playbook with when = {when!r} is needed, found {len(found)}"
                    + (f" ({', '.join(found)})" if found else "")
                )
        fallbacks = [p.name for p in self.playbook if p.fallback]
        if len(fallbacks) != 1:
            raise ValueError(
                f"exactly one 'at_risk' playbook needs fallback = true, found {len(fallbacks)}"
                + (f" ({', '.join(fallbacks)})" if fallbacks else "")
            )
        seen: dict[int | str, str] = {}  # family number or QCF + bucket -> playbook name
        for p in self.playbook:
            if p.when == "at_risk" and not p.fallback and not (p.families or p.buckets):
                raise ValueError(
                    f"playbook {p.name!r}: an 'at_risk' playbook needs families or buckets (or fallback = true)"
                )
            keys: tuple[int | str, ...] = (*p.families, *(QCF + b for b in p.buckets))
            for key in keys:
                if key in seen:
                    raise ValueError(
                        f"{'family' if isinstance(key, int) else 'bucket'} "
                        f"{key if isinstance(key, int) else key[len(QCF) :]!r} is in both "
                        f"{seen[key]!r} and {p.name!r}"
                    )
                seen[key] = p.name
        return self

    @property
    def at_risk(self) -> tuple[Playbook, ...]:
        return tuple(p for p in self.playbook if p.when == "at_risk")

    @property
    def fallback(self) -> Playbook:
        return next(p for p in self.playbook if p.fallback)

    @property
    def opportunity(self) -> Playbook:
        return next(p for p in self.playbook if p.when == "opportunity")

    @property
    def otherwise(self) -> Playbook:
        return next(p for p in self.playbook if p.when == "otherwise")

    def named(self, name: str) -> Playbook:
        return next(p for p in self.playbook if p.name == name)

    def for_family(self, family: int | str | None) -> Playbook | None:
        """The 'at_risk' playbook picked by a driver of `family`, if any."""
        return next((p for p in self.at_risk if family is not None and p.holds(family)), None)


def _where(loc: tuple, raw: dict) -> str:
    if len(loc) >= 2 and loc[0] == "playbook" and isinstance(loc[1], int):
        items = raw.get("playbook", [])
        name = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
        head = f"playbook {name!r} (#{loc[1] + 1})" if name else f"playbook #{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:])
        return f"{head}, field {field!r}" if field else head
    return ".".join(str(p) for p in loc) or "file"


def parse_playbooks(raw: dict, source: Path | str) -> Playbooks:
    """Validate the parsed content of a playbooks file; errors name `source`."""
    try:
        return Playbooks.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            message = e["msg"].removeprefix("Value error, ")
            problems.append(f"{_where(tuple(e['loc']), raw)}: {message}")
        raise PlaybookError(f"invalid playbooks file {source}:\n  " + "\n  ".join(problems)) from None


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Playbooks:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(f"invalid playbooks file {path}: not valid TOML ({exc})") from None
    return parse_playbooks(raw, path)


def load_playbooks(path: Path | str | None = None) -> Playbooks:
    """The playbooks of `path` (default: the shipped file), validated; loaded once per file version."""
    file = Path(path) if path is not None else SHIPPED
    if not file.is_file():
        raise PlaybookError(f"playbooks file not found: {file}")
    return _load(str(file), file.stat().st_mtime_ns)


@dataclass(frozen=True)
class Recommendation:
    playbook: str
    action: str
    owner: str
    because: str | None  # the driver (feature) that chose the playbook, if one did


def recommend(
    tier: str,
    opportunity: bool,
    renewal_drivers: list[dict],
    registry: FeatureRegistry,
    inverted: bool = True,
    playbooks: Playbooks | None = None,
) -> Recommendation:
    """The playbook for one account from its risk tier, opportunity flag and top renewal
    drivers (largest first, contributions to the churn margin when `inverted`)."""
    books = playbooks if playbooks is not None else load_playbooks()
    red = tier == "red"
    if tier in ("red", "yellow"):
        for driver in renewal_drivers:
            lowers = driver["contribution"] > 0 if inverted else driver["contribution"] < 0
            name = driver["feature"]
            if not lowers or name not in registry or not registry.is_driver(name):
                continue
            chosen = books.for_family(registry[name].family)
            if chosen is not None:
                return Recommendation(chosen.name, chosen.action, chosen.owner_for(red), name)
        chosen = books.fallback
        return Recommendation(chosen.name, chosen.action, chosen.owner_for(red), None)
    chosen = books.opportunity if opportunity else books.otherwise
    return Recommendation(chosen.name, chosen.action, chosen.owner_for(red), None)
