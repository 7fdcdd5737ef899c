"""Limits that hold against hostile clients: body size, body and header read time, echoed length.

- `BodyLimit` (ASGI middleware, outermost): a request body larger than
  `serving.max_body_bytes` answers 413 — at once when Content-Length says so, else as
  soon as that many bytes arrived (chunked bodies, or a Content-Length that lies are
  counted, never trusted); a body not complete within `serving.body_timeout_s` answers
  408. The body is read here, bounded, and handed on as one message.
- `install_header_timeout`: BentoML 1.4 passes uvicorn only its keep-alive and
  graceful-shutdown timeouts (`bentoml serve --timeout-keep-alive`), and uvicorn closes a
  connection only when it is idle between requests — a client that dribbles header bytes
  keeps it open forever. This closes a connection whose request headers have not all
  arrived `serving.header_timeout_s` after it opened or after its previous response.
- `bounded(text, limit)`: a client-given id as echoed back in a response.
"""

from __future__ import annotations

import asyncio
import json

BODY_METHODS = (b"POST", b"PUT", b"PATCH")


def bounded(text: str, limit: int = 100) -> str:
    """At most `limit` characters of `text`, then a marker with the full length."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _content_length(headers) -> int | None:
    """The Content-Length header as a number; None when absent or not a plain number (never raises)."""
    for name, value in headers:
        if name == b"content-length":
            digits = value.strip()
            if not digits.isdigit() or len(digits) > 18:  # no int() of thousands of digits
                return -1
            return int(digits)
    return None


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: bodies of at most `max_bytes`, read within `timeout_s` (413 / 408 beyond)."""

    def __init__(self, app, max_bytes: int, timeout_s: float):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        length = _content_length(headers)
        chunked = any(n == b"transfer-encoding" for n, _ in headers)
        if scope.get("method", "").encode() not in BODY_METHODS and not length and not chunked:
            return await self.app(scope, receive, send)
        too_large = f"the request body is larger than {self.max_bytes:,} bytes (serving.max_body_bytes)"
        if length == -1:
            return await _answer(send, 400, "Content-Length is not a number of bytes")
        if length is not None and length > self.max_bytes:
            return await _answer(send, 413, too_large)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        chunks, size, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return await _answer(send, 408, f"the request body did not arrive within {self.timeout_s:g} s")
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await _answer(send, 413, too_large)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def install_header_timeout(seconds: float) -> None:
    """Close connections whose request headers take longer than `seconds` (uvicorn's h11
    protocol, which BentoML's workers run; patched once per process)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    if getattr(H11Protocol, "_radar_header_timeout", None) is not None:
        H11Protocol._radar_header_timeout = seconds
        return
    made, completed, lost = H11Protocol.connection_made, H11Protocol.on_response_complete, H11Protocol.connection_lost

    def arm(self) -> None:
        timer = getattr(self, "_radar_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._radar_header_timer = self.loop.call_later(self._radar_header_timeout, expire, self)

    def expire(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
        if waiting and not self.transport.is_closing():  # no whole request head arrived in time
            self.transport.close()

    def connection_made(self, transport) -> None:
        made(self, transport)
        arm(self)

    def on_response_complete(self) -> None:
        completed(self)
        if not self.transport.is_closing():
            arm(self)  # the next request's headers get the same time

    def connection_lost(self, exc) -> None:
        timer = getattr(self, "_radar_header_timer", None)
        if timer is not None:
            timer.cancel()
        lost(self, exc)

    H11Protocol._radar_header_timeout = seconds
    H11Protocol.connection_made = connection_made
    H11Protocol.on_response_complete = on_response_complete
    H11Protocol.connection_lost = connection_lost
