"""A realistic, deterministic sample workspace: `generate_workspace(out, ...)`.

The story. Each account (SMB, mid-market or enterprise; 82% English-, 10% French- and
8% Italian-speaking) has a hidden weekly health score. Health starts from how well the
account was onboarded, follows a mean-reverting random walk around a persistent account
quality, and is hit by shocks: its champion leaving (a sudden drop that fades over
months), product incidents on global dates (with bursts of urgent tickets), notice of a
price increase before a renewal, and budget pressure around the turn of the year.

Health drives everything observable. Usage follows it with a lag of a few weeks (weekly
active users, logins, feature breadth, value events); low health means more tickets,
escalations and reopens, lower CSAT and NPS, and texts whose buyer expressions (the six
DOMAIN 4 buckets) lean red; good onboarding shows in setup and checklist completion and
a short time-to-value. Seat demand grows with health: accounts that outgrow their seats
buy more (mid-term or at renewal), healthy ones upgrade to premium and add add-ons, and
shrinking teams downsize at renewal.

Churn is decided at renewal points only (contract anniversaries; every month for monthly
billing) with a probability that rises steeply as health falls, plus a small hazard of
closures that nothing predicts; about 10% of churned accounts come back later. Nothing
written before a churn is drawn from the churn decision itself. A good model finds
falling usage and adoption, worsening support experience and NPS, red renewal, value,
pricing and support cues, seat pressure (for expansion) and the distance to the next
renewal; it should reach a ROC-AUC around 0.75-0.88 on 90-day churn, not near 1.

A second product, `generate_workspace(..., product="ledgerly")`, reuses this machinery
with its own vocabulary, contract terms, story knobs and export end
(`features.sampledata.products`, `features.sampledata.ledgerly`).
"""

from features.sampledata.catalog import EVENT_KINDS, EVENT_TYPES
from features.sampledata.workspace import PRODUCTS, generate_workspace

__all__ = ["EVENT_KINDS", "EVENT_TYPES", "PRODUCTS", "generate_workspace"]
