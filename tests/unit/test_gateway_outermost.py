"""The served gateway answers platform transactions in front of FastAPI (services/gateway/gate.py Outermost): a
transaction goes straight to dispatch, bodies past the bound get the platform's 413, everything else goes to the app
as it came."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.gateway import dispatch
from services.gateway.app import app as served
from services.gateway.gate import Outermost


class App:
    """The FastAPI app behind it: its state, and the requests it was handed."""

    title = "yibao gateway"

    def __init__(self) -> None:
        self.state = SimpleNamespace(settings=SimpleNamespace(max_body_bytes=100), gateway="the gateway")
        self.seen: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _request(gate, path: str, *, method: str = "POST", body: bytes = b"{}", length: bool = True):
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    headers = [(b"content-length", str(len(body)).encode())] if length else []
    sent: list[dict] = []

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers + [(b"_api_name", b"1101")]}
    await gate(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def handled(monkeypatch):
    calls: list[tuple] = []

    async def handle(gw, *, headers, body, path_infno):
        calls.append((gw, headers.get("_api_name"), body, path_infno))
        return 200, b'{"infcode":0}'

    monkeypatch.setattr(dispatch, "handle", handle)
    return calls


@pytest.mark.parametrize(
    ("path", "infno"), [("/fsi/api/rsfComIfsService/callService", None), ("/fsi/api/2207", "2207")]
)
async def test_a_transaction_is_answered_without_the_app(handled, path, infno):
    app = App()
    assert await _request(Outermost(app), path, body=b'{"infno":"x"}') == (200, b'{"infcode":0}')
    assert handled == [("the gateway", "1101", b'{"infno":"x"}', infno)]
    assert app.seen == []


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
async def test_a_transaction_body_past_the_bound_is_refused_in_the_platforms_shape(handled, length):
    status, body = await _request(Outermost(App()), "/fsi/api/2207", body=b"x" * 101, length=length)
    assert status == 413 and b'"code":413' in body
    assert handled == []


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/readyz"), ("POST", "/fsi/api/a/b"), ("GET", "/fsi/api/2207"), ("POST", "/x")]
)
async def test_everything_else_goes_to_the_app(handled, method, path):
    app = App()
    assert (await _request(Outermost(app), path, method=method))[0] == 204
    assert app.seen == [path] and handled == []


def test_the_served_app_is_the_outermost_gate_in_front_of_fastapi():
    assert isinstance(served, Outermost)
    assert served.title == "yibao gateway" and "/fsi/api/{infno}" in served.openapi()["paths"]
