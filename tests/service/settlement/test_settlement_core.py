"""Visit → fee lines → presettle/settle → reverse, with the fake eligibility and real PostgreSQL."""

from __future__ import annotations

from settlement_support import his, item, open_visit, settle


async def test_outpatient_settle_and_reverse(api, fake, db):
    person = fake.add(insutype="310", psn_type="in_service")
    mdtrt_id = await open_visit(
        api,
        person,
        items=[item("TA001", "350.00"), item("TB002", "60.00", "3", "B"), item("TC003", "45.00", item_class="C")],
        day="2024-02-01",
    )
    pre = await api.post(f"/v1/visits/{mdtrt_id}/presettle", headers=his())  # the body is optional
    assert pre.status_code == 200, pre.text
    assert pre.json()["setl_id"] is None and pre.json()["status"] == "presettled"
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    done = await settle(api, mdtrt_id)
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["hifp_pay"] == "106.00" and body["psn_pay"] == "469.00" and body["setl_id"]
    assert {k: v for k, v in pre.json().items() if k.endswith(("_amt", "_pay", "_dedc"))} == {
        k: v for k, v in body.items() if k.endswith(("_amt", "_pay", "_dedc"))
    }
    again = await settle(api, mdtrt_id)
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_SETTLED"
    reversed_ = await api.post(f"/v1/settlements/{body['setl_id']}/reverse", headers=his())
    assert reversed_.status_code == 200, reversed_.text
    assert await db.accumulators(person.psn_no) == {}
    second = await settle(api, mdtrt_id)
    assert second.status_code == 201, second.text
    assert second.json()["hifp_pay"] == "106.00"
