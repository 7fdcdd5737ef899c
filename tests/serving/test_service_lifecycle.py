"""The running service's model lifecycle, against a real `radar serve` on 127.0.0.1: it
switches to a new champion under load without a restart or a mixed response, keeps serving
when the new champion is damaged, and answers 503 plainly while a writer holds the
workspace. The service's project is a copy of the served project (its own registry and
workspace), polling the registry every second."""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time

import duckdb
import httpx
import pytest

from features.ingest.lock import workspace_lock
from training.track import CHAMPION, configure

pytestmark = pytest.mark.slow  # real servers of their own (~30 s each to start): run in CI by make test-slow

POLL_SECONDS = 1.0
SWITCH_BUDGET_SECONDS = 30.0  # the poll interval plus loading and warming the new set on a busy machine


class Writer:
    """A writer holding the workspace as `radar ingest` does: the lock and a write connection."""

    def __init__(self, database):
        self._lock = workspace_lock(database, "ingest", 0)
        self._lock.__enter__()
        self._con = duckdb.connect(str(database))

    def release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._lock.__exit__(None, None, None)
            self._con = None


@pytest.fixture(scope="module")
def lifecycle(served_project, served_copy, serve_project, tmp_path_factory):
    """(server, settings, versions {"ok": renewal version with files, "broken": one without},
    the writer that held the workspace while the server started)."""
    root = tmp_path_factory.mktemp("lifecycle")
    settings = served_copy.project(served_project, root, f"champion_poll_seconds = {POLL_SECONDS}")
    versions = {
        "first": str(configure(settings.training).get_model_version_by_alias("radar-renewal", CHAMPION).version),
        "ok": served_copy.register(settings, "renewal", root / "ok-model"),
        "broken": served_copy.register(settings, "renewal", root / "broken-model"),
    }
    shutil.rmtree(root / "broken-model")
    writer = Writer(settings.database_path)
    try:
        with serve_project(root) as server:
            yield server, settings, versions, writer
    finally:
        writer.release()


def _move(settings, version: str) -> None:
    configure(settings.training).set_registered_model_alias("radar-renewal", CHAMPION, version)


def _versions_of(body: dict) -> set[tuple]:
    """Every (model, version) pair a response names: its `models` and each account's."""
    named = {(k, v["name"], v["version"]) for k, v in body["models"].items() if v}
    for account in body.get("accounts", []):
        named |= {(k, account[k]["name"], account[k]["version"]) for k in body["models"] if k in account and account[k]}
    return named


def test_workspace_endpoints_answer_503_plainly_while_a_writer_holds_it(lifecycle):
    server, settings, _, writer = lifecycle
    if writer._con is None:
        pytest.skip("the writer was released by an earlier test of this module")
    for method, path, body in [
        ("POST", "/score_accounts", {"account_ids": ["acc0001"]}),
        ("GET", "/accounts/at-risk", None),
        ("GET", "/accounts/opportunities", None),
    ]:
        response = httpx.request(method, f"{server.base}{path}", json=body, headers=server.headers, timeout=60)
        assert response.status_code == 503, (path, response.text)
        message = response.json()["error"]
        assert "being updated" in message and "try again" in message, message
        assert str(settings.database_path.parent) not in message and "radar.duckdb" not in message
        assert "pid" not in message.lower() and str(os.getpid()) not in message
        assert "unexpected" not in message.lower()
    score = httpx.post(
        f"{server.base}/score", json={"accounts": [{"account_id": "a"}]}, headers=server.headers, timeout=60
    )
    assert score.status_code == 200  # scoring given records needs no workspace
    log = server.log.read_text()
    assert str(settings.database_path) in log and "Traceback" not in log  # the detail goes to the log only
    assert log.count("workspace unavailable:") == 1  # once, not per request
    writer.release()
    response = httpx.post(
        f"{server.base}/score_accounts", json={"account_ids": ["acc0001"]}, headers=server.headers, timeout=60
    )
    assert response.status_code == 200, response.text


def test_the_champion_switches_under_load_without_errors_or_mixed_versions(lifecycle, served_project):
    server, settings, versions, writer = lifecycle
    writer.release()
    _, served = served_project
    first, new = versions["first"], versions["ok"]
    _move(settings, first)
    deadline = time.monotonic() + SWITCH_BUDGET_SECONDS
    while (
        httpx.get(f"{server.base}/accounts/at-risk", headers=server.headers, timeout=60).json()["models"][
            "renewal_model"
        ]["version"]
        != first
    ):  # a run of this test alone starts on `first` already
        assert time.monotonic() < deadline
        time.sleep(0.2)
    seen: list[tuple[float, int, str, set]] = []
    stop = threading.Event()
    records = [{"account_id": f"a{i}", "adoption_rate_28d": 0.1 * i} for i in range(5)]

    def client() -> None:
        with httpx.Client(headers=server.headers, timeout=60) as http:
            while not stop.is_set():
                for path in ("/score", "/accounts/at-risk", "/score_accounts"):
                    if path == "/score":
                        response = http.post(f"{server.base}{path}", json={"accounts": records})
                    elif path == "/score_accounts":
                        response = http.post(f"{server.base}{path}", json={"account_ids": ["acc0001", "acc0002"]})
                    else:
                        response = http.get(f"{server.base}{path}", params={"limit": 5})
                    body = response.json() if response.status_code == 200 else {}
                    renewal = body.get("models", {}).get("renewal_model", {}).get("version")
                    seen.append(
                        (time.monotonic(), response.status_code, renewal, _versions_of(body) if body else set())
                    )

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(1.0)
        moved = time.monotonic()
        _move(settings, new)
        while (
            not [s for s in seen if s[0] > moved and s[2] == new] and time.monotonic() < moved + SWITCH_BUDGET_SECONDS
        ):
            time.sleep(0.1)
        time.sleep(1.0)  # keep the load on after the switch
    finally:
        stop.set()
        thread.join(timeout=60)
    assert seen and not [s for s in seen if s[1] != 200], [s[:2] for s in seen if s[1] != 200][:5]
    switched = [s[0] for s in seen if s[2] == new]
    assert switched, f"still serving v{first} {SWITCH_BUDGET_SECONDS} s after the alias moved"
    took = switched[0] - moved
    print(f"\nswitch after {took:.2f} s (poll every {POLL_SECONDS} s) over {len(seen)} requests")
    assert took <= SWITCH_BUDGET_SECONDS
    for _, _, renewal, named in seen:  # one version per response, the same everywhere in it
        assert {v for (k, _, v) in named if k == "renewal_model"} == {renewal}
    order = [s[2] for s in seen]
    assert order == sorted(order, key=lambda v: v == new)  # old, then new; never back
    log = server.log.read_text()
    assert f"switched to radar-renewal v{new}" in log and "Traceback" not in log


def test_a_damaged_new_champion_keeps_the_service_serving_and_warns_once(lifecycle):
    server, settings, versions, writer = lifecycle
    writer.release()
    serving_now = httpx.get(f"{server.base}/accounts/at-risk", headers=server.headers, timeout=60).json()["models"]
    _move(settings, versions["broken"])
    latencies = []
    try:
        end = time.monotonic() + 5 * POLL_SECONDS
        while time.monotonic() < end:
            started = time.perf_counter()
            response = httpx.post(
                f"{server.base}/score", json={"accounts": [{"account_id": "a"}]}, headers=server.headers, timeout=60
            )
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            assert response.json()["models"] == serving_now
            time.sleep(0.2)
        log = server.log.read_text()
        warned = [line for line in log.splitlines() if f"radar-renewal v{versions['broken']}" in line]
        assert len(warned) == 1, warned
        assert "still serving" in warned[0] and "radar promote renewal --to VERSION" in warned[0]
        assert "Traceback" not in log
        print(f"\nPOST /score while the damaged champion is polled: median {statistics.median(latencies) * 1e3:.0f} ms")
    finally:
        _move(settings, versions["ok"])
