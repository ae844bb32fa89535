"""The four services in-process for the OpenAPI fuzzer, in a database of their own.

The fuzzer writes whatever it generates (institutions, prepayments, clearings of every institution, catalogue
entries …): in the suite's shared schemas that would change what other tests count. So the fuzz apps live in a
database of their own on the session's PostgreSQL, with relay and consumers off (nothing reaches the shared
broker, nothing of other tests reaches them); the events a service needs from another (institutions, settlements)
are carried by hand from one outbox to the others' handlers, through the inbox, as the broker would. Settlement
calls this eligibility, and reporting this settlement, in-process.
"""

from __future__ import annotations

import importlib
import uuid
from contextlib import AsyncExitStack
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from fuzz_support import ANSWERS, SENT, SERVICES, Fuzzed, Seeds

from services.eligibility.certno import make_certno
from shared.db import Sql
from shared.events.consumer import Consumer
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import ADMIN_KEY, HIS_KEYS, make_settings, running_app


async def _scratch_database(url: str) -> str:
    name = f"yibao_fuzz_{uuid.uuid4().hex[:8]}"
    server, _, _ = url.rpartition("/")
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server}/{name}"


async def _carry_events(apps: dict[str, Any], broker) -> None:
    """Every event in the outboxes, applied by the services that consume it (through their inboxes)."""
    consumers = {}
    for service in ("settlement", "prepayment", "reporting"):
        app = apps[service]
        spec = importlib.import_module(f"services.{service}.app").spec
        consumers[service] = Consumer(
            db=app.state.db, bootstrap=broker.bootstrap, group_id=f"fuzz-{service}", handlers=spec.handlers(app)
        )
    for producer in ("eligibility", "settlement", "prepayment"):
        async with apps[producer].state.db.connect() as unit:
            rows = await unit.fetch(Sql("SELECT topic, envelope::text AS raw FROM outbox ORDER BY id"))
        for row in rows:
            for consumer in consumers.values():
                await consumer.apply(row["topic"], row["raw"].encode())


async def _seed(clients: dict[str, httpx.AsyncClient], apps: dict[str, Any], broker) -> Seeds:
    """An institution of each kind, a person, a visit with lines, a settlement, a prescription, a prepayment."""
    seeds = Seeds()
    admin = {"X-Api-Key": ADMIN_KEY}
    eligibility, settlement = clients["eligibility"], clients["settlement"]
    for code, kind, level in (("H1", "hospital", 2), ("P1", "pharmacy", None)):
        body = {"fixmedins_code": code, "fixmedins_name": f"模糊{code}", "kind": kind, "level": level}
        answer = await eligibility.post(
            "/v1/institutions", json={**body, "affiliation": "city", "admdvs": "621000"}, headers=admin
        )
        assert answer.status_code == 201, answer.text
        seeds.add("code", code)
    certno = make_certno(region="621002", brdy=date(1970, 5, 5), serial=11)
    person = await eligibility.post(
        "/v1/persons",
        json={"certno": certno, "psn_name": "模糊", "insutype": "310", "insuplc_admdvs": "621000", "emp_no": "EF1"},
        headers=admin,
    )
    assert person.status_code == 201, person.text
    psn_no = person.json()["psn_no"]
    seeds.add("psn_no", psn_no)
    seeds.add("certno", certno)
    seeds.add("emp_no", "EF1")
    await _carry_events(apps, broker)
    his = {"X-Api-Key": HIS_KEYS["H1"]}
    visit = await settlement.post(
        "/v1/visits",
        json={
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": certno,
            "fixmedins_code": "H1",
            "med_type": "11",
            "begntime": "2024-03-01T09:00:00+08:00",
        },
        headers=his,
    )
    assert visit.status_code == 201, visit.text
    mdtrt_id = visit.json()["mdtrt_id"]
    seeds.add("mdtrt_id", mdtrt_id)
    line = {"feedetl_sn": "F1", "med_list_codg": "TA1", "med_list_name": "药", "item_class": "A"}
    fees = await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees", json={"items": [{**line, "pric": "100.00", "cnt": "2"}]}, headers=his
    )
    assert fees.status_code == 201, fees.text
    settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", json={}, headers=his)
    assert settled.status_code == 201, settled.text
    seeds.add("setl_id", settled.json()["setl_id"])
    open_visit = await settlement.post("/v1/visits", json=_visit(psn_no, certno), headers=his)  # an admission
    assert open_visit.status_code == 201, open_visit.text
    seeds.add("mdtrt_id", open_visit.json()["mdtrt_id"])
    rx = await settlement.post(
        "/v1/prescriptions",
        json={
            "rx_no": "RXFUZZ1",
            "psn_no": psn_no,
            "fixmedins_code": "H1",
            "issued_at": "2024-03-01T09:00:00+08:00",
            "items": [{"med_list_codg": "TA-DRUG", "med_list_name": "药", "cnt": "1", "days_supply": 7}],
        },
        headers=his,
    )
    assert rx.status_code == 201, rx.text
    seeds.add("rx_no", "RXFUZZ1")
    prepaid = await clients["prepayment"].post(
        "/v1/prepayments",
        json={"fixmedins_code": "H1", "kind": "top_up", "amount": "1000.00", "disbursed_on": "2024-01-05"},
        headers=admin,
    )
    assert prepaid.status_code == 201, prepaid.text
    seeds.add("prepayment_id", prepaid.json()["prepayment_id"])
    await _carry_events(apps, broker)
    return seeds


def _visit(psn_no: str, certno: str) -> dict:
    return {
        "psn_no": psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": certno,
        "fixmedins_code": "H1",
        "med_type": "21",
        "begntime": "2024-03-02T09:00:00+08:00",
    }


@pytest.fixture(scope="session")
async def fuzzed(pg, broker):
    """The four apps on a scratch database, wired to each other in-process, with seed data."""
    url = await _scratch_database(pg.url)
    async with AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        apps: dict[str, Any] = {}
        for service in SERVICES:
            module = importlib.import_module(f"services.{service}.app")
            settings = make_settings(
                service, database_url=url, bootstrap=broker.bootstrap, CONSUMERS_ENABLED=False, RELAY_ENABLED=False
            )
            app = create_app(module.spec, settings)
            await stack.enter_async_context(running_app(app))
            # a 500 comes back as the answer it is (counted, and shown with its request), not as the app's exception
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            clients[service] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30)
            )
            apps[service] = app
        apps["settlement"].state.eligibility = InternalClient(
            "http://eligibility.fuzz", timeout=2.0, transport=httpx.ASGITransport(app=apps["eligibility"])
        )
        apps["reporting"].state.settlement = InternalClient(
            "http://settlement.fuzz", timeout=2.0, transport=httpx.ASGITransport(app=apps["settlement"])
        )
        yield Fuzzed(clients=clients, apps=apps, seeds=await _seed(clients, apps, broker))


def pytest_terminal_summary(terminalreporter) -> None:
    if not SENT:
        return
    terminalreporter.section("OpenAPI fuzz (schemathesis)")
    for service in SERVICES:
        answers = ANSWERS[service]
        fives = sum(n for status, n in answers.items() if status >= 500 and status != 503)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(answers.items()))
        terminalreporter.write_line(
            f"{service:12} {SENT[service]:6} requests, {fives} 5xx, {answers[503]} 503  ({statuses})"
        )
