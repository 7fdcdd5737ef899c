"""Serving: one scoring function for the API and batch scoring, its explanations, and the CRM table.

settings (thresholds) -> score (THE scoring function) <- explain (TreeSHAP drivers, via
treeshap) + playbook (action and owner); schemas (POST /score contract); batch (workspace
scoring, rankings); crm / crm_sql (idempotent CRM upserts). Nothing heavy runs at import.
"""
