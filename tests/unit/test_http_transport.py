"""shared.http.KeepAliveTransport against a scripted server: reuse, chunked bodies, close, stale
connections, timeouts and refusals, each mapped to what httpx's own transport would answer; and
InternalClient, the lean GET of the settlement hot path, over it and over an ASGI app."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.http import InternalClient, KeepAliveTransport


def internal_client(base_url: str, *, timeout: float) -> httpx.AsyncClient:
    """The transport under httpx's own client, for the methods InternalClient does not have (POST)."""
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout), transport=KeepAliveTransport())


class Server:
    """Answers each request with the next scripted reply; counts connections and requests."""

    def __init__(self, replies: list[bytes | None], *, close_after_each: bool = False) -> None:
        self.replies = list(replies)
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                reply = self.replies.pop(0)
                if reply is None:  # never answer
                    await asyncio.sleep(30)
                writer.write(reply)
                await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: dict, *extra: str) -> bytes:
    data = json.dumps(body).encode()
    head = ["HTTP/1.1 200 OK", "content-type: application/json", f"content-length: {len(data)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def test_keeps_the_connection_alive_and_sends_query_and_headers():
    server = Server([ok({"n": 1}), ok({"n": 2})])
    async with server as url, internal_client(url, timeout=2) as client:
        first = await client.get("/v1/persons/P1/snapshot", params={"on": "2024-06-01"}, headers={"X-Api-Key": "k"})
        second = await client.get("/v1/x")
    assert (first.status_code, first.json(), second.json()) == (200, {"n": 1}, {"n": 2})
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/persons/P1/snapshot?on=2024-06-01 HTTP/1.1\r\n")
    assert b"\r\nX-Api-Key: k\r\n" in server.requests[0] or b"\r\nx-api-key: k\r\n" in server.requests[0]


async def test_posts_a_body_with_its_length():
    server = Server([ok({"created": True})])
    async with server as url, internal_client(url, timeout=2) as client:
        answer = await client.post("/v1/things", json={"a": "1.00"})
    assert answer.json() == {"created": True}
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert json.loads(body) == {"a": "1.00"} and b"content-length: " + str(len(body)).encode() in head.lower()


async def test_decodes_a_chunked_body():
    reply = b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n5\r\n: 12}\r\n0\r\n\r\n'
    server = Server([reply, ok({"b": 2})])
    async with server as url, internal_client(url, timeout=2) as client:
        assert (await client.get("/")).json() == {"a": 12}
        assert (await client.get("/")).json() == {"b": 2}
    assert server.connections == 1


async def test_connection_close_is_not_reused():
    server = Server([ok({"n": 1}, "connection: close"), ok({"n": 2})], close_after_each=True)
    async with server as url, internal_client(url, timeout=2) as client:
        assert (await client.get("/")).json() == {"n": 1}
        assert (await client.get("/")).json() == {"n": 2}
    assert server.connections == 2


async def test_a_get_on_a_connection_the_server_closed_is_retried_once():
    server = Server([ok({"n": 1}), ok({"n": 2})], close_after_each=True)  # closes without saying so
    async with server as url, internal_client(url, timeout=2) as client:
        assert (await client.get("/")).json() == {"n": 1}
        await asyncio.sleep(0.05)
        assert (await client.get("/")).json() == {"n": 2}
    assert server.connections == 2


async def test_no_answer_in_time_is_a_read_timeout_and_the_connection_is_dropped():
    server = Server([None, ok({"n": 2})])
    async with server as url, internal_client(url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        assert (await client.get("/")).json() == {"n": 2}
    assert server.connections == 2


async def test_nobody_listening_is_a_connect_error():
    async with internal_client("http://127.0.0.1:9", timeout=1) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/")


async def test_a_cut_answer_is_a_read_error():
    server = Server([b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"a"'], close_after_each=True)
    async with server as url, internal_client(url, timeout=2) as client:
        with pytest.raises(httpx.ReadError):
            await client.post("/", json={})


async def test_internal_client_sends_the_path_quoted_with_query_and_headers_on_one_connection():
    server = Server([ok({"n": 1}), ok({"n": 2})])
    async with server as url, InternalClient(url + "/", timeout=2) as client:
        first = await client.get(
            "/v1/persons/P 1/snapshot",
            params={"on": "2024-06-01", "mdtrt_cert_no": "a&b=c"},
            headers={"X-Api-Key": "k"},
        )
        second = await client.get("/v1/x")
    assert (first.status_code, first.json(), second.json()) == (200, {"n": 1}, {"n": 2})
    assert server.connections == 1
    assert server.requests[0].startswith(
        b"GET /v1/persons/P%201/snapshot?on=2024-06-01&mdtrt_cert_no=a%26b%3Dc HTTP/1.1\r\n"
    )
    assert b"x-api-key: k\r\n" in server.requests[0].lower()
    assert server.requests[1].startswith(b"GET /v1/x HTTP/1.1\r\n")


async def test_internal_client_maps_failures_to_httpx_errors():
    server = Server([None])
    async with server as url, InternalClient(url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
    async with InternalClient("http://127.0.0.1:9", timeout=1) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/")


async def test_internal_client_bounds_the_whole_call_on_any_transport():
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(5)
        return {}

    @app.get("/echo")
    async def echo(request: Request) -> dict:
        return {"query": dict(request.query_params), "key": request.headers.get("x-api-key")}

    async with InternalClient("http://svc.test", timeout=0.2, transport=httpx.ASGITransport(app=app)) as client:
        answer = await client.get("/echo", params={"on": "2024-06-01"}, headers={"X-Api-Key": "k"})
        assert answer.json() == {"query": {"on": "2024-06-01"}, "key": "k"}
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await client.get("/slow")
        assert asyncio.get_running_loop().time() - started < 0.2 + 0.5 + 0.3
