"""Bounded work before a request gets in (shared.service.Gate): no body is read without a valid key, and a body
without a Content-Length is cut off at the first chunk past the bound."""

from __future__ import annotations

import json

import pytest

from shared.testing import ADMIN_KEY

CHUNK = b"x" * 65_536


async def _asgi(app, *, path: str, headers: dict[str, str], chunks: int) -> tuple[int, dict, bytes, int]:
    """POST `chunks` chunks of 64 KiB (chunked: no Content-Length) straight to the ASGI app; returns status, headers,
    body and how many chunks the app (or the gate) read."""
    read = 0

    async def receive():
        nonlocal read
        if read < chunks:
            read += 1
            return {"type": "http.request", "body": CHUNK, "more_body": read < chunks}
        return {"type": "http.disconnect"}

    answer: dict = {"body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "app": app,
    }
    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"], read


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "not-a-key-of-ours-00000"}])
async def test_no_body_is_read_without_a_valid_key(prepayment, headers):
    app = prepayment._transport.app
    status, answer_headers, body, read = await _asgi(app, path="/v1/prepayments", headers=headers, chunks=1600)
    assert status == 401 and answer_headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "UNAUTHENTICATED"
    assert read == 0  # 100 MiB offered, not a byte taken


async def test_a_chunked_body_is_cut_off_at_the_bound(prepayment):
    app = prepayment._transport.app
    limit = app.state.settings.max_body_bytes
    status, answer_headers, body, read = await _asgi(
        app, path="/v1/prepayments", headers={"X-Api-Key": ADMIN_KEY}, chunks=1600
    )
    assert status == 413 and json.loads(body)["code"] == "BODY_TOO_LARGE"
    assert read == limit // len(CHUNK) + 1  # the first chunk past the bound, and no further


async def test_a_chunked_body_within_the_bound_reaches_the_route(prepayment):
    app = prepayment._transport.app
    status, _, body, _ = await _asgi(app, path="/v1/prepayments", headers={"X-Api-Key": ADMIN_KEY}, chunks=1)
    assert status == 400 and json.loads(body)["code"] == "MALFORMED_JSON"  # read whole and parsed by the route


async def test_a_declared_length_above_the_bound_is_refused_unread(prepayment):
    response = await prepayment.post(
        "/v1/prepayments", content=b"{}", headers={"X-Api-Key": ADMIN_KEY, "Content-Length": str(10**9)}
    )
    assert response.status_code == 413 and response.json()["code"] == "BODY_TOO_LARGE"
