"""The one Jinja2 set-up for HTML pages and e-mail digests.

Autoescaping is on for every HTML template (user data such as names, ids, quotes and
notes never becomes markup) and off only for plain-text templates (`.md`, `.txt`), whose
readers are not browsers. Undefined names are errors, so a template typo fails a test
rather than rendering an empty cell.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

PLAIN_TEXT = (".md", ".txt")


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(PLAIN_TEXT)


def environment(folder: Path) -> jinja2.Environment:
    """A Jinja2 environment loading templates from `folder`, escaping HTML by default."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
