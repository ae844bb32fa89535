"""Calls from the gateway to the services it translates to, with the calling institution's own key.

Each NHSA client acts for one institution; the gateway reaches settlement and eligibility with that institution's
X-Api-Key (the one API_KEYS gives it), so every rule of tenancy the services apply to an HIS applies here too.
Every call is bounded in time. A service that cannot be reached, or answers 5xx, is a business failure the client
may retry (the same msgid replays nothing until an answer was stored; money-moving calls carry an Idempotency-Key).

Calls go over shared.http's keep-alive connections, the request head written here as bytes: building an
`httpx.Request` (URL parsing, header normalisation) cost about a tenth of a millisecond a call, and a transaction
makes one to four calls. Tests hand in an httpx transport instead (e.g. ASGITransport to an in-process app).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson

from services.gateway.inputs import Failure
from shared.events.envelope import dumpb
from shared.http import OVERALL_MARGIN, KeepAliveTransport

UNAVAILABLE = "医保业务系统暂时无法访问，请稍后重试（原交易未生效可用原报文ID重发）"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        """The problem's stable code of a refusal."""
        return self.body.get("code") if isinstance(self.body, dict) and not self.ok else None


class Service:
    """One service's base URL and its connections (tests hand in an httpx transport to an in-process app)."""

    def __init__(self, base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport
        self.pool = KeepAliveTransport() if transport is None else None
        parts = urlsplit(self.base_url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._prefix = parts.path
        self._host = f"Host: {self._address[0]}:{self._address[1]}\r\n".encode()
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply:
        target = self._prefix + quote(path, safe="/") + ("?" + urlencode(params) if params else "")
        content = dumpb(body) if body is not None else b""
        try:
            async with asyncio.timeout(self.timeout + OVERALL_MARGIN):
                if self.pool is not None:
                    status, raw = await self._exchange(method, target, key, content, idempotency_key)
                else:
                    status, raw = await self._via_transport(method, target, key, content, idempotency_key)
        except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            raise Failure(UNAVAILABLE) from None
        if status >= 500:
            raise Failure(UNAVAILABLE)
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise Failure(UNAVAILABLE) from None
        return Reply(status, data)

    async def _exchange(
        self, method: str, target: str, key: str, content: bytes, idempotency_key: str | None
    ) -> tuple[int, bytes]:
        """One request on a kept-alive connection (a GET once more on a new one when a kept one was closed)."""
        assert self.pool is not None
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), self._host, b"X-Api-Key: ", key.encode()]
        head.append(b"\r\nContent-Length: " + str(len(content)).encode())
        if content:
            head.append(b"\r\nContent-Type: application/json")
        if idempotency_key is not None:
            head.append(b"\r\nIdempotency-Key: " + idempotency_key.encode())
        payload = b"".join(head) + b"\r\n\r\n" + content
        return await self.pool.exchange_bytes(self._address, payload, method)

    async def _via_transport(
        self, method: str, target: str, key: str, content: bytes, idempotency_key: str | None
    ) -> tuple[int, bytes]:
        assert self.transport is not None
        headers = {"x-api-key": key}
        if content:
            headers["content-type"] = "application/json"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        url = f"{self.base_url.removesuffix(self._prefix)}{target}"
        request = httpx.Request(method, url, headers=headers, content=content, extensions=self._extensions)
        response = await self.transport.handle_async_request(request)
        return response.status_code, await response.aread()

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
        if self.transport is not None:
            await self.transport.aclose()
