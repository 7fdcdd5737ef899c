"""Render: the one presentation stack for e-mail digests and web pages.

Owns the Jinja2 environment (autoescaping on for HTML) and the charts (matplotlib,
drawn on the Agg canvas), so scoring, workflow and web can all use it.

May import no other serving room (libraries only); never `serving.scoring`,
`serving.crm`, `serving.workflow` or `serving.web`.
"""
