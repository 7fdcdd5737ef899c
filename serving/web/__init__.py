"""Web: the server-rendered pages under /ui (portfolio, account, alert queue, leadership).

Owns the FastAPI app and its sign-in guard (app), what each page shows (pages), the
workspace reads behind them (reads), the Jinja2 templates (templates/) and the
stylesheet (static/); the people and keys behind sign-in: users and roles (users),
server-side sessions and CSRF tokens (sessions), API keys (keys), the SQLite file that
holds them (access); and the request limits the service applies (limits).

The top room. May import `serving.workflow`, `serving.crm`, `serving.scoring`,
`serving.render`, `features`, `training` and `radar`; never `serving.service` or
`serving.cli`, which sit on top.
"""
