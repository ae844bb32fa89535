"""How a service process is served: uvicorn, with an HTTP protocol that answers even malformed requests in
problem+json (`Content-Length: abc`, control characters in a header: uvicorn's own answer is a plain-text 400),
and writes a response's head with its body (uvicorn writes them apart: two system calls and two segments, the
client woken twice for every answer; benchmarks/gateway.py counts the system calls).

`yibao up`, the tests' service processes, the benchmarks and the container image start services with
`uvicorn_command` (the image with the same flags)."""

from __future__ import annotations

import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from shared.events.envelope import dumpb

PROTOCOL = "shared.server:ProblemHttpProtocol"


def malformed_request_body(detail: str) -> bytes:
    """The problem+json of a request the HTTP parser refused."""
    return dumpb(
        {
            "type": "https://yibao.example/problems/malformed-request",
            "title": "Bad Request",
            "status": 400,
            "detail": detail,
            "code": "MALFORMED_REQUEST",
            "errors": [],
        }
    )


class _Held:
    """In place of the transport while uvicorn writes a response's head: the bytes kept."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)


class _Prefixed:
    """In place of the transport while uvicorn writes a response's first body bytes: the head goes with them."""

    __slots__ = ("transport", "head")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport = transport
        self.head = head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, b""
        self.transport.write(head + data if head else data)

    def __getattr__(self, name: str) -> Any:  # close(), is_closing() …
        return getattr(self.transport, name)


class _OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle; a response's head waits for its first body message and goes with it."""

    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        transport = self.transport
        if message["type"] == "http.response.start" and not self.response_started:
            held = self.transport = _Held()  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            if held.parts:
                self._head = b"".join(held.parts)
            return
        if self._head is not None:
            self.transport = _Prefixed(transport, self._head)  # type: ignore[assignment]
            self._head = None  # (a client gone meanwhile gets neither)
            try:
                await super().send(message)
            finally:
                self.transport = transport
            return
        await super().send(message)


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request its parser refuses is answered 400 in problem+json, and a response's
    head goes out with its body (_OneWriteCycle)."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before and type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _OneWriteCycle

    def send_400_response(self, msg: str) -> None:
        body = malformed_request_body(msg)
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def uvicorn_command(
    service: str, *, port: int, host: str = "127.0.0.1", workers: int = 1, log_level: str | None = None
) -> list[str]:
    """The command line that serves `services.<service>.app:app`."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"services.{service}.app:app",
        "--host",
        host,
        "--port",
        str(port),
        "--http",
        PROTOCOL,
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    if log_level is not None:
        command += ["--log-level", log_level]
    return command
