"""Render: the one presentation stack for e-mail digests and web pages.

Owns the Jinja2 environment (autoescaping on for HTML) and the charts (matplotlib,
drawn on the Agg canvas). Imports nothing from the other serving rooms, so scoring,
workflow and web can all use it.
"""
