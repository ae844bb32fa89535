"""Every refusal is a 4xx problem with a stable code, and nothing is written."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from settlement_support import ADMIN, his, item, open_visit, pharmacy, settle, visit_body

from shared.testing import OPS_KEY


async def _visit_count(db, psn_no: str) -> int:
    return await db.scalar("SELECT count(*) FROM settlement.visits WHERE psn_no = :p", p=psn_no)


async def test_credential_mismatch_person_unknown_and_inactive(api, fake, db):
    person = fake.add()
    wrong = await api.post("/v1/visits", json=visit_body(person, mdtrt_cert_no="C-SOMEONE-ELSE"), headers=his())
    assert wrong.status_code == 422 and wrong.json()["code"] == "CREDENTIAL_MISMATCH"
    assert wrong.headers["content-type"] == "application/problem+json"
    unknown = await api.post("/v1/visits", json={**visit_body(person), "psn_no": "NOBODY1"}, headers=his())
    assert unknown.status_code == 422 and unknown.json()["code"] == "PERSON_NOT_FOUND"
    inactive = fake.add(active=False)
    refused = await api.post("/v1/visits", json=visit_body(inactive), headers=his())
    assert refused.status_code == 422 and refused.json()["code"] == "PERSON_INACTIVE"
    assert await _visit_count(db, person.psn_no) == 0 and await _visit_count(db, inactive.psn_no) == 0


@pytest.mark.parametrize(
    "code, expected",
    [("HNONE1", "INSTITUTION_NOT_DESIGNATED"), ("HSUS", "INSTITUTION_SUSPENDED"), ("P1", "INSTITUTION_NOT_DESIGNATED")],
)
async def test_institution_must_be_designated_and_not_suspended(api, fake, db, code, expected):
    person = fake.add()
    response = await api.post("/v1/visits", json=visit_body(person, code=code), headers=ADMIN)
    assert response.status_code == 422 and response.json()["code"] == expected
    assert await _visit_count(db, person.psn_no) == 0


async def test_a_suspension_applied_here_stops_new_visits_at_once(api, fake, db, eligibility, settlement_app):
    """Visit creation reads institutions through a short cache; the consumer applying institution-changed
    clears it, so the first visit after the suspension reached this service's copy is refused."""
    code = "HC" + uuid.uuid4().hex[:6].upper()
    registered = await eligibility.post(
        "/v1/institutions",
        headers=ADMIN,
        json={
            "fixmedins_code": code,
            "fixmedins_name": "缓存测试医院",
            "kind": "hospital",
            "level": 2,
            "affiliation": "city",
            "admdvs": "621000",
        },
    )
    assert registered.status_code == 201, registered.text
    person = fake.add()
    for _ in range(400):  # the registration reaches settlement's copy through the broker
        opened = await api.post("/v1/visits", json=visit_body(person, code=code), headers=ADMIN)
        if opened.status_code == 201:
            break
        await asyncio.sleep(0.05)
    assert opened.status_code == 201, opened.text  # and the institution is in the cache now
    assert (await eligibility.post(f"/v1/institutions/{code}/suspend", headers=ADMIN)).status_code == 200
    for _ in range(400):
        if await db.scalar("SELECT suspended FROM settlement.institutions WHERE fixmedins_code = :c", c=code):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # the consumer clears the cache right after its commit
    refused = await api.post("/v1/visits", json=visit_body(person, code=code), headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "INSTITUTION_SUSPENDED", refused.text
    assert await _visit_count(db, person.psn_no) == 1


async def test_his_key_acts_only_for_its_institution(api, fake, db):
    person = fake.add()
    other = await api.post("/v1/visits", json=visit_body(person, code="H2"), headers=his("H1"))
    assert other.status_code == 403 and other.json()["code"] == "INSTITUTION_FORBIDDEN"
    for key in (pharmacy("P1"), {"X-Api-Key": OPS_KEY}):
        assert (await api.post("/v1/visits", json=visit_body(person), headers=key)).status_code == 403
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "10.00")])
    for path in ("fees", "presettle", "settle", "discharge"):
        body = (
            {"items": [item("TA2", "1.00")]}
            if path == "fees"
            else ({"endtime": "2024-03-02T09:00:00+08:00"} if path == "discharge" else {})
        )
        response = await api.post(f"/v1/visits/{mdtrt_id}/{path}", json=body, headers=his("H2"))
        assert response.status_code == 403, (path, response.text)
    assert (await api.get(f"/v1/visits/{mdtrt_id}", headers=his("H2"))).status_code == 403
    assert await db.written(person.psn_no) == (0, 0, {}, 0)


async def test_fee_lines_are_idempotent_per_feedetl_sn(api, fake, db):
    person = fake.add()
    line = item("TA1", "10.00")
    mdtrt_id = await open_visit(api, person, items=[line])
    again = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [line]}, headers=his())
    assert again.status_code == 200 and again.json()["duplicates"] == [line["feedetl_sn"]]
    changed = await api.post(
        f"/v1/visits/{mdtrt_id}/fees", json={"items": [{**line, "pric": "11.00"}, item("TA9", "1.00")]}, headers=his()
    )
    assert changed.status_code == 409 and changed.json()["code"] == "FEE_LINE_CONFLICT"
    count = await db.scalar("SELECT count(*) FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id)
    assert count == 1  # the new line of the refused request was not kept either


@pytest.mark.parametrize(
    "bad, code",
    [
        (item("COVID-AGT", "9.00"), "PRICE_ABOVE_CAP"),
        (item("TA1", "10.00", "2", det_item_fee_sumamt="19.99"), "LINE_TOTAL_MISMATCH"),
        (item("TA1", "10.00", days_supply=90), "SUPPLY_DAYS_ABOVE_LIMIT"),
    ],
)
async def test_upload_refusals(api, fake, db, bad, code):
    person = fake.add()
    mdtrt_id = await open_visit(api, person)
    response = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [item("TA0", "1.00"), bad]}, headers=his())
    assert response.status_code == 422 and response.json()["code"] == code
    assert response.json()["errors"][0]["feedetl_sn"] == bad["feedetl_sn"]
    assert await db.scalar("SELECT count(*) FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{**item("TA1", "1.00"), "pric": 1.5}]},  # money as a JSON number
        {"items": [{**item("TA1", "1.00"), "cnt": "0"}]},
        {"items": []},
        {"items": [{**item("TA1", "1.00"), "item_class": "D"}]},
        {"items": [item("TA1", "1.00")], "extra": True},
    ],
)
async def test_bad_fee_bodies_are_422(api, fake, body):
    mdtrt_id = await open_visit(api, fake.add())
    response = await api.post(f"/v1/visits/{mdtrt_id}/fees", json=body, headers=his())
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_FAILED", response.text


async def test_malformed_and_unknown(api, fake):
    malformed = await api.post(
        "/v1/visits", content=b'{"psn_no": ', headers={**his(), "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "MALFORMED_JSON"
    missing = await api.post("/v1/visits/MNOSUCHVISIT/settle", json={}, headers=his())
    assert missing.status_code == 404 and missing.json()["code"] == "VISIT_NOT_FOUND"
    assert (await api.get("/v1/settlements/SNOSUCH", headers=his())).json()["code"] == "SETTLEMENT_NOT_FOUND"
    bad_type = await api.post("/v1/visits", json={**visit_body(fake.add()), "med_type": "41"}, headers=his())
    assert bad_type.status_code == 422


async def test_smart_monitoring_warns_on_presettle_and_rejects_on_settle(api, fake, db):
    person = fake.add()  # no chronic qualification: at most 30 days of supply
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "10.00", days_supply=40)])
    pre = await api.post(f"/v1/visits/{mdtrt_id}/presettle", json={}, headers=his())
    assert pre.status_code == 200 and "SUPPLY_DAYS_ABOVE_LIMIT" in [w["code"] for w in pre.json()["warnings"]]
    refused = await settle(api, mdtrt_id)
    assert refused.status_code == 422 and refused.json()["code"] == "SUPPLY_DAYS_ABOVE_LIMIT"
    assert [e["code"] for e in refused.json()["errors"]] == ["SUPPLY_DAYS_ABOVE_LIMIT"]
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    visit = await api.get(f"/v1/visits/{mdtrt_id}", headers=his())
    assert visit.json()["status"] == "open"


async def test_covid_drug_for_an_ordinary_patient_is_self_paid_with_a_warning(api, fake):
    person = fake.add()
    mdtrt_id = await open_visit(
        api, person, code="H3", items=[item("COVID-NMTW", "1890.00"), item("TA18", "30.00")], day="2024-02-20"
    )
    done = await settle(api, mdtrt_id, code="H3")
    assert done.status_code == 201
    assert done.json()["fulamt_ownpay_amt"] == "1890.00"
    assert [w["code"] for w in done.json()["warnings"]] == ["COVID_DRUG_RESTRICTED"]


async def test_eligibility_down_is_503_and_writes_nothing(api, fake, db):
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "100.00")])
    fake.down = True
    try:
        for path in ("presettle", "settle"):
            response = await api.post(f"/v1/visits/{mdtrt_id}/{path}", json={}, headers=his())
            assert response.status_code == 503 and response.json()["code"] == "ELIGIBILITY_UNAVAILABLE"
            assert response.headers["content-type"] == "application/problem+json"
        created = await api.post("/v1/visits", json=visit_body(person), headers=his())
        assert created.status_code == 503
    finally:
        fake.down = False
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    assert (await settle(api, mdtrt_id)).status_code == 201


async def test_eligibility_timeout_is_503(api, fake, db):
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "100.00")])
    fake.slow = True
    try:
        response = await settle(api, mdtrt_id)
    finally:
        fake.slow = False
    assert response.status_code == 503 and response.json()["code"] == "ELIGIBILITY_UNAVAILABLE"
    assert await db.written(person.psn_no) == (0, 0, {}, 0)


async def test_idempotency_key(api, fake, db):
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "500.00")])
    first = await settle(api, mdtrt_id, key="K-" + mdtrt_id)
    again = await settle(api, mdtrt_id, key="K-" + mdtrt_id)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    other = await settle(api, mdtrt_id, key="K-" + mdtrt_id, body={"acct_used_flag": True})
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    no_key = await settle(api, mdtrt_id)
    assert no_key.status_code == 409 and no_key.json()["code"] == "ALREADY_SETTLED"
    assert await db.settlements(person.psn_no) == 1


async def test_reverse_twice_and_settle_again_gives_the_same_amounts(api, fake, db):
    person = fake.add(insutype="390", insuplc_admdvs="621022")
    mdtrt_id = await open_visit(
        api,
        person,
        code="H2",
        med_type="21",
        day="2024-04-02",
        items=[item("TA6", "9800.00"), item("TB7", "1200.00", item_class="B")],
    )
    assert (await settle(api, mdtrt_id, code="H2")).json()["code"] == "NOT_DISCHARGED"
    discharged = await api.post(
        f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": "2024-04-12T10:00:00+08:00"}, headers=his("H2")
    )
    assert discharged.status_code == 200 and discharged.json()["enddate"] == "2024-04-12"
    first = (await settle(api, mdtrt_id, code="H2")).json()
    assert first["hifp_pay"] == "7785.00"
    accumulated = await db.accumulators(person.psn_no)
    reverse = await api.post(f"/v1/settlements/{first['setl_id']}/reverse", headers=his("H2"))
    assert reverse.status_code == 200 and reverse.json()["setl_id"] == first["setl_id"]
    twice = await api.post(f"/v1/settlements/{first['setl_id']}/reverse", headers=his("H2"))
    assert twice.status_code == 409 and twice.json()["code"] == "ALREADY_REVERSED"
    assert await db.accumulators(person.psn_no) == {}
    second = (await settle(api, mdtrt_id, code="H2")).json()
    money = [k for k in first if k.endswith(("_amt", "_pay", "_dedc")) or k == "pool_prop"]
    assert {k: first[k] for k in money} == {k: second[k] for k in money} and second["setl_id"] != first["setl_id"]
    assert await db.accumulators(person.psn_no) == accumulated
    stored = (await api.get(f"/v1/settlements/{first['setl_id']}", headers=his("H2"))).json()
    assert stored["status"] == "reversed" and stored["reversed_at"]
    topics = await db.scalar(
        "SELECT string_agg(topic, ',' ORDER BY id) FROM settlement.outbox WHERE key = :p", p=person.psn_no
    )
    assert topics == "settled,settlement-reversed,settled"


async def test_three_day_pre_admission_merge(api, fake, db):
    person = fake.add(insutype="390", insuplc_admdvs="621022")
    before = await open_visit(api, person, code="H2", day="2024-05-08", items=[item("TA1", "200.00")])
    too_early = await open_visit(api, person, code="H2", day="2024-05-06", items=[item("TA1", "50.00")])
    elsewhere = await open_visit(api, person, code="H3", day="2024-05-09", items=[item("TA1", "70.00")])
    admission = await open_visit(
        api, person, code="H2", med_type="21", day="2024-05-10", items=[item("TA6", "1000.00")]
    )
    merged = await settle(api, before, code="H2")
    assert merged.status_code == 409 and merged.json()["code"] == "MERGED_INTO_ADMISSION"
    await api.post(
        f"/v1/visits/{admission}/discharge", json={"endtime": "2024-05-15T10:00:00+08:00"}, headers=his("H2")
    )
    done = (await settle(api, admission, code="H2")).json()
    assert done["medfee_sumamt"] == "1200.00" and done["merged_mdtrt_ids"] == [before]
    assert done["act_pay_dedc"] == "500.00" and done["hifp_pay"] == "525.00"  # (1200 − 500) × 75 %
    assert (await settle(api, too_early, code="H2")).status_code == 201
    assert (await settle(api, elsewhere, code="H3")).status_code == 201


async def test_an_outpatient_visit_opened_after_its_admission_joins_it(api, fake, db):
    """The other direction of the merge: the admission is open first; an outpatient visit dated within its three
    days before, at the same hospital, joins it when it is created (in the same statement as its row)."""
    person = fake.add(insutype="390", insuplc_admdvs="621022")
    admission = await open_visit(api, person, code="H2", med_type="21", day="2024-09-20")
    created = [
        await api.post("/v1/visits", json=visit_body(person, code=code, day=day), headers=his(code))
        for code, day in (("H2", "2024-09-18"), ("H2", "2024-09-16"), ("H3", "2024-09-19"))
    ]
    assert [c.status_code for c in created] == [201, 201, 201], [c.text for c in created]
    assert [(c.json()["status"], c.json()["merged_into"]) for c in created] == [
        ("merged", admission),
        ("open", None),
        ("open", None),
    ]
    stored = await db.scalar(
        "SELECT string_agg(status || ':' || coalesce(merged_into, '-'), ',' ORDER BY begndate) "
        "FROM settlement.visits WHERE psn_no = :p",
        p=person.psn_no,
    )
    assert stored == f"open:-,merged:{admission},open:-,open:-"


async def test_outpatient_during_an_admission_gets_no_pooling(api, fake):
    person = fake.add(insutype="390", insuplc_admdvs="621022")
    await open_visit(api, person, code="H2", med_type="21", day="2024-06-01", items=[item("TA6", "1000.00")])
    during = await open_visit(api, person, code="H1", day="2024-06-03", items=[item("TA1", "300.00")])
    done = (await settle(api, during)).json()
    assert done["hifp_pay"] == "0.00" and done["psn_pay"] == "300.00"
    assert "OUTPATIENT_DURING_ADMISSION" in [w["code"] for w in done["warnings"]]


async def test_catalogue(api, fake, db):
    found = await api.get("/v1/catalog", params={"q": "COVID"}, headers=his())
    assert found.status_code == 200 and found.json()["count"] >= 6
    assert {e["med_list_codg"] for e in found.json()["items"]} >= {"COVID-NMTW", "COVID-AGT"}
    assert (
        await api.put("/v1/catalog/ZB-TEST1", json={"med_list_name": "x", "item_class": "B"}, headers=his())
    ).status_code == 403
    put = await api.put(
        "/v1/catalog/ZB-TEST1",
        headers=ADMIN,
        json={"med_list_name": "测试乙类", "item_class": "B", "preselfpay_prop": "0.20", "price_cap": "50.00"},
    )
    assert put.status_code in (200, 201) and put.json()["price_cap"] == "50.00"
    person = fake.add()
    mdtrt_id = await open_visit(api, person)
    above = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [item("ZB-TEST1", "50.01")]}, headers=his())
    assert above.status_code == 422 and above.json()["code"] == "PRICE_ABOVE_CAP"
    await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [item("ZB-TEST1", "50.00", "2", "A")]}, headers=his())
    done = (await settle(api, mdtrt_id)).json()
    assert done["preselfpay_amt"] == "20.00"  # the catalogue's class B and 20 %, not the declared A
    assert "CLASS_OVERRIDDEN_BY_CATALOGUE" in [w["code"] for w in done["warnings"]]
