"""The gateway's gate (in place of shared.service.Gate, which wants an X-Api-Key on every POST): bodies bounded
(413 in the platform's shape), every request timed, and the platform's transactions answered right here.

A POST to /fsi/api/rsfComIfsService/callService or /fsi/api/{infno} is read (within the bound) and handed to
dispatch.handle as bytes and headers, and its answer written back, without FastAPI's routing, dependency and
exception layers: they cost about as much CPU as the translation itself, and a transaction needs none of them
(its signature is checked per request, auth.py; every answer is built by dispatch). Everything else (probes,
/metrics, /docs, the same routes for OpenAPI) goes through the app as usual. The served app (app.py) puts
`Outermost` in front of FastAPI itself, so its error, body-limit and telemetry layers are skipped too.
"""

from __future__ import annotations

import time
from typing import Any

from services.gateway import dispatch
from shared.service import BODY_METHODS, LATENCY, read_bounded, replay_body

SINGLE = "/fsi/api/rsfComIfsService/callService"
PREFIX = "/fsi/api/"
TOO_LARGE = '{"code":413,"message":"请求报文过大"}'.encode()
JSON = b"application/json; charset=utf-8"


def transaction_path(path: str) -> tuple[bool, str | None]:
    """(a platform transaction?, the path's infno): the single URL (None) or /fsi/api/{infno}."""
    if path == SINGLE:
        return True, None
    if path.startswith(PREFIX):
        rest = path[len(PREFIX) :]
        if rest and "/" not in rest and len(rest) <= 100:
            return True, rest
    return False, None


async def _send(send: Any, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _bounded(scope: Any, receive: Any, limit: int) -> tuple[bool, bytes | None]:
    """(Within the bound?, the body when it had to be read to know: no Content-Length)."""
    length = dict(scope["headers"]).get(b"content-length")
    if length is not None:
        return length.isdigit() and int(length) <= limit, None
    body = await read_bounded(receive, limit)
    return body is not None, body


async def _transaction(app: Any, scope: Any, receive: Any, send: Any, infno: str | None) -> None:
    """A platform transaction answered (`app`: the gateway's FastAPI app, for its state)."""
    started = time.perf_counter()
    limit = app.state.settings.max_body_bytes
    within, body = await _bounded(scope, receive, limit)
    if not within:
        await _send(send, 413, TOO_LARGE, close=True)
        return
    if body is None:
        body = await read_bounded(receive, limit) or b""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    status, answer = await dispatch.handle(app.state.gateway, headers=headers, body=body, path_infno=infno)
    await _send(send, status, answer)
    route = SINGLE if infno is None else PREFIX + "{infno}"
    LATENCY.labels("POST", route, status).observe(time.perf_counter() - started)


class Outermost:
    """The served gateway (app.py): platform transactions answered before FastAPI's own layers (its error, body
    limit and telemetry middleware cost about a tenth of a transaction's CPU, and a transaction needs none of them:
    dispatch answers every outcome itself); everything else to the app, whose PlatformGate does the rest."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # state, title, openapi() …: the app's
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            platform, infno = transaction_path(scope["path"])
            if platform:
                await _transaction(self.app, scope, receive, send, infno)
                return
        await self.app(scope, receive, send)


class PlatformGate:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        platform, infno = transaction_path(scope["path"]) if method == "POST" else (False, None)
        if platform:
            await _transaction(scope["app"], scope, receive, send, infno)
            return
        started = time.perf_counter()
        body: bytes | None = None
        if method in BODY_METHODS:
            within, body = await _bounded(scope, receive, scope["app"].state.settings.max_body_bytes)
            if not within:
                await _send(send, 413, TOO_LARGE, close=True)
                return
        if body is not None:
            receive = replay_body(body)
        status = 500

        async def timed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            LATENCY.labels(method, getattr(route, "path", "unmatched"), status).observe(time.perf_counter() - started)
