"""The alert API (CONTRACT "(supervision)"): the list and its filters, the xlsx export for the office that receives
it, resolving (admin; the same resolution again answers the alert; another one is 409), bad input (422, nothing
changed), the live feed (an alert shows without the person), the policy version in force on the facts' day."""

from __future__ import annotations

import tomllib
from datetime import date

import pytest
from alerts_support import alerts_of, outbox, resolve, rule_alerts, settle
from reporting_support import ADMIN, HIS, OPS, fresh_day, uid, workbook

from services.reporting.feed import public_view
from shared.events.envelope import Envelope
from shared.events.topics import ALERT_RAISED, ALERT_RESOLVED
from shared.supervision import DEFAULT_POLICY_DIR, SupervisionBook, parse_policy
from shared.testing import fetchval


async def _alert(reporting, **extra) -> dict:
    """A fresh high-cost alert of a person of pooling area 621023."""
    psn = uid("P")
    await settle(
        reporting,
        day=fresh_day(),
        psn_no=psn,
        psn_pay="12000.00",
        aid_categories=["tekun"],
        insuplc_admdvs="621023",
        **extra,
    )
    [alert] = await rule_alerts(reporting, "high_cost.burden", psn)
    return alert


async def test_the_list_filters_by_kind_status_area_person_and_institution(reporting):
    alert = await _alert(reporting)
    psn = alert["psn_no"]
    assert [a["alert_id"] for a in await alerts_of(reporting, psn_no=psn)] == [alert["alert_id"]]
    assert [
        a["alert_id"] for a in await alerts_of(reporting, psn_no=psn, kind="high_cost", status="open", admdvs="621023")
    ] == [alert["alert_id"]]
    assert [a["alert_id"] for a in await alerts_of(reporting, psn_no=psn, admdvs="621000", rollup="true")] == [
        alert["alert_id"]
    ]
    for other in (
        {"kind": "fraud"},
        {"status": "resolved"},
        {"admdvs": "621024"},
        {"admdvs": "621000"},
        {"fixmedins_code": "H1"},
        {"rule": "fraud.idle_stay"},
    ):
        assert await alerts_of(reporting, psn_no=psn, **other) == [], other
    page = (await reporting.get("/v1/alerts", params={"limit": "1", "kind": "high_cost"}, headers=OPS)).json()
    assert len(page["items"]) == 1 and page["count"] >= 1 and page["limit"] == 1
    for bad in (
        {"kind": "other"},
        {"status": "closed"},
        {"admdvs": "62"},
        {"limit": "0"},
        {"psn_no": "a b"},
        {"rule": "x"},
        {"format": "pdf"},
    ):
        response = await reporting.get("/v1/alerts", params=bad, headers=OPS)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await reporting.get("/v1/alerts", headers=HIS)).status_code == 403


async def test_the_list_as_xlsx(reporting):
    alert = await _alert(reporting)
    book = await reporting.get("/v1/alerts", params={"psn_no": alert["psn_no"], "format": "xlsx"}, headers=OPS)
    assert book.status_code == 200 and book.headers["content-disposition"] == 'attachment; filename="alerts.xlsx"'
    sheet = workbook(book.content).active
    assert sheet.title == "监测预警清单" and sheet["A3"].value == "预警编号"
    row = [c.value for c in sheet[4]]
    assert row[0] == alert["alert_id"] and row[1] == "防返贫高额费用" and row[4] == alert["psn_no"]
    assert "12000.00" in row[7] and row[8] == "待处理"


async def test_resolving_records_the_help_given_once(reporting):
    alert = await _alert(reporting)
    body = {"resolution": "helped", "note": "民政临时救助 3000 元", "amount": "3000.00"}
    refused = await resolve(reporting, alert["alert_id"], body, headers=OPS)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    done = await resolve(reporting, alert["alert_id"], body)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["status"], answer["resolution"], answer["amount"], answer["resolved_by"]) == (
        "resolved",
        "helped",
        "3000.00",
        "admin",
    )
    assert (await resolve(reporting, alert["alert_id"], body)).json() == answer  # a retry: the same answer
    other = await resolve(reporting, alert["alert_id"], {**body, "resolution": "dismissed"})
    assert other.status_code == 409 and other.json()["code"] == "ALERT_ALREADY_RESOLVED"
    events = await outbox(reporting, alert["alert_id"])
    assert [e["topic"] for e in events] == [ALERT_RAISED, ALERT_RESOLVED]
    assert events[1]["note"] == "民政临时救助 3000 元" and events[1]["resolved_by"] == "admin"
    assert [a["alert_id"] for a in await alerts_of(reporting, psn_no=alert["psn_no"], status="open")] == []


@pytest.mark.parametrize(
    "body",
    [
        {"resolution": "ignored", "note": "x"},
        {"resolution": "helped", "note": ""},
        {"resolution": "helped"},
        {"resolution": "helped", "note": "x", "amount": "-1.00"},
        {"resolution": "helped", "note": "x", "amount": "1.001"},
        {"resolution": "helped", "note": "x\u0000"},
        {"resolution": "helped", "note": "x" * 2001},
        {"resolution": "helped", "note": "x", "extra": 1},
    ],
)
async def test_a_bad_resolution_is_422_and_changes_nothing(reporting, body):
    alert = await _alert(reporting)
    response = await resolve(reporting, alert["alert_id"], body)
    assert response.status_code == 422, response.text
    status = await fetchval(
        reporting._transport.app, "SELECT status FROM alerts WHERE alert_id = :a", a=alert["alert_id"]
    )
    assert status == "open"


async def test_an_unknown_alert(reporting):
    missing = await resolve(reporting, "A" + "0" * 20, {"resolution": "helped", "note": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "ALERT_NOT_FOUND"
    assert (await reporting.get("/v1/alerts/nonsense", headers=OPS)).status_code == 422
    bad = await reporting.post("/v1/alerts/checks", json={"check": "filing"}, headers=ADMIN)
    assert bad.status_code == 422


async def test_the_live_feed_shows_an_alert_without_the_person(reporting):
    feed = reporting._transport.app.state.feed
    alert = await _alert(reporting)
    shown = [
        data
        for _, data in feed.recent
        if data["type"] == ALERT_RAISED and data["data"].get("alert_id") == alert["alert_id"]
    ]
    assert shown and shown[0]["data"]["kind"] == "high_cost"
    assert alert["psn_no"] not in str(shown) and "facts" not in shown[0]["data"]
    envelope = Envelope(
        "e",
        ALERT_RESOLVED,
        1,
        "t",
        "reporting",
        alert["psn_no"],
        {"psn_no": alert["psn_no"], "note": "张三", "kind": "x"},
    )
    assert "psn_no" not in public_view(envelope)["data"] and "note" not in public_view(envelope)["data"]


async def test_the_version_in_force_on_the_day_raises_and_is_named(reporting):
    """A second version (thresholds 20,000.00 from 2031) judges the settlements dated from then on; the first the
    earlier ones. Each alert names the version that raised it."""
    with open(DEFAULT_POLICY_DIR / "supervision" / "2022-01-01.toml", "rb") as file:
        doc = tomllib.load(file)
    first = parse_policy(doc, source="v1")
    later = dict(doc)
    later["meta"] = {"version": "supervision/2031-01-01", "effective_from": date(2031, 1, 1)}
    later["high_cost"] = {**doc["high_cost"], "thresholds": ["20000.00"]}
    second = parse_policy(later, source="v2")
    supervision = reporting._transport.app.state.supervision
    previous = supervision.book
    supervision.book = SupervisionBook([first, second])
    try:
        old, new = uid("P"), uid("P")
        await settle(reporting, day=date(2030, 12, 31), psn_no=old, psn_pay="15000.00", aid_categories=["dibao"])
        await settle(reporting, day=date(2031, 1, 2), psn_no=new, psn_pay="15000.00", aid_categories=["dibao"])
        [raised] = await rule_alerts(reporting, "high_cost.burden", old)
        assert raised["rule_version"] == "supervision/2022-01-01" and raised["facts"]["threshold"] == "10000.00"
        assert await rule_alerts(reporting, "high_cost.burden", new) == []  # 15,000 is below 20,000 in 2031
        await settle(reporting, day=date(2031, 1, 3), psn_no=new, psn_pay="5000.00", aid_categories=["dibao"])
        [later_alert] = await rule_alerts(reporting, "high_cost.burden", new)
        assert later_alert["rule_version"] == "supervision/2031-01-01"
        assert later_alert["facts"]["threshold"] == "20000.00"
    finally:
        supervision.book = previous
