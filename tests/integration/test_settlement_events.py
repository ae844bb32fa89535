"""Settlement with the real eligibility service (in-process, over httpx.ASGITransport) and the real broker:
the events it publishes carry exactly the payloads of docs/events.md that prepayment and reporting consume."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import services.eligibility.app as eligibility_module
import services.settlement.app as settlement_module
from services.settlement.engine import MONEY_FIELDS
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import ADMIN_KEY, HIS_KEYS, fetch, make_settings, running_app

ADMIN = {"X-Api-Key": ADMIN_KEY}
SETTLED_FIELDS = {
    "setl_id",
    "mdtrt_id",
    "psn_no",
    "insutype",
    "psn_type",
    "insuplc_admdvs",
    "origin",
    "fixmedins_code",
    "fixmedins_kind",
    "fixmedins_level",
    "fixmedins_affiliation",
    "fixmedins_admdvs",
    "med_type",
    "chronic_disease",
    "two_disease",
    "aid_category",
    "setl_time",
    "setl_date",
    "begndate",
    "enddate",
    "covid_status",
    "offsite",
    "declared",
    *MONEY_FIELDS,
}
INSTITUTIONS = {
    "H1": {"level": 3, "affiliation": "city", "admdvs": "621000"},
    "H2": {"level": 2, "affiliation": "county", "admdvs": "621022"},
}


def certno(region: str) -> str:
    brdy = date(1950, 1, 1) + timedelta(days=random.randrange(365 * 50))
    body = f"{region}{brdy:%Y%m%d}{random.randrange(1, 1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


@pytest.fixture(scope="module")
async def stack(pg, broker):
    """Eligibility and settlement in-process; settlement reaches eligibility through an ASGI transport."""
    elig_app = create_app(
        eligibility_module.spec, make_settings("eligibility", database_url=pg.url, bootstrap=broker.bootstrap)
    )
    setl_app = create_app(
        settlement_module.spec, make_settings("settlement", database_url=pg.url, bootstrap=broker.bootstrap)
    )
    async with running_app(elig_app) as eligibility, running_app(setl_app) as settlement:
        setl_app.state.eligibility = InternalClient(
            "http://eligibility.internal", timeout=2, transport=httpx.ASGITransport(app=elig_app)
        )
        for code, spec in INSTITUTIONS.items():
            response = await eligibility.post(
                "/v1/institutions",
                headers=ADMIN,
                json={"fixmedins_code": code, "fixmedins_name": f"测试{code}", "kind": "hospital", **spec},
            )
            if response.status_code == 409:  # registered by another test of this session: same terms needed
                existing = (await eligibility.get(f"/v1/institutions/{code}", headers=ADMIN)).json()
                assert {k: existing[k] for k in spec} == spec and not existing["suspended"], existing
            else:
                assert response.status_code in (200, 201), response.text
        for _ in range(300):
            known = {r[0] for r in await fetch(setl_app, "SELECT fixmedins_code FROM settlement.institutions")}
            if set(INSTITUTIONS) <= known:
                break
            await asyncio.sleep(0.05)
        yield eligibility, settlement
        await setl_app.state.eligibility.aclose()


async def _person(eligibility, **extra) -> tuple[str, str]:
    number = certno("621000")
    created = await eligibility.post(
        "/v1/persons", headers=ADMIN, json={"certno": number, "psn_name": "集成", "insuplc_admdvs": "621000", **extra}
    )
    assert created.status_code == 201, created.text
    return created.json()["psn_no"], number


async def _events(broker, psn_no: str, topics: tuple[str, ...], want: int, timeout: float = 30) -> list[dict]:
    """Every event keyed by psn_no on the topics, read from the start of each partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[dict] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                found += [json.loads(m.value) for m in messages if m.key == psn_no.encode()]
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


async def test_settled_reversed_and_subsidy_events_match_the_documented_payloads(stack, broker):
    eligibility, settlement = stack
    psn_no, number = await _person(eligibility, insutype="310", psn_type="in_service")
    his = {"X-Api-Key": HIS_KEYS["H1"]}
    visit = await settlement.post(
        "/v1/visits",
        headers=his,
        json={
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": number,
            "fixmedins_code": "H1",
            "med_type": "21",
            "begntime": "2024-01-10T08:00:00+08:00",
            "diagnoses": ["U07.1"],
        },
    )
    assert visit.status_code == 201, visit.text
    mdtrt_id = visit.json()["mdtrt_id"]
    await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees",
        headers=his,
        json={
            "items": [
                {
                    "feedetl_sn": "1",
                    "med_list_codg": "COVID-NMTW",
                    "med_list_name": "奈玛特韦",
                    "pric": "1890.00",
                    "cnt": "1",
                },
                {"feedetl_sn": "2", "med_list_codg": "TA015", "item_class": "A", "pric": "8000.00", "cnt": "1"},
                {"feedetl_sn": "3", "med_list_codg": "TC016", "item_class": "C", "pric": "400.00", "cnt": "1"},
            ]
        },
    )
    await settlement.post(
        f"/v1/visits/{mdtrt_id}/discharge", headers=his, json={"endtime": "2024-01-24T10:00:00+08:00"}
    )
    settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=his, json={})
    assert settled.status_code == 201, settled.text
    answer = settled.json()
    assert (answer["hifp_pay"], answer["fin_subsidy_pay"], answer["psn_pay"]) == ("7432.00", "2858.00", "0.00")
    reversed_ = await settlement.post(f"/v1/settlements/{answer['setl_id']}/reverse", headers=his)
    assert reversed_.status_code == 200

    events = await _events(broker, psn_no, ("settled", "settlement-reversed", "subsidy-due"), want=4)
    by_type = {}
    for event in events:
        assert set(event) == {"event_id", "type", "version", "occurred_at", "producer", "key", "payload"}
        assert event["producer"] == "settlement" and event["key"] == psn_no
        by_type.setdefault(event["type"], []).append(event["payload"])
    settled_payload = by_type["settled"][0]
    assert set(settled_payload) >= SETTLED_FIELDS
    assert settled_payload["origin"] == "local" and settled_payload["covid_status"] == "confirmed"
    assert settled_payload["setl_id"] == answer["setl_id"] and settled_payload["declared"] is False
    assert settled_payload["begndate"] == "2024-01-10" and settled_payload["enddate"] == "2024-01-24"
    assert (settled_payload["fixmedins_level"], settled_payload["fixmedins_affiliation"]) == (3, "city")
    for name in ("medfee_sumamt", "hifp_pay", "fin_subsidy_pay", "psn_pay"):
        assert settled_payload[name] == answer[name]
    subsidies = sorted(by_type["subsidy-due"], key=lambda p: p["reversal"])
    assert [s["reversal"] for s in subsidies] == [False, True]
    for subsidy in subsidies:
        assert subsidy["amount"] == "2858.00" and subsidy["advance_payer"] == "city"
        assert subsidy["case_status"] == "confirmed" and subsidy["setl_id"] == answer["setl_id"]
        assert sum(Decimal(s["amount"]) for s in subsidy["shares"]) == Decimal("2858.00")
        assert {s["payer"] for s in subsidy["shares"]} == {"central", "provincial"}
    (reversal,) = by_type["settlement-reversed"]
    assert reversal["setl_id"] == answer["setl_id"] and reversal["original"] == settled_payload
    assert reversal["rev_date"] and reversal["reversed_at"]


async def test_real_eligibility_decides_credential_and_family(stack):
    eligibility, settlement = stack
    patient, patient_cert = await _person(eligibility, insutype="310", psn_type="retired")
    spouse, _ = await _person(eligibility, insutype="310", psn_type="in_service")
    his = {"X-Api-Key": HIS_KEYS["H2"]}
    body = {
        "psn_no": patient,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": certno("621000"),
        "fixmedins_code": "H2",
        "med_type": "11",
        "begntime": "2024-03-08T09:00:00+08:00",
    }
    wrong = await settlement.post("/v1/visits", headers=his, json=body)
    assert wrong.status_code == 422 and wrong.json()["code"] == "CREDENTIAL_MISMATCH"
    visit = await settlement.post("/v1/visits", headers=his, json={**body, "mdtrt_cert_no": patient_cert})
    mdtrt_id = visit.json()["mdtrt_id"]
    await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees",
        headers=his,
        json={
            "items": [{"feedetl_sn": "1", "med_list_codg": "TA005", "item_class": "A", "pric": "400.00", "cnt": "1"}]
        },
    )
    credit = await settlement.post(
        f"/v1/accounts/{spouse}/credits", headers=ADMIN, json={"amount": "1000.00", "period": "2024-03"}
    )
    assert credit.status_code == 201
    options = {"acct_used_flag": True, "acct_payer_psn_no": spouse}
    refused = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=his, json=options)
    assert refused.status_code == 422 and refused.json()["code"] == "NOT_FAMILY"
    related = await eligibility.post(
        f"/v1/persons/{patient}/family", headers=ADMIN, json={"relation": "spouse", "member_psn_no": spouse}
    )
    assert related.status_code == 201, related.text
    done = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=his, json=options)
    assert done.status_code == 201, done.text
    assert (done.json()["hifp_pay"], done.json()["acct_pay"]) == ("130.00", "270.00")  # (400 − 200) × 65 %
    assert (await settlement.get(f"/v1/accounts/{spouse}", headers=his)).json()["balc"] == "730.00"
