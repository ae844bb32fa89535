"""Reconciliation against settlement's totals, the event stream (auth, tickets, no personal data), the dashboard,
and the two statistics (两病 monthly, institution indicators)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from reporting_support import (
    HIS,
    OPS,
    at,
    case,
    fake_settlement,
    feed,
    fresh_day,
    reverse,
    settle,
    settle_ordinary,
    subsidy,
    uid,
)

from shared.events.topics import COVID_CASE_REGISTERED, SUBSIDY_DUE


async def test_reconciliation_compares_every_settlement_of_the_day(reporting, swap_settlement):
    day = fresh_day(span=2)
    a = await settle_ordinary(reporting, day=day, medfee="100.00", hifp="60.00", acct="10.00")
    await settle(reporting, day=day, covid="confirmed", medfee="300.00", hifp="200.00", hifmi="0.00", maf="0.00")
    b = await settle_ordinary(reporting, day=day - timedelta(days=3), medfee="50.00", hifp="25.00")
    await reverse(reporting, b, day=day)
    assert a["psn_pay"] == "40.00"
    mine = {
        "count": 1,
        "medfee_sumamt": "350.00",
        "fund_pay_sumamt": "235.00",
        "fin_subsidy_pay": "100.00",
        "psn_pay": "15.00",
    }
    swap_settlement(fake_settlement("/v1/totals", mine))
    response = await reporting.get("/v1/reconciliation", params={"date": day.isoformat()}, headers=OPS)
    assert response.status_code == 200, response.text
    assert response.json() == {"date": day.isoformat(), "settlement": mine, "reporting": mine, "differences": []}

    swap_settlement(fake_settlement("/v1/totals", {**mine, "count": 2, "psn_pay": "15.01"}))
    differences = (await reporting.get("/v1/reconciliation", params={"date": day.isoformat()}, headers=OPS)).json()[
        "differences"
    ]
    assert differences == [
        {"field": "count", "settlement": 2, "reporting": 1},
        {"field": "psn_pay", "settlement": "15.01", "reporting": "15.00"},
    ]


async def test_reconciliation_is_503_when_settlement_is_down(reporting, swap_settlement):
    swap_settlement(httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=1))
    response = await reporting.get("/v1/reconciliation", params={"date": "2024-03-01"}, headers=OPS)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "SETTLEMENT_UNAVAILABLE"
    swap_settlement(fake_settlement("/v1/totals", {"count": "many"}))
    response = await reporting.get("/v1/reconciliation", params={"date": "2024-03-01"}, headers=OPS)
    assert response.status_code == 503 and "unexpectedly" in response.json()["detail"]


def _frames(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_event_stream_shows_applied_events_without_personal_data(reporting):
    app_feed = reporting._transport.app.state.feed
    since = app_feed.seq
    day = fresh_day()
    payload = case(psn_no=uid("P"), diagnosed_at=at(day, 9), name="李四", certno="621002198001011234")
    event = await feed(reporting, COVID_CASE_REGISTERED, payload)
    settled_payload = await settle(reporting, day=day, covid="confirmed")
    waiting = app_feed.seq - since  # the stream replays what came after `since`, then ends at `limit`
    response = await reporting.get("/v1/events/stream", params={"since": since, "limit": waiting}, headers=OPS)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    frames = [
        f
        for f in _frames(response.text)  # the live consumer may have applied others' events meanwhile
        if f["event_id"] == event.event_id or f["data"].get("setl_id") == settled_payload["setl_id"]
    ]
    assert [f["type"] for f in frames] == ["covid-case-registered", "settled"]
    assert frames[0]["event_id"] == event.event_id and frames[0]["data"]["status"] == "confirmed"
    assert frames[1]["data"]["setl_id"] == settled_payload["setl_id"]
    assert "李四" not in response.text and "621002198001011234" not in response.text
    assert settled_payload["psn_no"] not in response.text
    assert f"id: {since + 1}\n" in response.text  # Last-Event-ID resumes from here


async def test_event_stream_auth_header_or_ticket(reporting):
    assert (await reporting.get("/v1/events/stream", params={"limit": 1})).status_code == 401
    assert (await reporting.get("/v1/events/stream", params={"limit": 1}, headers=HIS)).status_code == 403
    forged = await reporting.get("/v1/events/stream", params={"limit": 1, "ticket": "admin.9999999999.00"})
    assert forged.status_code == 401
    assert (await reporting.post("/v1/events/stream-tickets", headers=HIS)).status_code == 403
    issued = await reporting.post("/v1/events/stream-tickets", headers=OPS)
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    assert ticket.startswith("ops.") and "test-ops-key" not in ticket
    app_feed = reporting._transport.app.state.feed
    since = app_feed.seq
    mine = await settle(reporting, day=fresh_day(), covid=None)
    streamed = await reporting.get(
        "/v1/events/stream", params={"limit": app_feed.seq - since, "since": since, "ticket": ticket}
    )
    assert streamed.status_code == 200
    assert mine["setl_id"] in {f["data"].get("setl_id") for f in _frames(streamed.text)}
    tampered = ticket.replace("ops.", "admin.", 1)
    assert (await reporting.get("/v1/events/stream", params={"limit": 1, "ticket": tampered})).status_code == 401


async def test_dashboard_page_and_summary(reporting):
    page = await reporting.get("/")
    assert page.status_code == 200 and "运营看板" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = await reporting.get("/static/dashboard.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert (await reporting.get("/static/../app.py")).status_code == 404
    assert (await reporting.get("/static/index.htm")).status_code == 404
    day = fresh_day()
    original = await settle(
        reporting,
        day=day,
        covid="suspected",
        medfee="100.00",
        hifp="50.00",
        hifmi="0.00",
        maf="0.00",
        hour=9,
        fixmedins_code=uid("HD"),
    )
    await feed(reporting, SUBSIDY_DUE, subsidy(original))
    await settle_ordinary(reporting, day=day, medfee="10.00", hifp="5.00", hour=9)
    response = await reporting.get("/v1/dashboard", params={"date": day.isoformat()}, headers=OPS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["day"]["count"] == 2 and body["day"]["medfee_sumamt"] == "110.00"
    assert body["day"]["covid"] == {"count": 1, "medfee_sumamt": "100.00", "fin_subsidy_pay": "50.00"}
    assert body["per_hour"][9] == {"hour": 9, "count": 2, "medfee_sumamt": "110.00"}
    position = next(p for p in body["positions"] if p["fixmedins_code"] == original["fixmedins_code"])
    assert (position["fund_payable"], position["subsidy_receivable"], position["net"]) == ("50.00", "50.00", "100.00")
    assert original["setl_id"] in {e["data"].get("setl_id") for e in body["recent_events"] if e["type"] == "settled"}


async def test_two_diseases_monthly_net_of_reversals(reporting):
    day = fresh_day(span=2).replace(day=10)
    month = day.isoformat()[:7]
    before = (await reporting.get("/v1/reports/two-diseases", params={"month": month}, headers=OPS)).json()
    psn = uid("P")
    visits = (("hypertension", "120.00", "60.00"), ("hypertension", "80.00", "40.00"), ("diabetes", "300.00", "150.00"))
    first, _, other = [
        await settle_ordinary(
            reporting, day=day, two_disease=disease, med_type="14", psn_no=psn, medfee=medfee, hifp=hifp
        )
        for disease, medfee, hifp in visits
    ]
    await reverse(reporting, other, day=day + timedelta(days=1))
    await reverse(reporting, first, day=day + timedelta(days=1))
    after = (await reporting.get("/v1/reports/two-diseases", params={"month": month}, headers=OPS)).json()

    def delta(disease, field):
        pick = lambda body: next(r for r in body["rows"] if r["disease"] == disease)[field]  # noqa: E731
        from decimal import Decimal

        return Decimal(str(pick(after))) - Decimal(str(pick(before)))

    assert (delta("hypertension", "beneficiaries"), delta("hypertension", "visits")) == (1, 1)
    assert (delta("hypertension", "medfee_sumamt"), delta("hypertension", "hifp_pay")) == (80, 40)
    assert (delta("diabetes", "beneficiaries"), delta("diabetes", "visits"), delta("diabetes", "medfee_sumamt")) == (
        0,
        0,
        0,
    )
    bad = await reporting.get("/v1/reports/two-diseases", params={"month": "2024-13"}, headers=OPS)
    assert bad.status_code == 422


async def test_indicators_aid_self_pay_share_in_county_hospitals(reporting):
    day = fresh_day()
    county = uid("HC")
    await settle(
        reporting,
        day=day,
        covid=None,
        aid_category="dibao",
        affiliation="county",
        fixmedins_code=county,
        medfee="10000.00",
        inscp="9000.00",
        ownpay="1000.00",
        hifp="6000.00",
        hifmi="1000.00",
        maf="1200.00",
    )
    await settle_ordinary(
        reporting,
        day=day,
        aid_category=None,
        affiliation="county",
        fixmedins_code=county,
        medfee="1000.00",
        inscp="1000.00",
        hifp="500.00",
    )
    response = await reporting.get("/v1/reports/indicators", params={"year": day.year}, headers=OPS)
    assert response.status_code == 200, response.text
    item = next(i for i in response.json()["items"] if i["fixmedins_code"] == county)
    # in-scope 9000, paid by funds 8200 → self-paid 800 → 8.89 % ≤ 10 %
    assert (item["aid_inpatient_inscp_amt"], item["aid_inpatient_self_pay_amt"]) == ("9000.00", "800.00")
    assert (item["aid_self_pay_share"], item["aid_self_pay_ok"]) == ("0.0889", True)
    assert item["outside_catalogue_share"] == "0.0909"  # 1000 of 11000
    assert item["budget_used"] == "8700.00" and item["settlements"] == 2
