"""Web: the server-rendered pages under /ui (portfolio, account, alert queue, leadership).

Owns the FastAPI app and sign-in (app), what each page shows (pages), the workspace
reads behind them (reads), the Jinja2 templates (templates/) and the stylesheet
(static/).

The top room. May import `serving.workflow`, `serving.crm`, `serving.scoring`,
`serving.render`, `features`, `training` and `radar`; never `serving.service` or
`serving.cli`, which sit on top.
"""
