"""A service process as `yibao up` serves it (shared.server): malformed HTTP is answered in problem+json."""

from __future__ import annotations

import asyncio
import json

import pytest

from deploy.embedded import free_port
from shared.testing import ServiceProcess, service_env
from tests.integration.conftest import create_database


@pytest.fixture(scope="module")
async def served(pg, broker, workdir):
    url = await create_database(pg, "served")
    process = ServiceProcess(
        "eligibility", free_port(), service_env(database_url=url, bootstrap=broker.bootstrap), workdir
    )
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/institutions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Api-Key: a\x01b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"NOT-HTTP\r\n\r\n",
    ],
    ids=["length-not-a-number", "control-character-in-a-header", "two-lengths", "not-http"],
)
async def test_malformed_requests_get_problem_json(served, request_bytes):
    status, headers, body = await _raw(served.port, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "MALFORMED_REQUEST" and problem["status"] == 400


async def test_a_well_formed_request_is_served_as_before(served):
    status, headers, body = await _raw(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"
