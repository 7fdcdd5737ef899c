"""The feature registry describes the role features with the configured event names.

With the default mapping the features keep their own wording ("Value events (reports
shared, goals reached)"); with radar.toml mapping another product's events to the roles,
the descriptions, and the reasons built from them, name those events instead.
"""

from __future__ import annotations

from features.events import NAMED_EVENTS_MAX, ROLE_FEATURES, describe_roles
from features.registry import FeatureRegistry
from features.snapshot import all_specs, feature_registry
from radar.settings import load_settings

LEDGER = {
    "value_events": ("invoice_created", "payment_reconciled"),
    "login_events": ("session_started",),
    "setup_events": ("bank_connected", "team_invited"),
    "onboarding_events": ("ob_profile", "ob_import", "ob_first_invoice"),
    "feature_events": ("invoices", "reminders", "multi_currency", "reports", "api", "payroll"),
}


def test_the_default_mapping_keeps_the_features_own_wording(tmp_path):
    registry = feature_registry(load_settings(output_dir=tmp_path))
    assert registry["value_events_28d"].description == "Value events (reports shared, goals reached), last 28 days"
    assert registry["logins_90d"].label == "Logins"
    assert registry["activation_rate"].label == "Share of users who completed every setup step"
    defaults = {s.name: s.label for s in all_specs()}
    assert {s.name: s.label for s in describe_roles(all_specs(), load_settings().features)} == defaults


def test_a_configured_mapping_names_its_events_in_the_descriptions_and_reasons(tmp_path):
    from serving.scoring.explain import reason

    registry = feature_registry(load_settings(output_dir=tmp_path, features=LEDGER))
    assert registry["value_events_28d"].description == (
        "Value events (invoice_created, payment_reconciled), last 28 days"
    )
    assert registry["value_events_per_seat_90d"].label == "Value events per seat (invoice_created, payment_reconciled)"
    assert registry["time_to_value_days"].label == (
        "Days from first subscription to first value event (invoice_created, payment_reconciled)"
    )
    assert registry["logins_trend_28d"].label == "Change in logins vs the window before (session_started)"
    assert (
        registry["activation_rate"].label
        == "Share of users who completed every setup step (bank_connected, team_invited)"
    )
    assert registry["onboarding_completion"].label == (
        "Share of the onboarding checklist done (ob_profile, ob_import, ob_first_invoice)"
    )
    # six feature events: the first four, then how many more
    assert NAMED_EVENTS_MAX == 4
    assert registry["feature_breadth_28d"].label == (
        "Features used ÷ features available (invoices, reminders, multi_currency, reports and 2 more)"
    )
    # features of no role are untouched; the family, direction and kind are the feature's own
    assert registry["events_28d"].label == "Product events"
    spec = registry["value_events_28d"]
    assert (spec.family, spec.healthy, spec.kind) == (14, "higher", "driver")
    why = reason(spec, spec.name, 3, -0.5, "renewal likelihood", False)
    assert (
        why
        == "Value events (invoice_created, payment_reconciled) is 3 over the last 28 days — lowers renewal likelihood"
    )


def test_only_the_changed_roles_are_renamed_and_an_empty_role_says_so():
    cfg = load_settings(features={"value_events": ("invoice_created",), "login_events": ()}).features
    registry = FeatureRegistry(describe_roles(all_specs(), cfg), cfg.windows)
    assert registry["value_events_28d"].label == "Value events (invoice_created)"
    assert registry["logins_28d"].label == "Logins (no login events configured: features.login_events)"
    assert registry["onboarding_completion"].label == "Share of the onboarding checklist done"  # default mapping
    assert registry["feature_breadth_90d"].label == "Features used ÷ features available"


def test_every_role_feature_is_a_registry_feature():
    """A renamed usage feature would silently keep its default wording: the map must follow it."""
    names = {s.name for s in all_specs()}
    assert set(ROLE_FEATURES) <= names
