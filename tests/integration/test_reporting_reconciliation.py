"""After a burst of 1,000 settlements and 50 reversals through the real stack (eligibility → settlement → broker →
reporting), reconciliation shows zero differences and the 附件2 totals equal the sums of the settlements.

Own database and own broker: the settlement service's totals and reporting's read models then hold exactly
this test's settlements. Settlement's clock is fixed to one business day.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from contextlib import AsyncExitStack
from datetime import date, datetime
from decimal import Decimal

import httpx

from shared.events.envelope import BUSINESS_TZ
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY, make_settings, running_app
from tests.integration.conftest import create_database, eventually

ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}
DAY = date(2024, 3, 5)
SETTLEMENTS = 1000
REVERSALS = 50
WORKERS = 16
INSTITUTIONS = {
    "H1": {"level": 3, "affiliation": "city", "admdvs": "621000"},
    "H2": {"level": 2, "affiliation": "county", "admdvs": "621022"},
    "H3": {"level": 1, "affiliation": "county", "admdvs": "621027"},
    "H4": {"level": 3, "affiliation": "city", "admdvs": "610100"},
}
PLACES = ["621000", "621000", "621022", "620100", "610100"]  # local ×3, another city in the province, another province
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def certno(region: str, serial: int) -> str:
    """A valid resident ID (GB 11643)."""
    first17 = f"{region}{1950 + serial % 50}{1 + serial % 12:02d}{1 + serial % 28:02d}{serial % 1000:03d}"
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def _app(service: str, url: str, bootstrap: str):
    module = importlib.import_module(f"services.{service}.app")
    return running_app(create_app(module.spec, make_settings(service, database_url=url, bootstrap=bootstrap)))


async def _ok(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in (codes or (200, 201)), (
        f"{response.request.url}: {response.status_code} {response.text[:500]}"
    )
    return response.json()


async def _person(eligibility, serial: int, rng: random.Random) -> dict:
    place, insutype = rng.choice(PLACES), rng.choice(["310", "390"])
    body = {"certno": certno(place, serial), "psn_name": "测试", "insutype": insutype, "insuplc_admdvs": place}
    if insutype == "310":
        body["psn_type"] = "in_service"
    created = await _ok(await eligibility.post("/v1/persons", json=body, headers=ADMIN), 201)
    return {"psn_no": created["psn_no"], "certno": body["certno"], "place": place}


async def _settle(settlement, person: dict, n: int, rng: random.Random) -> dict:
    # outsiders are settled under the treating area's policy: the reference city's hospitals only
    code = rng.choice(list(INSTITUTIONS) if person["place"].startswith("6210") else ["H1", "H2", "H3"])
    his = {"X-Api-Key": HIS_KEYS[code]}
    covid = rng.random() < 0.3
    inpatient = covid and rng.random() < 0.5
    visit = {
        "psn_no": person["psn_no"],
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person["certno"],
        "fixmedins_code": code,
        "med_type": "21" if inpatient else "11",
        "begntime": f"{DAY.isoformat()}T08:00:00+08:00",
        "diagnoses": [rng.choice(["U07.1", "U07.2"])] if covid else ["J06.9"],
    }
    mdtrt_id = (await _ok(await settlement.post("/v1/visits", json=visit, headers=his), 201))["mdtrt_id"]
    items = [
        {
            "feedetl_sn": f"{n}-{i}",
            "med_list_codg": f"T{rng.choice('ABC')}{i:03d}",
            "med_list_name": "测试项目",
            "item_class": rng.choice("AABC"),
            "pric": f"{rng.randrange(100, 90000) / 100:.2f}",
            "cnt": str(rng.randrange(1, 4)),
            "fee_ocur_time": f"{DAY.isoformat()}T09:00:00+08:00",
        }
        for i in range(rng.randrange(1, 5))
    ]
    await _ok(await settlement.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": items}, headers=his), 201)
    if inpatient:
        await _ok(
            await settlement.post(
                f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": f"{DAY.isoformat()}T12:00:00+08:00"}, headers=his
            )
        )
    return await _ok(await settlement.post(f"/v1/visits/{mdtrt_id}/settle", json={}, headers=his), 201)


async def test_burst_of_settlements_reconciles_to_the_fen(pg, own_broker):
    url = await create_database(pg, "reconcile")
    bootstrap = own_broker.bootstrap
    rng = random.Random(20200204)
    async with AsyncExitStack() as stack:
        eligibility = await stack.enter_async_context(_app("eligibility", url, bootstrap))
        settlement = await stack.enter_async_context(_app("settlement", url, bootstrap))
        reporting = await stack.enter_async_context(_app("reporting", url, bootstrap))
        settlement_app = settlement._transport.app
        settlement_app.state.eligibility = InternalClient(
            "http://eligibility", timeout=10, transport=httpx.ASGITransport(app=eligibility._transport.app)
        )
        settlement_app.state.clock = lambda: datetime(DAY.year, DAY.month, DAY.day, 16, 30, tzinfo=BUSINESS_TZ)
        reporting._transport.app.state.settlement = settlement

        for code, spec in INSTITUTIONS.items():
            await _ok(
                await eligibility.post(
                    "/v1/institutions",
                    headers=ADMIN,
                    json={"fixmedins_code": code, "fixmedins_name": f"对账{code}", "kind": "hospital", **spec},
                ),
                201,
            )

        async def institutions_known():
            body = await settlement.get(
                "/v1/settlements", params={"setl_date": DAY.isoformat()}, headers={"X-Api-Key": HIS_KEYS["H4"]}
            )
            probe = await settlement.post("/v1/visits", headers={"X-Api-Key": HIS_KEYS["H4"]}, json={})
            return body.status_code == 200 and probe.status_code == 422

        await eventually(institutions_known, timeout=30, what="institutions at the settlement service")
        persons = [await _person(eligibility, serial, rng) for serial in range(SETTLEMENTS // 5)]

        results: list[dict] = []

        async def worker(index: int) -> None:
            mine = random.Random(index)
            for number, person in enumerate(persons[index::WORKERS]):
                for visit in range(5):
                    results.append(await _settle(settlement, person, index * 10_000 + number * 10 + visit, mine))

        await asyncio.gather(*(worker(i) for i in range(WORKERS)))
        assert len(results) == SETTLEMENTS
        reversed_ids = set()
        for result in rng.sample(results, REVERSALS):
            his = {"X-Api-Key": HIS_KEYS[result["fixmedins_code"]]}
            await _ok(await settlement.post(f"/v1/settlements/{result['setl_id']}/reverse", headers=his))
            reversed_ids.add(result["setl_id"])

        async def reconciled():
            response = await reporting.get("/v1/reconciliation", params={"date": DAY.isoformat()}, headers=OPS)
            body = await _ok(response)
            return body if not body["differences"] else None

        body = await eventually(reconciled, timeout=120, interval=0.5, what="reconciliation without differences")
        assert body["settlement"] == body["reporting"]
        assert body["reporting"]["count"] == SETTLEMENTS - REVERSALS
        kept = [r for r in results if r["setl_id"] not in reversed_ids]
        assert body["reporting"]["medfee_sumamt"] == f"{sum(Decimal(r['medfee_sumamt']) for r in kept):.2f}"

        covid = [r for r in kept if r["covid_status"]]
        assert len(covid) > 100
        report = await _ok(await reporting.get("/v1/reports/daily", params={"date": DAY.isoformat()}, headers=OPS))
        total = report["total"]
        assert total["persons"] == len(covid)
        for field in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay"):
            assert total[field] == f"{sum(Decimal(r[field]) for r in covid):.2f}", field
        burden = sum(
            Decimal(r["medfee_sumamt"])
            - Decimal(r["hifp_pay"])
            - Decimal(r["hifmi_pay"])
            - Decimal(r["maf_pay"])
            - Decimal(r["tilt_aid_pay"])
            for r in covid
        )
        assert total["psn_burden"] == f"{burden:.2f}"
        for origin in ("local", "province", "other_province"):
            assert sum(r["persons"] for r in report["rows"] if r["origin"] == origin) > 0
