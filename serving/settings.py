"""Serving settings: the thresholds that turn scores into tiers, flags and actions (DOMAIN 5).

They live in the one configuration (`features.config.ServingSettings`, section
`[serving]`); `serving_settings` picks the section, or an explicit override.
"""
from __future__ import annotations

from features.config import HealthBand, RiskTier, ServingSettings, Settings

__all__ = ["HealthBand", "RiskTier", "ServingSettings", "serving_settings"]


def serving_settings(settings: Settings | None = None, serving: ServingSettings | None = None) -> ServingSettings:
    """The serving section: `serving` if given, else `settings.serving`, else the defaults."""
    if serving is not None:
        return serving
    return settings.serving if settings is not None else ServingSettings()
