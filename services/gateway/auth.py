"""Who may call the gateway: the two signing schemes of NHSA-GATEWAY.md, checked before any transaction.

- Gateway headers (spec 表5): `_api_name`, `_api_version`, `_api_timestamp` (ms), `_api_access_key`,
  `_api_signature` = Base64(HmacSHA1(secret, "_api_access_key=…&_api_name=…&_api_timestamp=…&_api_version=…")).
- TIF headers: `x-tif-paasid` (the access key), `x-tif-timestamp` (s), `x-tif-nonce`,
  `x-tif-signature` = hex SHA-256 of timestamp + secret + nonce + timestamp; a nonce once only within the window.

A request with any `_api_` header is judged by the `_api_` headers. A refusal is HTTP 401 {"code": 401, "message"}
with the spec's messages (表6).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

WINDOW_MS = 30 * 60 * 1000
API_HEADERS = ("_api_name", "_api_version", "_api_timestamp", "_api_access_key", "_api_signature")
TIF_HEADERS = ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature")
MAX_HEADER = 300

MISSING = "缺少服务网关的请求头!"
STALE = "签名时间戳超时!"
UNKNOWN = "非法用户!"
BAD_SIGNATURE = "签名不一致!"
REPLAYED = "请求随机数(nonce)重复，请重新生成请求!"


@dataclass(frozen=True, slots=True)
class Client:
    """An access key's caller: its institution, how it wants infcode, and the key it reaches the services with."""

    access_key: str
    secret: str
    fixmedins_code: str
    infcode_type: str  # "number" | "string"
    api_key: str | None  # the institution's X-Api-Key at the services (None: not configured)
    api_name: str | None = None  # the infno the gateway headers named (None under TIF)


class Refused(Exception):
    """The gateway layer refuses the request (HTTP 401 with the spec's message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def api_signature(secret: str, headers: Mapping[str, str]) -> str:
    """The `_api_signature` of the four other `_api_` headers."""
    text = "&".join(f"{name}={headers[name]}" for name in sorted(API_HEADERS[:4]))
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def tif_signature(secret: str, *, timestamp: str, nonce: str) -> str:
    """The `x-tif-signature` of a timestamp and nonce."""
    return hashlib.sha256(f"{timestamp}{secret}{nonce}{timestamp}".encode()).hexdigest()


def _timestamp(text: str, *, unit_ms: int, now_ms: int) -> None:
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        raise Refused(STALE)
    if abs(now_ms - int(text) * unit_ms) > WINDOW_MS:
        raise Refused(STALE)


async def authenticate(
    headers: Mapping[str, str],
    *,
    clients: Mapping[str, Client],
    now_ms: int,
    nonce_is_new: Callable[[str, str], Awaitable[bool]],
) -> Client:
    """The calling client, or Refused. `nonce_is_new(access_key, nonce)` records a TIF nonce (False: seen)."""
    if any(name in headers for name in API_HEADERS):
        values = {name: headers.get(name, "") for name in API_HEADERS}
        if not all(values.values()) or any(len(v) > MAX_HEADER for v in values.values()):
            raise Refused(MISSING)
        _timestamp(values["_api_timestamp"], unit_ms=1, now_ms=now_ms)
        client = clients.get(values["_api_access_key"])
        if client is None:
            raise Refused(UNKNOWN)
        expected = api_signature(client.secret, values)
        if not hmac.compare_digest(expected.encode(), values["_api_signature"].encode()):
            raise Refused(BAD_SIGNATURE)
        return dataclasses.replace(client, api_name=values["_api_name"])
    if any(name in headers for name in TIF_HEADERS):
        values = {name: headers.get(name, "") for name in TIF_HEADERS}
        if not all(values.values()) or any(len(v) > 100 for v in values.values()):
            raise Refused(MISSING)
        _timestamp(values["x-tif-timestamp"], unit_ms=1000, now_ms=now_ms)
        client = clients.get(values["x-tif-paasid"])
        if client is None:
            raise Refused(UNKNOWN)
        expected = tif_signature(client.secret, timestamp=values["x-tif-timestamp"], nonce=values["x-tif-nonce"])
        if not hmac.compare_digest(expected.encode(), values["x-tif-signature"].lower().encode()):
            raise Refused(BAD_SIGNATURE)
        if not await nonce_is_new(client.access_key, values["x-tif-nonce"]):
            raise Refused(REPLAYED)
        return client
    raise Refused(MISSING)
