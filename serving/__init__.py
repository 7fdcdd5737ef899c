"""Serving: one scoring function for the API and batch scoring, its explanations, and the CRM table.

settings (thresholds) -> score (THE scoring function) <- explain (TreeSHAP drivers, via
treeshap) + playbook (action and owner); schemas (POST /score contract); batch (workspace
scoring, rankings); crm / crm_sql (idempotent CRM upserts). Alerts: alert_rules (DOMAIN 5
rules, pure) + insight (score, routing) -> alerts (a run on the workspace) with alert_state
(snooze, close) and webhook (delivery). Web pages (/ui): ui (the app, sign-in) renders pages
(what the portfolio and account pages show) with scorecard, trend_chart and workspace_reads;
templates/ and static/ hold the HTML and CSS. Playbooks are data: playbooks.toml. Nothing heavy
runs at import.
"""
