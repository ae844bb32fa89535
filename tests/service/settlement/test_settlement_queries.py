"""Reading settlements: one, a day's list (an HIS sees its own), and the day's totals net of reversals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from settlement_support import his, item, open_visit, settle

from shared.testing import OPS_KEY

OPS = {"X-Api-Key": OPS_KEY}


async def _totals(api, day: str) -> dict:
    response = await api.get("/v1/totals", params={"date": day}, headers=OPS)
    assert response.status_code == 200, response.text
    return response.json()


async def test_totals_count_settlements_and_net_out_reversals(api, fake):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    before = await _totals(api, today)
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "500.00")])
    done = (await settle(api, mdtrt_id)).json()
    assert done["setl_date"] == today
    after = await _totals(api, today)
    assert after["count"] == before["count"] + 1
    for name in ("medfee_sumamt", "fund_pay_sumamt", "fin_subsidy_pay", "psn_pay"):
        assert Decimal(after[name]) - Decimal(before[name]) == Decimal(done[name]), name
    await api.post(f"/v1/settlements/{done['setl_id']}/reverse", headers=his())
    assert await _totals(api, today) == before
    assert (await api.get("/v1/totals", params={"date": today}, headers=his())).status_code == 403
    assert (await api.get("/v1/totals", params={"date": "2024-13-01"}, headers=OPS)).status_code == 422


async def test_list_and_get(api, fake):
    person = fake.add()
    mdtrt_id = await open_visit(api, person, code="H2", items=[item("TA1", "80.00")])
    done = (await settle(api, mdtrt_id, code="H2")).json()
    listed = await api.get("/v1/settlements", params={"setl_date": done["setl_date"]}, headers=his("H2"))
    assert listed.status_code == 200
    body = listed.json()
    assert body["fixmedins_code"] == "H2" and done["setl_id"] in {s["setl_id"] for s in body["items"]}
    assert all(s["fixmedins_code"] == "H2" and "trace" not in s for s in body["items"])
    foreign = await api.get(
        "/v1/settlements", params={"setl_date": done["setl_date"], "fixmedins_code": "H2"}, headers=his("H1")
    )
    assert foreign.status_code == 403
    one = await api.get(f"/v1/settlements/{done['setl_id']}", headers=OPS)
    assert one.status_code == 200 and one.json()["trace"] and one.json()["status"] == "settled"
    assert one.json()["hifp_pay"] == done["hifp_pay"]
    assert (await api.get(f"/v1/settlements/{done['setl_id']}", headers=his("H1"))).status_code == 403
