"""Serving: scores, reasons and actions for the people who use them.

Rooms, lowest first; a room imports only rooms below it (checked by import-linter
contracts in pyproject.toml and by `make lint`):

- `render`: the presentation stack shared by mail and pages (Jinja2 with autoescaping,
  matplotlib charts); knows nothing of scores.
- `scoring`: THE scoring function, its TreeSHAP explanations, request schemas, champion
  models, playbooks, batch scoring and the portfolio.
- `crm`: the CRM table and its writers (files, DuckDB, SQL), and scoring on Spark.
- `workflow`: the CS workflow on top of scores: alerts (rules, insight, state, webhook),
  the weekly digest, the leadership drivers report, quotes, scorecards, their CLI.
- `web`: the server-rendered pages (/ui), their templates and stylesheet.

`service.py` (the BentoML service) and `cli.py` (`radar score`, `radar serve`) sit on
top, thin. Nothing heavy runs at import.
"""
