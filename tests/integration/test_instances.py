"""Two instances of every service on one PostgreSQL and one broker (issue 14): settlements spread over both
settlement instances, one settlement instance and one prepayment (consumer) instance killed with SIGKILL mid-stream;
afterwards every settlement and reversal is posted once in prepayment and reporting, the reconciliation is clean and the
caps held (one person settled through both instances at once)."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import date
from decimal import Decimal

import asyncpg
import httpx
import pytest

from deploy.embedded import free_port
from services.eligibility.certno import make_certno
from shared.events.envelope import now
from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY, ServiceProcess, service_env
from tests.integration.conftest import create_database, eventually

SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}
HIS = {"X-Api-Key": HIS_KEYS["H1"]}
FLOWS = 160
CAPPED_VISITS = 24  # one resident, 100.00 each at a level-1 hospital: deductible 50, 50 %, outpatient cap 400.00


@pytest.fixture
async def two_of_each(pg, own_broker, workdir):
    url = await create_database(pg, "instances")
    ports = {(name, i): free_port() for name in SERVICES for i in (0, 1)}
    urls = {key: f"http://127.0.0.1:{port}" for key, port in ports.items()}
    common = {f"{name.upper()}_URL": urls[(name, 0)] for name in SERVICES}
    processes = {
        key: ServiceProcess(
            key[0],
            port,
            service_env(database_url=url, bootstrap=own_broker.bootstrap, **common),
            workdir / f"{key[0]}-{key[1]}",
        )
        for key, port in ports.items()
    }
    for process in processes.values():
        process.log_file.parent.mkdir(exist_ok=True)
        process.start()
    try:
        for process in processes.values():
            await process.wait_ready(timeout=120)
        yield url, processes
    finally:
        for process in processes.values():
            process.stop()


async def _ok(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in (codes or (200, 201)), f"{response.request.url}: {response.text[:300]}"
    return response.json()


async def test_two_instances_of_everything_lose_nothing_when_one_of_each_dies(two_of_each):
    url, processes = two_of_each
    day = now().date()
    async with httpx.AsyncClient(timeout=30) as client:
        elig = [processes[("eligibility", i)].url for i in (0, 1)]
        await _ok(
            await client.post(
                f"{elig[0]}/v1/institutions",
                headers=ADMIN,
                json={
                    "fixmedins_code": "H1",
                    "fixmedins_name": "两实例医院",
                    "kind": "hospital",
                    "level": 1,
                    "affiliation": "county",
                    "admdvs": "621022",
                },
            )
        )
        persons = []
        for n in range(12):
            certno = make_certno(region="621022", brdy=date(1960 + n, 1, 2), serial=2 * n + 1)
            body = {"certno": certno, "psn_name": "两实", "insutype": "390", "insuplc_admdvs": "621022"}
            persons.append(
                (await _ok(await client.post(f"{elig[n % 2]}/v1/persons", headers=ADMIN, json=body)))
                | {"certno": certno}
            )
        settle_urls = itertools.cycle([processes[("settlement", i)].url for i in (0, 1)])

        async def visit_at_both(person) -> bool:  # both settlement instances know H1 (their consumers share it)
            for base in (processes[("settlement", 0)].url, processes[("settlement", 1)].url):
                answer = await client.post(f"{base}/v1/visits", headers=HIS, json=_visit(person))
                if answer.status_code != 201:
                    return False
            return True

        await eventually(lambda: visit_at_both(persons[0]), timeout=60, what="H1 known at both instances")
        seen: dict[str, str] = {}  # setl_id → settled | reversed
        capped = persons[-1]

        async def flow(n: int, person: dict) -> None:
            last, body = None, _visit(person)  # the same request each time: retried under its key
            for _ in range(60):  # an HIS retries on 503 and lost connections, with the same Idempotency-Key
                base = next(settle_urls)
                try:
                    visit = await client.post(
                        f"{base}/v1/visits", headers=HIS | {"Idempotency-Key": f"visit-{n}"}, json=body
                    )
                    last = visit
                    if visit.status_code == 201:
                        mdtrt_id = visit.json()["mdtrt_id"]
                        fees = await client.post(
                            f"{base}/v1/visits/{mdtrt_id}/fees",
                            headers=HIS,
                            json={
                                "items": [
                                    {
                                        "feedetl_sn": "1",
                                        "med_list_codg": "TA1",
                                        "med_list_name": "药",
                                        "item_class": "A",
                                        "pric": "100.00",
                                        "cnt": "1",
                                        "fee_ocur_time": f"{day}T09:10:00+08:00",
                                    }
                                ]
                            },
                        )
                        settled = await client.post(
                            f"{base}/v1/visits/{mdtrt_id}/settle",
                            headers=HIS | {"Idempotency-Key": f"settle-{n}"},
                            json={},
                        )
                        last = settled
                        if fees.status_code in (200, 201) and settled.status_code == 201:
                            seen[settled.json()["setl_id"]] = "settled"
                            if n % 7 == 0 and n < FLOWS:
                                await _reverse(client, settle_urls, settled.json()["setl_id"], seen, n)
                            return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            raise AssertionError(f"flow {n} never settled: {last.status_code} {last.text[:300]}")

        tasks = [asyncio.create_task(flow(n, random.choice(persons[:-1]))) for n in range(FLOWS)]
        tasks += [asyncio.create_task(flow(FLOWS + n, capped)) for n in range(CAPPED_VISITS)]
        await asyncio.sleep(3)
        processes[("settlement", 1)].kill()  # mid-stream: SIGKILL, no clean shutdown
        await asyncio.sleep(2)
        processes[("prepayment", 0)].kill()
        await asyncio.gather(*tasks)

        settled = {s for s, state in seen.items() if state in ("settled", "reversed")}
        reversed_ = {s for s, state in seen.items() if state == "reversed"}
        await eventually(lambda: _books_hold(url, settled, reversed_), timeout=120, what="every settlement posted")
        ops_reporting = processes[("reporting", 1)].url

        async def reconciled():
            answer = await client.get(
                f"{ops_reporting}/v1/reconciliation", params={"date": day.isoformat()}, headers=OPS
            )
            body = answer.json()
            return body if answer.status_code == 200 and not body["differences"] else None

        body = await eventually(reconciled, timeout=120, what="the reconciliation clean")
        assert body["settlement"]["count"] == len(settled) - len(reversed_)
        funds = await _capped_funds(url, capped["psn_no"])
        assert funds == Decimal("400.00"), funds  # the outpatient cap, though both instances settled the person


async def _reverse(client, settle_urls, setl_id: str, seen: dict, n: int) -> None:
    for _ in range(60):
        try:
            answer = await client.post(
                f"{next(settle_urls)}/v1/settlements/{setl_id}/reverse",
                headers=HIS | {"Idempotency-Key": f"reverse-{n}"},
            )
            if answer.status_code == 200:
                seen[setl_id] = "reversed"
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"{setl_id} never reversed")


def _visit(person: dict) -> dict:
    return {
        "psn_no": person["psn_no"],
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person["certno"],
        "fixmedins_code": "H1",
        "med_type": "11",
        "begntime": now().isoformat(),
        "diagnoses": [],
    }


async def _books_hold(url: str, settled: set[str], reversed_: set[str]) -> bool:
    """prepayment and reporting hold each settlement (and reversal) exactly once."""
    conn = await asyncpg.connect(url)
    try:
        pre = await conn.fetch(
            "SELECT setl_id, reversed_on FROM prepayment.settlements WHERE setl_id = ANY($1)", list(settled)
        )
        moves = await conn.fetch(
            "SELECT setl_id, count(*) AS n FROM reporting.settlement_moves WHERE setl_id = ANY($1) GROUP BY setl_id",
            list(settled),
        )
    finally:
        await conn.close()
    prepaid_ok = {r["setl_id"] for r in pre} == settled and {
        r["setl_id"] for r in pre if r["reversed_on"] is not None
    } == reversed_
    moved = {r["setl_id"]: r["n"] for r in moves}
    reported_ok = all(moved.get(s) == (2 if s in reversed_ else 1) for s in settled)
    return prepaid_ok and reported_ok


async def _capped_funds(url: str, psn_no: str) -> Decimal:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(fund_pay_sumamt), 0) FROM settlement.settlements WHERE psn_no = $1 AND status = "
            "'settled'",
            psn_no,
        )
    finally:
        await conn.close()
    return Decimal(value)
