"""The launched stack for e2e tests: the four services as real uvicorn processes, session-scoped.

They run on the session's PostgreSQL server but in a database of their own, with a broker of their
own: the in-process services of tests/service use the same consumer-group names ("settlement", …),
and sharing a broker would split partitions between the two stacks (an event of one would be
consumed by the other).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from deploy.embedded import EmbeddedBroker, free_port
from shared.testing import ADMIN_KEY, ServiceProcess, service_env

SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
E2E_DATABASE = "yibao_e2e"


@dataclass(frozen=True)
class Stack:
    urls: dict[str, str]
    database_url: str

    def client(self, service: str, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=30, **kwargs)

    @staticmethod
    def make_certno(**kwargs) -> str:
        return make_certno(**kwargs)

    async def register_institutions(self, institutions: dict[str, dict]) -> None:
        """Through eligibility's API; returns when settlement's local copy has them all."""
        await register_institutions(self, institutions)


def make_certno(*, region: str = "621022", brdy: date | None = None, serial: int | None = None) -> str:
    """A valid resident ID number (GB 11643 checksum)."""
    brdy = brdy or date(1950, 1, 1) + timedelta(days=random.randrange(365 * 50))
    serial = random.randrange(1, 1000) if serial is None else serial
    body = f"{region}{brdy:%Y%m%d}{serial:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


async def _create_database(pg) -> str:
    server = pg.url.rsplit("/", 1)[0]
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", E2E_DATABASE):
            await conn.execute(f'CREATE DATABASE "{E2E_DATABASE}"')
    finally:
        await conn.close()
    return f"{server}/{E2E_DATABASE}"


@pytest.fixture(scope="session")
def e2e_broker(workdir):
    folder = workdir / "e2e"
    folder.mkdir(exist_ok=True)
    server = EmbeddedBroker(free_port(), log_dir=folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def stack(pg, e2e_broker, workdir):
    """eligibility, settlement, prepayment and reporting as processes; yields their base URLs."""
    database_url = await _create_database(pg)
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    extra = {f"{name.upper()}_URL": url for name, url in urls.items()}
    log_dir = Path(workdir) / "e2e"
    log_dir.mkdir(exist_ok=True)
    processes = [
        ServiceProcess(
            name, ports[name], service_env(database_url=database_url, bootstrap=e2e_broker.bootstrap, **extra), log_dir
        )
        for name in SERVICES
    ]
    try:
        for process in processes:
            process.start()
        await asyncio.gather(*(p.wait_ready(90) for p in processes))
        yield Stack(urls=urls, database_url=database_url)
    finally:
        for process in processes:
            process.stop()


async def wait_for_institutions(stack: Stack, codes: set[str], timeout: float = 30) -> None:
    """Until settlement's local copy (fed by institution-changed) holds every code."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        for _ in range(int(timeout / 0.1)):
            rows = await conn.fetch("SELECT fixmedins_code FROM settlement.institutions")
            if codes <= {r["fixmedins_code"] for r in rows}:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"institutions {codes} never reached the settlement service")


async def register_institutions(stack: Stack, institutions: dict[str, dict]) -> None:
    async with stack.client("eligibility", headers={"X-Api-Key": ADMIN_KEY}) as eligibility:
        for code, spec in institutions.items():
            response = await eligibility.post(
                "/v1/institutions",
                json={
                    "fixmedins_code": code,
                    "fixmedins_name": f"医院{code}",
                    "kind": spec.get("kind", "hospital"),
                    "level": spec.get("level"),
                    "affiliation": spec["affiliation"],
                    "admdvs": spec["admdvs"],
                },
            )
            assert response.status_code in (200, 201), response.text
    await wait_for_institutions(stack, set(institutions))
