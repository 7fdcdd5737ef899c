"""Ledgerly, the second sample product (`radar sample-data --product ledgerly`): data the
defaults do not fit, for the "bring your own data" walkthrough and its tests.

Ledgerly sells invoicing and bookkeeping to small businesses. Its event names are its own
(none is a default event name): sessions, invoices created and payments reconciled (both
carry the amount in `quantity`), bank feeds, reminders, recurring invoices, ledger
exports. Plans are monthly, quarterly, semiannual or annual (`billing_period` written as
"month", "quarter", "semiannual", "year").

The story differs from the default sample's. Customers are small businesses whose own
cash flow sets the tone: the tax season (April) squeezes them, rather than the budgets at
the turn of the year; bank-feed outages (incidents) are more frequent; a champion leaving
matters less (one bookkeeper, rarely replaced) and price increases are rarer. So churn is
read in falling payment volumes (the amounts reconciled and invoiced) and fewer sessions
more than in seat adoption.

A few term customers renegotiated their last contract: those lines say billing_period
"custom", which ingest rejects; their accounts' labels are unknown from then on, never a
churn. The export ends with a partial period: monthly renewal lines are posted at month close,
after the export, so the last month's monthly renewals are missing from subscriptions
while events run to the end. `radar build-features` reports the last month-end as partial
(about half the accounts seem to have left) and scoring skips it.
"""

from __future__ import annotations

from features.sampledata.products import Product, Story

EVENT_NAMES = {
    # login
    "login": "session_started",
    # value
    "report_shared": "payment_reconciled",
    "dashboard_viewed_by_exec": "cashflow_report_viewed",
    "goal_achieved": "invoice_paid_online",
    # setup steps
    "setup_connect_datasource": "bank_feed_connected",
    "setup_invite_team": "accountant_invited",
    "setup_configure_sso": "tax_settings_completed",
    # onboarding checklist
    "onboarding_profile": "company_profile_completed",
    "onboarding_first_project": "first_invoice_sent",
    "onboarding_tutorial": "walkthrough_finished",
    "onboarding_integrations": "payment_gateway_linked",
    # product features
    "feature_dashboards": "invoice_created",
    "feature_alerts": "payment_reminder_sent",
    "feature_api": "api_sync",
    "feature_exports": "ledger_exported",
    "feature_automation": "recurring_invoice_scheduled",
    "feature_forecasting": "cashflow_forecast_run",
    "feature_collaboration": "expense_approved",
    # bulk
    "export": "csv_export",
    "api_call": "bank_transactions_imported",
}

LEDGERLY = Product(
    name="ledgerly",
    description="an invoicing product: invoices, payments, bank feeds; monthly, quarterly, semiannual and annual plans",
    end="2024-01-31",
    accounts=600,
    years=2,
    event_names=EVENT_NAMES,
    money_events={
        "invoice_created": ((420.0, 1600.0, 5200.0), 0.5),
        "payment_reconciled": ((380.0, 1500.0, 5000.0), 0.9),
    },
    term_months=((3, 0.35), (6, 0.35), (12, 0.30)),
    invoice_line_share=1.0,  # the billing system writes one line per invoiced month
    renewal_export_lag_days=31,
    custom_term_every=12,
    story=Story(
        champion_rate=0.05 / 52,
        incidents_per_year=4.0,
        season_amplitude=0.45,
        season_peak_day=105,
        price_increase_scale=0.5,
    ),
)
