"""What the fictional vendor sells and what its product can do: plans, add-ons, list
prices, features and the usage event names (the config refers to the same names)."""

from __future__ import annotations

PLANS = ("base", "premium")
ADDONS = ("addon_analytics", "addon_sso", "addon_api")
PRODUCTS = PLANS + ADDONS

# Monthly list price per seat; annual contracts get ANNUAL_DISCOUNT off.
SEAT_PRICE = {"base": 32.0, "premium": 55.0, "addon_analytics": 9.0, "addon_sso": 4.0}
SSO_MINIMUM = 80.0
API_FLAT_PRICE = (250.0, 700.0, 1800.0)  # per month, by segment
ANNUAL_DISCOUNT = 0.15

# Initial mix by segment (smb, mid_market, enterprise).
PREMIUM_AT_START = (0.20, 0.35, 0.50)
ADDON_AT_START = {
    "addon_analytics": (0.08, 0.15, 0.25),
    "addon_sso": (0.03, 0.25, 0.70),
    "addon_api": (0.03, 0.12, 0.35),
}

FEATURES = ("dashboards", "alerts", "api", "exports", "automation", "forecasting", "collaboration")
PREMIUM_FEATURES = ("automation", "forecasting")
API_FEATURE = "api"  # needs addon_api

EVENT_KINDS: dict[str, list[str]] = {
    "setup": ["setup_connect_datasource", "setup_invite_team", "setup_configure_sso"],
    "onboarding": ["onboarding_profile", "onboarding_first_project", "onboarding_tutorial", "onboarding_integrations"],
    "login": ["login"],
    "value": ["report_shared", "dashboard_viewed_by_exec", "goal_achieved"],
    "feature": [f"feature_{f}" for f in FEATURES],
    "bulk": ["export", "api_call"],
}
EVENT_TYPES: tuple[str, ...] = tuple(e for names in EVENT_KINDS.values() for e in names)


def monthly_price(product: str, seats: int, segment: int, discount: float, price_factor: float, annual: bool) -> float:
    """MRR of one subscription line."""
    factor = (1 - discount) * price_factor * (1 - ANNUAL_DISCOUNT if annual else 1.0)
    if product == "addon_api":
        value = API_FLAT_PRICE[segment] * price_factor
    elif product == "addon_sso":
        value = max(SSO_MINIMUM, seats * SEAT_PRICE[product] * factor)
    else:
        value = seats * SEAT_PRICE[product] * factor
    return round(value, 2)


def seat_based(product: str) -> bool:
    return product != "addon_api"
