"""How a service process is served: uvicorn, with an HTTP protocol that answers even malformed requests in
problem+json (`Content-Length: abc`, control characters in a header: uvicorn's own answer is a plain-text 400).

`yibao up`, the tests' service processes, the benchmarks and the container image start services with
`uvicorn_command` (the image with the same flags)."""

from __future__ import annotations

import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request its parser refuses is answered 400 in problem+json."""

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
