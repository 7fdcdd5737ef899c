"""Account ids with any characters open in the web pages: a real `radar serve` over a copy of
the served workspace where some accounts' ids hold `/`, `%`, `?`, `#`, quotes and markup."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from markupsafe import escape  # the templates' own escaping

ODD_IDS = [
    "acme/emea",
    "50%off",
    "%2F",
    "who?me=1",
    "tag#1",
    'it\'s "quoted"',
    "[/bold]A00424",
    "<b>bold</b>&amp;",
]


def _running_server(config):
    """tests/serving/conftest.py's `running_server` (conftests cannot be imported under
    --import-mode=importlib; pytest holds the loaded module)."""
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "").as_posix().endswith("tests/serving/conftest.py"):
            return plugin.running_server
    pytest.fail("tests/serving/conftest.py not loaded")


@pytest.fixture(scope="module")
def odd_server(served_project, tmp_path_factory, request):
    """The served project's models over a workspace copy whose first accounts get ODD_IDS.
    Yields (server, {odd id: account name})."""
    import duckdb

    from radar.settings import load_settings

    source, served = served_project
    root = tmp_path_factory.mktemp("odd-ids")
    (root / "out").mkdir()
    shutil.copy(served.database_path, root / "out" / served.database_path.name)
    config = (
        (source / "radar.toml")
        .read_text()
        .replace(f'output_dir = "{source / "out"}"', f'output_dir = "{root / "out"}"')
    )
    (root / "radar.toml").write_text(config)
    settings = load_settings(root / "radar.toml")
    with duckdb.connect(str(settings.database_path)) as con:
        accounts = [a for (a,) in con.execute("SELECT DISTINCT account_id FROM snapshots ORDER BY 1").fetchall()]
        names = {}
        for old, new in zip(accounts, ODD_IDS):
            con.execute("UPDATE snapshots SET account_id = ? WHERE account_id = ?", [new, old])
            con.execute("UPDATE snapshots SET name = ? WHERE account_id = ?", [f"[red]{new}[/red] <i>Co</i>", new])
            names[new] = f"[red]{new}[/red] <i>Co</i>"
    with _running_server(request.config)(root) as running:
        yield running, names


def _get(server, path):
    return httpx.get(f"{server.base}{path}", headers=server.headers, timeout=60, follow_redirects=False)


@pytest.mark.parametrize("account", ODD_IDS)
def test_an_odd_id_is_linked_from_the_portfolio_and_its_page_opens(odd_server, account):
    server, names = odd_server
    portfolio = _get(server, f"/ui/?q={quote(account, safe='')}")
    assert portfolio.status_code == 200
    assert f'data-account="{escape(account)}"' in portfolio.text  # shown escaped, never as markup
    links = [
        unescape(href)
        for href in re.findall(r'href="(/ui/account/[^"]*)"', portfolio.text)
        if urlsplit(unescape(href)).path == f"/ui/account/{quote(account, safe='')}"
    ]
    assert links, "no link to the account page"
    page = _get(server, links[0])  # the link as the portfolio wrote it
    assert page.status_code == 200, page.text[-500:]
    assert escape(account) in page.text and escape(names[account]) in page.text
    assert "<b>bold</b>" not in page.text and "<i>Co</i>" not in page.text
    back = page.text.index('id="back"')
    assert "/ui/?q=" in page.text[max(0, back - 300) : back]  # the way back keeps the search


def test_an_id_that_is_not_there_is_a_plain_404(odd_server):
    server, _ = odd_server
    missing = _get(server, "/ui/account/" + quote("acme/emea/x", safe=""))
    assert missing.status_code == 404 and "no snapshots of account" in missing.text
