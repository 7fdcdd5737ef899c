"""Web: the server-rendered pages under /ui (portfolio, account, alert queue, leadership).

Owns the FastAPI app and sign-in (app), what each page shows (pages), the workspace
reads behind them (reads), the Jinja2 templates (templates/) and the stylesheet
(static/). The top room: may import every other serving room.
"""
