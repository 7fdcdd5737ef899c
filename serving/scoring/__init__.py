"""Scoring: one scoring function for the API, batch scoring and every screen.

Owns `score_frame` (score), its TreeSHAP explanations (explain, treeshap), the POST
/score contract (schemas), the champion models from the registry (champions), the
playbooks that turn drivers into a next step (playbook, playbooks.toml), workspace
scoring and rankings (batch) and the service's in-memory portfolio (portfolio).

May import `serving.render`, `features`, `training` and `radar`; never `serving.crm`,
`serving.workflow` or `serving.web`.
"""
