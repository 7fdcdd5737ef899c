"""Workflow: what the CS team does with the scores each week.

Owns the alert rules (alert_rules, pure), the insight score and routing (insight),
alert runs on the workspace (alerts) with their state (alert_state: snooze, close) and
delivery (webhook); the weekly digest (digest, digest_render), the leadership drivers
report (drivers, drivers_report), feedback quotes (quotes), the indicator scorecard
(scorecard), and their commands (cli: `radar alerts`, `radar digest`, `radar drivers`).

May import `serving.crm`, `serving.scoring`, `serving.render`, `features`, `training` and
`radar`; never `serving.web`.
"""
