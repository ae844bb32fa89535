"""What supervision needs from settlement, end to end in-process: the catalogue says each code's category, essential
drug and watched-goods flag; the `settled` event carries its lines and the identities the person held; reporting reads
them from the broker and raises the alerts (a watched good above its cap; 防返贫 for a 防返贫监测对象)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from alerts_support import rule_alerts

from shared.testing import ADMIN_KEY, fetch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "settlement"))
from fake_eligibility import FakeEligibility  # noqa: E402
from settlement_support import INSTITUTIONS, item, open_visit, settle  # noqa: E402

ADMIN = {"X-Api-Key": ADMIN_KEY}
CODE = "H1"


@pytest.fixture(scope="module")
async def wired(eligibility, settlement, reporting):
    """The settlement app asks a fake eligibility about persons; H1 reaches its copy of institutions."""
    app = settlement._transport.app
    fake = FakeEligibility()
    previous = app.state.eligibility
    app.state.eligibility = fake.client()
    try:
        spec = {"fixmedins_code": CODE, "fixmedins_name": "测试H1", **INSTITUTIONS[CODE]}
        response = await eligibility.post("/v1/institutions", headers=ADMIN, json=spec)
        assert response.status_code in (200, 201, 409), response.text
        for _ in range(400):
            rows = await fetch(app, "SELECT 1 FROM settlement.institutions WHERE fixmedins_code = :c", c=CODE)
            if rows:
                break
            await asyncio.sleep(0.05)
        yield fake
    finally:
        app.state.eligibility = previous


async def _eventually(check, timeout: float = 30.0):
    for _ in range(int(timeout / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("not in time")


async def test_the_catalogue_says_category_essential_and_watched(settlement):
    listed = await settlement.get("/v1/catalog", params={"q": "OTC-IBU"}, headers=ADMIN)
    [entry] = listed.json()["items"]
    assert (entry["category"], entry["essential"], entry["watched"]) == ("drug", True, True)
    put = await settlement.put(
        "/v1/catalog/JC-SUP-1",
        json={"med_list_name": "检查", "item_class": "A", "category": "examination"},
        headers=ADMIN,
    )
    assert put.status_code in (200, 201) and put.json()["category"] == "examination", put.text
    assert put.json()["essential"] is False and put.json()["watched"] is False
    refused = await settlement.put(
        "/v1/catalog/JC-SUP-2",
        json={"med_list_name": "检查", "item_class": "A", "category": "examination", "essential": True},
        headers=ADMIN,
    )
    assert refused.status_code == 422
    odd = await settlement.put(
        "/v1/catalog/JC-SUP-3", json={"med_list_name": "x", "item_class": "A", "category": "food"}, headers=ADMIN
    )
    assert odd.status_code == 422


async def test_a_settlement_carries_its_lines_and_a_watched_good_above_its_cap_raises(wired, settlement, reporting):
    person = wired.add(insutype="390", aid=[{"category": "monitored", "start_date": "2020-01-01"}])
    lines = [
        item("OTC-IBU", "31.50", "2", item_class=None, days_supply=5),
        item("JC-XCG", "20.00", item_class=None),
        item("TA-SUP", "15.00"),
    ]
    mdtrt_id = await open_visit(settlement, person, code=CODE, items=lines, day="2024-01-01")
    settled = await settle(settlement, mdtrt_id, code=CODE)
    assert settled.status_code == 201, settled.text
    setl_id = settled.json()["setl_id"]
    [row] = await fetch(
        settlement._transport.app,
        "SELECT envelope->'payload' AS payload FROM settlement.outbox WHERE topic = 'settled'"
        " AND envelope->'payload'->>'setl_id' = :s",
        s=setl_id,
    )
    payload = row.payload
    assert payload["aid_categories"] == ["monitored"]
    by_code = {x["med_list_codg"]: x for x in payload["lines"]}
    assert by_code["OTC-IBU"] == {
        "feedetl_sn": lines[0]["feedetl_sn"],
        "med_list_codg": "OTC-IBU",
        "med_list_name": "OTC-IBU",
        "item_class": "A",
        "category": "drug",
        "essential": True,
        "watched": True,
        "pric": "31.50",
        "cnt": "2",
        "amount": "63.00",
        "days_supply": 5,
        "fee_ocur_time": "2024-01-01T10:00:00+08:00",
    }
    assert by_code["JC-XCG"]["category"] == "examination" and not by_code["JC-XCG"]["watched"]
    assert by_code["TA-SUP"]["category"] is None and by_code["TA-SUP"]["item_class"] == "A"

    # through the broker to reporting: its lines, and the cap of 30.00 passed
    [alert] = await _eventually(lambda: _alerts_for(reporting, setl_id))
    assert alert["facts"]["setl_id"] == setl_id and alert["facts"]["pric"] == "31.50"
    stored = await fetch(
        reporting._transport.app,
        "SELECT med_list_codg, category, watched, fee_day FROM settlement_lines WHERE setl_id = :s ORDER BY 1",
        s=setl_id,
    )
    assert [(r.med_list_codg, r.category, r.watched) for r in stored] == [
        ("JC-XCG", "examination", False),
        ("OTC-IBU", "drug", True),
        ("TA-SUP", None, False),
    ]


async def _alerts_for(reporting, setl_id: str) -> list[dict]:
    rows = await fetch(
        reporting._transport.app,
        "SELECT alert_id FROM alerts WHERE rule = 'price.cap' AND facts->>'setl_id' = :s",
        s=setl_id,
    )
    found = []
    for row in rows:
        found.append((await reporting.get(f"/v1/alerts/{row.alert_id}", headers=ADMIN)).json())
    return found


async def test_a_monitored_persons_burden_raises_the_high_cost_alert(wired, settlement, reporting):
    person = wired.add(insutype="390", aid=[{"category": "monitored", "start_date": "2020-01-01"}])
    mdtrt_id = await open_visit(
        settlement, person, code=CODE, items=[item("TC-SUP", "10000.00", item_class="C")], day="2024-01-01"
    )
    settled = await settle(settlement, mdtrt_id, code=CODE)
    assert settled.status_code == 201, settled.text
    assert settled.json()["psn_pay"] == "10000.00"
    [alert] = await _eventually(lambda: rule_alerts(reporting, "high_cost.burden", person.psn_no))
    assert alert["facts"]["aid_categories"] == ["monitored"] and alert["facts"]["burden"] == "10000.00"
    assert alert["setl_ids"] == [settled.json()["setl_id"]]
