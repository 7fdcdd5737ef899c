"""Hostile requests against a real `radar serve` on 127.0.0.1 (tests/serving/web/conftest.py's
`guarded_server`: serving.max_body_bytes = 1 MB, header and body timeouts 3 s). Every request is
bounded in bytes and time: raw sockets with timeouts, never an unbounded read."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.slow  # a real server of its own (~30 s to start): run in CI by make test-slow

LIMIT = 1024 * 1024  # LIMITS_TOML in conftest
TIMEOUT = 3.0
SLACK = 4.0  # a busy 2-core machine


def _connect(server) -> socket.socket:
    parts = urlsplit(server.base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    return sock


def _response(sock: socket.socket, most: int = 65536) -> bytes:
    """What the server answered (up to `most` bytes, until it closes or 20 s pass)."""
    got = b""
    sock.settimeout(20)
    try:
        while len(got) < most:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                head, _, body = got.partition(b"\r\n\r\n")
                length = [
                    int(v)
                    for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ]
                if length and len(body) >= length[0]:
                    break
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_100_mb_body_is_refused_before_it_is_sent(guarded_server):
    sock = _connect(guarded_server)
    started = time.monotonic()
    sock.sendall(
        b"POST /score_accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {guarded_server.token}\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
        + b'{"account_ids": ["'
        + b"x" * 65536
    )
    answer = _response(sock)
    took = time.monotonic() - started
    sock.close()
    assert _status(answer) == 413 and b"max_body_bytes" in answer
    assert took < SLACK, took
    print(f"100 MB Content-Length: 413 after {took * 1000:.0f} ms")


def test_a_chunked_body_is_counted_not_trusted(guarded_server):
    sock = _connect(guarded_server)
    sock.sendall(
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {guarded_server.token}\r\n\r\n".encode()
    )
    chunk = b"x" * 65536
    sent, answer = 0, b""
    sock.settimeout(0.0)
    try:
        while sent < 100 * 1024 * 1024:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.settimeout(5)
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sock.settimeout(0.0)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
    finally:
        answer += _response(sock)
        sock.close()
    assert _status(answer) == 413
    assert sent < 8 * LIMIT, sent  # stopped soon after the limit, not after 100 MB
    print(f"chunked body: 413 after {sent / LIMIT:.1f} MB sent")


def test_a_huge_account_id_is_refused_and_a_long_one_is_not_echoed_whole(guarded_server):
    headers = {**guarded_server.headers, "Content-Type": "application/json"}
    huge = httpx.post(
        f"{guarded_server.base}/score_accounts",
        content=json.dumps({"account_ids": ["x" * (10 * 1024 * 1024)]}),
        headers=headers,
        timeout=60,
    )
    assert huge.status_code == 413 and len(huge.content) < 1000
    long_id = "y" * 200_000
    answer = httpx.post(
        f"{guarded_server.base}/score_accounts",
        json={"account_ids": [long_id]},
        headers=guarded_server.headers,
        timeout=60,
    )
    assert answer.status_code == 200 and len(answer.content) < 5000
    (echoed,) = answer.json()["not_found"]
    assert echoed.startswith("y" * 100) and "y" * 101 not in echoed and "200,000 characters" in echoed
    page = httpx.get(f"{guarded_server.base}/ui/account/{'z' * 500}", headers=guarded_server.headers, timeout=60)
    assert page.status_code == 422 and "z" * 50 not in page.text
    for auth, status in ((f"Authorization: Bearer {guarded_server.token}\r\n".encode(), 422), (b"", 303)):
        sock = _connect(guarded_server)  # a 100 KB request line (httpx refuses to send one)
        try:
            sock.sendall(b"GET /ui/account/" + b"z" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: it answered already
        answer = _response(sock)
        sock.close()
        assert _status(answer) == status and b"z" * 50 not in answer, answer[:300]


def test_hostile_cookies_and_headers_get_a_quick_answer(guarded_server):
    base = guarded_server.base
    hostile = [
        {"Cookie": "radar_ui=" + "9" * 5000 + ".deadbeef"},
        {"Cookie": "radar_ui=" + "0" * 32},  # the right shape, no such session
        {"Cookie": 'radar_ui="\\"\\x00;;;===; radar_ui=' + "%" * 3000},
        {"Cookie": "=" * 4000},
        {"Authorization": "Bearer " + "9" * 5000},
        {"Authorization": "Basic " + "A" * 4000},
        {"Authorization": "Bearer"},
    ]
    times = []
    for headers in hostile:
        started = time.monotonic()
        answer = httpx.get(f"{base}/ui/", headers=headers, timeout=30, follow_redirects=False)
        took = time.monotonic() - started
        assert answer.status_code in (303, 400, 401), (headers, answer.status_code)
        assert took < SLACK, (headers, took)
        times.append(took)
    print(f"hostile cookies and headers: slowest answer {max(times) * 1000:.0f} ms")
    for headers in ({"Content-Length": "9" * 5000}, {"Content-Length": "-1"}):
        sock = _connect(guarded_server)
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
            + f"Authorization: Bearer {guarded_server.token}\r\n\r\n".encode()
        )
        answer = _response(sock)
        sock.close()
        assert 400 <= _status(answer) < 500, answer[:200]
    assert httpx.get(f"{base}/livez", timeout=30).status_code == 200  # the service is still well


def test_slow_headers_and_slow_bodies_are_cut_off(guarded_server):
    socks = [_connect(guarded_server) for _ in range(20)]
    for s in socks:
        s.sendall(b"GET /ui/ HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    open_ = set(range(len(socks)))
    closed_after = {}
    while open_ and time.monotonic() - started < TIMEOUT + 2 * SLACK:
        for i in list(open_):
            try:
                socks[i].settimeout(0.05)
                socks[i].sendall(b"X-Drip: 1\r\n")  # one header line every ~half second
                if socks[i].recv(1024) == b"":
                    closed_after[i] = time.monotonic() - started
                    open_.discard(i)
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_after[i] = time.monotonic() - started
                open_.discard(i)
        time.sleep(0.5)
    for s in socks:
        s.close()
    assert not open_, f"{len(open_)} of 20 dribbling connections still open"
    assert max(closed_after.values()) < TIMEOUT + SLACK, closed_after
    print(f"20 dribbling connections closed after {min(closed_after.values()):.1f}-{max(closed_after.values()):.1f} s")

    sock = _connect(guarded_server)
    started = time.monotonic()
    sock.sendall(
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
        + f"Authorization: Bearer {guarded_server.token}\r\n\r\n".encode()
        + b'{"accounts": ['
    )
    answer = _response(sock)
    took = time.monotonic() - started
    sock.close()
    assert _status(answer) == 408 and TIMEOUT - 0.5 < took < TIMEOUT + SLACK, (answer[:200], took)
    print(f"slow body: 408 after {took:.1f} s")
