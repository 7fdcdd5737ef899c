"""Workflow: what the CS team does with the scores each week.

Owns the alert rules (alert_rules, pure), the insight score and routing (insight),
alert runs on the workspace (alerts) with their state (alert_state: snooze, close) and
delivery (webhook: batched, Retry-After; slack: one message per owner); the weekly digest
(digest, digest_render) and its e-mail (mail); the week's whole job (weekly: `radar run`,
resumable, step by step); the leadership drivers
report (drivers, drivers_report), feedback quotes (quotes), the indicator scorecard
(scorecard), model monitoring (monitor: the stored scores against the outcomes now
known and the retrain signal; drift: the inputs' population stability index), and their
commands (cli: `radar alerts`, `radar digest`, `radar run`, `radar drivers`, `radar monitor`).

May import `serving.crm`, `serving.scoring`, `serving.render`, `features`, `training` and
`radar`; never `serving.web`.
"""
