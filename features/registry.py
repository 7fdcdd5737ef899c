"""The feature registry: every snapshot feature declared once, in plain language.

Builders declare their features next to the code that computes them (a module-level
list of `FeatureSpec`); windowed specs expand into one feature per configured window.
Training reads the feature list from here, SHAP reason strings and reports read the
labels, families, kinds and healthy directions, and `radar features` prints it.

Kind (DOMAIN 5, drivers and context): a `driver` is what the account does or experiences,
which a CSM can discuss or change (usage, adoption, onboarding, support, feedback, NPS,
engagement, contraction and expansion); `context` is what the account is (contract
timing, tenure, MRR, plan, seats, segment, region, past renewals). Reasons, playbooks and
the leadership ranking use drivers only; context is shown apart. A spec's kind follows
its family ("context" family: context; any other: driver) unless declared; a feature
the registry does not know is a driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import ibis

Direction = Literal["higher", "lower", "neutral"]
Kind = Literal["driver", "context"]
Unit = Literal["ratio", "share", "count", "days", "hours", "score", "currency", "pct", "category", "flag"]

INDICATORS: dict[int, tuple[str, str]] = {
    1: ("Adoption rate", "Onboarding lead"),
    2: ("Time-to-value", "Onboarding/Implementation lead"),
    3: ("Activation rate", "Activation owner (PM/CS)"),
    4: ("Usage depth", "Product marketing"),
    5: ("Engagement score", "CS manager"),
    6: ("Interaction quality", "Support lead"),
    7: ("Onboarding completion", "Onboarding coordinator"),
    8: ("Renewal rate", "Account manager"),
    9: ("Expansion revenue", "Growth manager"),
    10: ("Cross-sell velocity", "Sales enablement"),
    11: ("NPS", "Experience lead"),
    12: ("Support sentiment", "Support manager"),
    13: ("Churn-risk indicators", "Retention lead"),
    14: ("ROI realization", "Finance liaison"),
    15: ("Feature adoption breadth", "Product trainer"),
}

QCF_BUCKETS = (
    "renewal_likelihood",
    "upsell_readiness",
    "onboarding_clarity",
    "value_realization",
    "support_friction",
    "pricing_perception",
)


CONTEXT_FAMILIES = frozenset({"context"})


def default_kind(family: int | str) -> Kind:
    """The kind a spec of `family` has unless it declares one: context for the "context"
    family (MRR, seats, plan, segment, ...), driver for indicators, feedback and health."""
    return "context" if family in CONTEXT_FAMILIES else "driver"


@dataclass(frozen=True)
class FeatureSpec:
    """A feature (or, with `{w}` in its name, one feature per trailing window).

    family: an indicator number 1–15, "qcf:<bucket>", or "context" (MRR, segment, ...).
    label: what it measures, without the window ("Active users ÷ seats").
    kind: "driver" or "context"; by default derived from the family (`default_kind`).
    """

    name: str
    label: str
    family: int | str
    source: str
    healthy: Direction = "neutral"
    unit: Unit = "count"
    window: int | None = None
    categorical: bool = False
    kind: Kind | None = None  # None: derived from the family

    def __post_init__(self):
        if self.kind is None:
            object.__setattr__(self, "kind", default_kind(self.family))
        elif self.kind not in ("driver", "context"):
            raise ValueError(f"feature {self.name}: kind must be 'driver' or 'context', not {self.kind!r}")

    @property
    def is_driver(self) -> bool:
        return self.kind == "driver"

    @property
    def description(self) -> str:
        return f"{self.label}, last {self.window} days" if self.window else self.label

    @property
    def family_name(self) -> str:
        if isinstance(self.family, int):
            return f"{self.family}. {INDICATORS[self.family][0]}"
        if self.family.startswith("qcf:"):
            return "Feedback: " + self.family[4:].replace("_", " ")
        return self.family.capitalize()

    @property
    def owner(self) -> str | None:
        return INDICATORS[self.family][1] if isinstance(self.family, int) else None

    def expand(self, windows: tuple[int, ...]) -> list[FeatureSpec]:
        if "{w}" not in self.name:
            return [self]
        return [replace(self, name=self.name.format(w=w), window=w) for w in windows]

    def format_value(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "missing"
        return self.formatter()(value)

    def formatter(self) -> Callable[[Any], str]:
        """How a present value of this feature is written (by its unit): callers writing
        many values of one feature (reason strings) ask once, not per value."""
        if self.unit in ("category", "flag"):
            return str
        if self.unit == "share":
            return lambda value: f"{float(value):.0%}"
        if self.unit == "pct":
            return lambda value: f"{float(value):+.0%}"
        if self.unit == "currency":
            return lambda value: f"{float(value):,.0f}"
        if self.unit in ("count", "days"):
            return lambda value: f"{v:,.0f}" if (v := float(value)) == round(v) else f"{v:,.2f}"
        return lambda value: f"{float(value):,.2f}"


class FeatureRegistry:
    """All declared features for a given set of windows, in declaration order."""

    def __init__(self, specs: list[FeatureSpec], windows: tuple[int, ...]):
        expanded = [f for spec in specs for f in spec.expand(windows)]
        names = [f.name for f in expanded]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"features declared twice: {', '.join(dupes)}")
        self._by_name = {f.name: f for f in expanded}

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> FeatureSpec:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def from_source(self, source: str) -> list[FeatureSpec]:
        return [f for f in self if f.source == source]

    def kind(self, name: str) -> Kind:
        """The feature's kind; a feature the registry does not know (a per-event-type
        feature added later, a bring-your-own column) is a driver."""
        spec = self._by_name.get(name)
        # __post_init__ always sets kind; the `is not None` is for the type checker
        return spec.kind if spec is not None and spec.kind is not None else "driver"

    def is_driver(self, name: str) -> bool:
        return self.kind(name) == "driver"


def feature_names(specs: list[FeatureSpec], windows: tuple[int, ...]) -> list[str]:
    """The feature columns a builder's specs produce for the configured windows."""
    return [f.name for spec in specs for f in spec.expand(windows)]


def missing_features(spine: ibis.Table, names: list[str]) -> ibis.Table:
    """Every feature NULL for every snapshot: what a builder returns when its source table
    is absent (missing, never zero)."""
    return spine.select("account_id", "as_of", **{n: ibis.null("float64") for n in names})
