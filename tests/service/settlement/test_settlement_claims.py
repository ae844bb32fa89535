"""Declared claims through the real broker and the settlement service's own consumer."""

from __future__ import annotations

import asyncio

from settlement_support import ADMIN, his, item


def claim_body(person, *, items: list[dict], **visit) -> dict:
    return {
        "visit": {
            "psn_no": person.psn_no,
            "fixmedins_code": "H1",
            "med_type": "21",
            "begntime": "2024-01-10T08:00:00+08:00",
            "endtime": "2024-01-24T10:00:00+08:00",
            "diagnoses": ["U07.1"],
            **visit,
        },
        "items": items,
    }


async def _until_done(api, claim_id: str, timeout: float = 30) -> dict:
    for _ in range(int(timeout / 0.1)):
        body = (await api.get(f"/v1/claims/{claim_id}", headers=ADMIN)).json()
        if body["status"] != "submitted":
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"claim {claim_id} still submitted after {timeout} s")


async def test_declared_claims_end_settled_or_rejected(api, fake, db):
    person = fake.add()
    good = await api.post(
        "/v1/claims",
        headers=his(),
        json=claim_body(
            person,
            items=[item("COVID-NMTW", "1890.00"), item("TA15", "8000.00"), item("TC16", "400.00", item_class="C")],
        ),
    )
    assert good.status_code == 202 and good.json()["status"] == "submitted", good.text
    unknown = fake.add()
    fake.persons.pop(unknown.psn_no)
    bad_person = await api.post("/v1/claims", headers=his(), json=claim_body(unknown, items=[item("TA1", "10.00")]))
    capped = await api.post(
        "/v1/claims",
        headers=his(),
        json=claim_body(person, med_type="11", endtime=None, items=[item("COVID-AGT", "9.00")]),
    )
    settled = await _until_done(api, good.json()["claim_id"])
    assert settled["status"] == "settled", settled
    breakdown = settled["breakdown"]
    assert breakdown["declared"] is True and breakdown["fin_subsidy_pay"] == "2858.00"
    assert breakdown["hifp_pay"] == "7432.00" and breakdown["psn_pay"] == "0.00"
    topics = await db.scalar(
        "SELECT string_agg(topic, ',' ORDER BY id) FROM settlement.outbox WHERE key = :p", p=person.psn_no
    )
    assert topics.startswith("claim-submitted,claim-submitted") and "settled,subsidy-due" in topics
    rejected = await _until_done(api, bad_person.json()["claim_id"])
    assert rejected["status"] == "rejected" and rejected["reason"]["code"] == "PERSON_NOT_FOUND"
    too_dear = await _until_done(api, capped.json()["claim_id"])
    assert too_dear["status"] == "rejected" and too_dear["reason"]["code"] == "PRICE_ABOVE_CAP"
    assert await db.settlements(person.psn_no) == 1


async def test_claim_refusals_at_submission(api, fake):
    person = fake.add()
    unknown_place = await api.post(
        "/v1/claims", headers=ADMIN, json=claim_body(person, fixmedins_code="HNONE9", items=[item("TA1", "1.00")])
    )
    assert unknown_place.status_code == 422 and unknown_place.json()["code"] == "INSTITUTION_NOT_DESIGNATED"
    other = await api.post("/v1/claims", headers=his("H2"), json=claim_body(person, items=[item("TA1", "1.00")]))
    assert other.status_code == 403
    no_discharge = await api.post(
        "/v1/claims", headers=his(), json=claim_body(person, endtime=None, items=[item("TA1", "1.00")])
    )
    assert no_discharge.status_code == 422
    assert (await api.get("/v1/claims/CNONE", headers=ADMIN)).json()["code"] == "CLAIM_NOT_FOUND"
