"""shared.server's HTTP protocol writes a response's head with its body: one write a response (uvicorn's own writes
them apart, two system calls and two wake-ups of the client for every answer)."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.lifespan.off import LifespanOff
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shared.server import ProblemHttpProtocol


class Transport:
    """What the protocol writes, a write at a time."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_write_buffer_limits(self, high=None, low=None) -> None: ...


async def plain(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"7")]})
    await send({"type": "http.response.body", "body": b'{"a":1}'})


async def streamed(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    await send({"type": "http.response.body", "body": b"two"})


async def _serve(protocol_class, app, request: bytes, responses: int = 1) -> Transport:
    config = Config(app=app, lifespan="off", log_level="warning")
    protocol = protocol_class(
        config=config, server_state=ServerState(), app_state=LifespanOff(config).state, _loop=asyncio.get_running_loop()
    )
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(200):  # the app runs as a task of the loop
        await asyncio.sleep(0)
        answered = sum(w.count(b"HTTP/1.1 ") for w in transport.writes)
        if answered >= responses and protocol.cycle.response_complete:
            break
    return transport


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_a_response_is_one_write_with_its_head():
    transport = await _serve(ProblemHttpProtocol, plain, GET)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 7" in head
    assert body == b'{"a":1}'


async def test_uvicorn_alone_writes_the_head_apart():
    """What the protocol changes (this fails the day uvicorn writes them together: then ours is not needed)."""
    transport = await _serve(HttpToolsProtocol, plain, GET)
    assert len(transport.writes) == 2


async def test_a_streamed_response_sends_its_head_with_the_first_chunk():
    transport = await _serve(ProblemHttpProtocol, streamed, GET)
    assert len(transport.writes) == 2
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK") and transport.writes[0].endswith(b"3\r\none\r\n")
    assert transport.writes[1] == b"3\r\ntwo\r\n0\r\n\r\n"


async def test_keep_alive_requests_one_after_another_each_one_write():
    transport = await _serve(ProblemHttpProtocol, plain, GET + GET, responses=2)
    assert [w.count(b"HTTP/1.1 200 OK") for w in transport.writes] == [1, 1]
    assert all(w.endswith(b'{"a":1}') for w in transport.writes)
