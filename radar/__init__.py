"""Radar: what every stage shares — the typed settings (`radar.settings`), the console
(`radar.console`) and the `radar` command line (`radar.cli`).

Imports no stage at import time; only `radar.cli` composes the stages' commands.
"""
