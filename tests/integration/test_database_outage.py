"""PostgreSQL killed under the services and back: requests meanwhile get 503 (never 500), and every service is
ready again within 5 s of the database's return (issue 17)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from deploy.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.testing import ADMIN_KEY, ServiceProcess, service_env

SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
ADMIN = {"X-Api-Key": ADMIN_KEY}
REQUESTS = {  # one read and one write per service, each reaching the database
    "eligibility": [
        ("GET", "/v1/institutions/H1", None),
        (
            "POST",
            "/v1/institutions",
            {
                "fixmedins_code": "HOUT1",
                "fixmedins_name": "断库医院",
                "kind": "hospital",
                "level": 2,
                "affiliation": "city",
                "admdvs": "621000",
            },
        ),
    ],
    "settlement": [
        ("GET", "/v1/settlements?setl_date=2024-03-01", None),
        ("PUT", "/v1/catalog/TOUT1", {"med_list_name": "药", "item_class": "A"}),
    ],
    "prepayment": [
        ("GET", "/v1/ledger/trial-balance", None),
        (
            "POST",
            "/v1/prepayments",
            {"fixmedins_code": "HOUT1", "kind": "top_up", "amount": "1.00", "disbursed_on": "2024-01-05"},
        ),
    ],
    "reporting": [
        ("GET", "/v1/reports/daily?date=2024-03-01", None),
        ("GET", "/v1/reports/two-diseases?month=2024-03", None),
    ],
}


@pytest.fixture
async def stack(workdir):
    pg = EmbeddedPostgres(workdir / "outage-pg", free_port(), fast=True)
    broker = EmbeddedBroker(free_port(), log_dir=workdir)
    pg.start()
    broker.start()
    processes = {
        name: ServiceProcess(name, free_port(), service_env(database_url=pg.url, bootstrap=broker.bootstrap), workdir)
        for name in SERVICES
    }
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            await process.wait_ready(timeout=90)
        yield pg, processes
    finally:
        for process in processes.values():
            process.stop()
        broker.stop()
        pg.stop()


async def _statuses(client: httpx.AsyncClient, processes) -> dict[str, list[int]]:
    found = {}
    for name, process in processes.items():
        found[name] = []
        for method, path, body in REQUESTS[name]:
            try:
                response = await client.request(method, process.url + path, json=body, headers=ADMIN, timeout=15)
                found[name].append(response.status_code)
                if response.status_code >= 500:
                    assert response.headers["content-type"] == "application/problem+json", response.text
            except httpx.TransportError as exc:
                found[name].append(type(exc).__name__)
    return found


async def test_database_away_is_503_and_every_service_is_ready_soon_after_it_returns(stack):
    pg, processes = stack
    async with httpx.AsyncClient() as client:
        pg.proc.kill()  # SIGKILL: connections die mid-stream
        pg.proc.wait()
        for _ in range(3):  # while it is away, with the pools' connections broken and then refused
            away = await _statuses(client, processes)
            assert {s for statuses in away.values() for s in statuses} == {503}, away
            await asyncio.sleep(1)
        pg.start()
        back = time.monotonic()
        ready: dict[str, float] = {}
        while len(ready) < len(processes) and time.monotonic() - back < 30:
            for name, process in processes.items():
                if name not in ready and (await client.get(process.url + "/readyz")).status_code == 200:
                    ready[name] = time.monotonic() - back
            await asyncio.sleep(0.1)
        print(f"ready again after the database's return: { {k: round(v, 2) for k, v in ready.items()} }")
        assert set(ready) == set(processes) and max(ready.values()) <= 5.0, ready
        after = await _statuses(client, processes)
        assert all(s < 500 for statuses in after.values() for s in statuses), after
