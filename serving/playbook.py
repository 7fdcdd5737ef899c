"""What to do about a scored account, and who does it (DOMAIN 5, playbooks).

An at-risk account (red or yellow tier) gets the playbook of its largest renewal driver
that lowers renewal likelihood and belongs to a playbook's indicator families:
onboarding friction, under-used features or renewal risk. Without such a driver (or
without drivers at all) it gets the renewal-risk playbook. A green account flagged as an
expansion opportunity gets the expansion playbook; any other account keeps its cadence.
The owner is a role of DOMAIN 3 (`features.registry.INDICATORS`): the usual one for a
yellow account, the escalation for a red one.

The mapping is data, kept small here until a later issue moves it to a validated file.
"""
from __future__ import annotations

from dataclasses import dataclass

from features.registry import INDICATORS, FeatureRegistry


@dataclass(frozen=True)
class Playbook:
    name: str
    action: str
    owner_indicator: int  # whose owner acts on a yellow (or any non-red) account
    escalation_indicator: int  # whose owner acts on a red account
    families: frozenset = frozenset()

    def owner(self, tier: str) -> str:
        return INDICATORS[self.escalation_indicator if tier == "red" else self.owner_indicator][1]


ONBOARDING = Playbook(
    "onboarding_friction",
    "Re-run onboarding: a working session to finish setup, activation and the onboarding checklist",
    owner_indicator=7, escalation_indicator=1,  # Onboarding coordinator / Onboarding lead
    families=frozenset({2, 3, 7, "qcf:onboarding_clarity"}),
)
UNDERUSED = Playbook(
    "underused_features",
    "Feature training: show the unused features that fit their goals and agree adoption targets",
    owner_indicator=15, escalation_indicator=5,  # Product trainer / CS manager
    families=frozenset({1, 4, 5, 15}),
)
RENEWAL_RISK = Playbook(
    "renewal_risk",
    "Renewal review: confirm the value delivered, address pricing, support and feedback concerns, "
    "agree a renewal plan",
    owner_indicator=8, escalation_indicator=13,  # Account manager / Retention lead
    families=frozenset({8, 13, "qcf:renewal_likelihood", "qcf:pricing_perception", 11, 12, 6}),
)
EXPANSION = Playbook(
    "expansion_opportunity",
    "Expansion conversation: propose more seats or the next product, backed by their usage",
    owner_indicator=9, escalation_indicator=9,  # Growth manager
)
KEEP_CADENCE = Playbook(
    "keep_cadence", "No action beyond the regular check-in cadence",
    owner_indicator=5, escalation_indicator=5,  # CS manager
)
RISK_PLAYBOOKS = (ONBOARDING, UNDERUSED, RENEWAL_RISK)


@dataclass(frozen=True)
class Recommendation:
    playbook: str
    action: str
    owner: str
    because: str | None  # the driver (feature) that chose the playbook, if one did


def recommend(tier: str, opportunity: bool, renewal_drivers: list[dict], registry: FeatureRegistry,
              inverted: bool = True) -> Recommendation:
    """The playbook for one account from its risk tier, opportunity flag and top renewal
    drivers (largest first, contributions to the churn margin when `inverted`)."""
    if tier in ("red", "yellow"):
        for driver in renewal_drivers:
            lowers = driver["contribution"] > 0 if inverted else driver["contribution"] < 0
            name = driver["feature"]
            if not lowers or name not in registry:
                continue
            family = registry[name].family
            for playbook in RISK_PLAYBOOKS:
                if family in playbook.families:
                    return Recommendation(playbook.name, playbook.action, playbook.owner(tier), name)
        return Recommendation(RENEWAL_RISK.name, RENEWAL_RISK.action, RENEWAL_RISK.owner(tier), None)
    chosen = EXPANSION if opportunity else KEEP_CADENCE
    return Recommendation(chosen.name, chosen.action, chosen.owner(tier), None)
