"""County filing (DOMAIN §10, §13): reports filtered by pooling area (a county, the city level, the city with its
counties), a filing record per report, day and area (who filled it in, who approved, when), and an alert when a
county's daily report is not filed by 08:30 of the next day — with the service's clock set by the test."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, time, timedelta

from alerts_support import alerts_about
from reporting_support import ADMIN, OPS, daily, feed, fresh_day, prepayment, settled

from shared.events.envelope import BUSINESS_TZ
from shared.events.topics import PREPAYMENT_DISBURSED, SETTLED

AREAS = ("621000", "621002", "621021", "621022", "621023", "621024", "621025", "621026", "621027")


@contextmanager
def clock(reporting, moment: datetime):
    """The reporting service's supervision clock, set to `moment` for the block."""
    supervision = reporting._transport.app.state.supervision
    previous = supervision.clock
    supervision.clock = lambda: moment
    try:
        yield
    finally:
        supervision.clock = previous


def on(day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BUSINESS_TZ)


async def _file(reporting, day, admdvs: str, *, filled_by: str = "张三", approved_by: str = "李四", report="daily"):
    return await reporting.post(
        "/v1/filings",
        json={
            "report": report,
            "date": day.isoformat(),
            "admdvs": admdvs,
            "filled_by": filled_by,
            "approved_by": approved_by,
        },
        headers=ADMIN,
    )


async def _check(reporting, day) -> int:
    response = await reporting.post(
        "/v1/alerts/checks", json={"check": "filing", "date": day.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    return response.json()["raised"]


async def _late(reporting, day) -> dict[str, dict]:
    found = await alerts_about(reporting, "daily:", kind="filing")
    return {a["admdvs"]: a for a in found if a["window"]["start"] == day.isoformat()}


async def test_a_county_not_filed_by_0830_raises_an_alert_that_filing_closes(reporting):
    day = fresh_day()
    following = day + timedelta(days=1)
    with clock(reporting, on(following, 8, 0)):
        filed = await _file(reporting, day, "621002")
        assert filed.status_code == 201, filed.text
        assert filed.json()["on_time"] is True and filed.json()["filled_by"] == "张三"
    with clock(
        reporting,
        on(
            following,
            8,
            29,
        ),
    ):
        assert await _check(reporting, day) == 0  # before the deadline: nothing is late yet
        listing = (await reporting.get("/v1/filings", params={"date": day.isoformat()}, headers=OPS)).json()
        assert {i["admdvs"]: i["status"] for i in listing["items"]}["621021"] == "due"
    with clock(reporting, on(following, 8, 30)):
        assert await _check(reporting, day) in (8, 0)  # 0 when the service's own round came first
        assert await _check(reporting, day) == 0  # the same facts never raise twice
    late = await _late(reporting, day)
    assert set(late) == set(AREAS) - {"621002"}
    alert = late["621021"]
    assert alert["kind"] == "filing" and alert["rule"] == "filing.late" and alert["status"] == "open"
    assert alert["facts"]["deadline"] == on(following, 8, 30).isoformat() and alert["facts"]["area_name"] == "庆城县"

    with clock(reporting, on(following, 9, 15)):
        filed = await _file(reporting, day, "621021", filled_by="王五", approved_by="赵六")
        assert filed.status_code == 201 and filed.json()["on_time"] is False
    closed = (await _late(reporting, day))["621021"]
    assert (closed["status"], closed["resolution"], closed["resolved_by"]) == ("resolved", "filed", "system")
    assert "王五" in closed["note"]

    again = await _file(reporting, day, "621021", filled_by="王五", approved_by="赵六")
    assert again.status_code == 200 and again.json()["filled_by"] == "王五"
    other = await _file(reporting, day, "621021", filled_by="别人")
    assert other.status_code == 409 and other.json()["code"] == "ALREADY_FILED"
    listing = (await reporting.get("/v1/filings", params={"date": day.isoformat()}, headers=OPS)).json()
    statuses = {i["admdvs"]: i["status"] for i in listing["items"]}
    assert (statuses["621002"], statuses["621021"], statuses["621027"]) == ("filed", "late", "missing")


async def test_filing_is_for_admin_and_checks_its_input(reporting):
    day = fresh_day()
    refused = await reporting.post(
        "/v1/filings",
        json={"report": "daily", "date": day.isoformat(), "admdvs": "621002", "filled_by": "a", "approved_by": "b"},
        headers=OPS,
    )
    assert refused.status_code == 403
    for bad in ({"admdvs": "62100"}, {"report": "weekly"}, {"filled_by": ""}, {"date": "2024-02-30"}):
        body = {"report": "daily", "date": day.isoformat(), "admdvs": "621002", "filled_by": "a", "approved_by": "b"}
        response = await reporting.post("/v1/filings", json={**body, **bad}, headers=ADMIN)
        assert response.status_code == 422, (bad, response.text)
    assert (await reporting.get("/v1/filings", params={"date": day.isoformat()}, headers=OPS)).json()["items"][0][
        "status"
    ] in ("missing", "due")


async def test_reports_by_pooling_area_county_city_and_roll_up(reporting):
    day = fresh_day()
    for admdvs, medfee in (("621000", "100.00"), ("621002", "200.00"), ("621021", "400.00"), ("610100", "800.00")):
        payload = settled(day=day, medfee=medfee, hifp="10.00", hifmi="0.00", maf="0.00")
        payload["fixmedins_admdvs"] = admdvs
        await feed(reporting, SETTLED, payload)

    async def total(**params) -> str:
        response = await reporting.get("/v1/reports/daily", params={"date": day.isoformat(), **params}, headers=OPS)
        assert response.status_code == 200, response.text
        return response.json()["total"]["medfee_sumamt"]

    assert (await daily(reporting, day))["total"]["medfee_sumamt"] == "1500.00"
    assert await total(admdvs="621002") == "200.00"  # a county
    assert await total(admdvs="621000") == "100.00"  # the city level alone
    assert await total(admdvs="621000", rollup="true") == "700.00"  # the city with its counties
    assert await total(admdvs="621002", rollup="true") == "200.00"
    assert await total(admdvs="620000", rollup="true") == "700.00"  # the province
    filtered = await reporting.get(
        "/v1/reports/daily", params={"date": day.isoformat(), "admdvs": "621021"}, headers=OPS
    )
    assert filtered.json()["area"] == {"admdvs": "621021", "rollup": False, "area_name": "庆城县"}
    book = await reporting.get(
        "/v1/reports/daily", params={"date": day.isoformat(), "admdvs": "621021", "format": "xlsx"}, headers=OPS
    )
    assert book.headers["content-disposition"].endswith(f'daily-{day.isoformat()}-621021.xlsx"')
    bad = await reporting.get("/v1/reports/daily", params={"date": day.isoformat(), "admdvs": "6210"}, headers=OPS)
    assert bad.status_code == 422


async def test_the_prepayment_table_by_pooling_area(reporting):
    day = fresh_day()
    for admdvs in ("621002", "621021"):
        await feed(reporting, PREPAYMENT_DISBURSED, prepayment(admdvs=admdvs, amount="1000.00", disbursed_on=day))
    filing_date = (day + timedelta(days=2)).isoformat()
    response = await reporting.get(
        "/v1/reports/prepayments", params={"date": filing_date, "admdvs": "621021"}, headers=OPS
    )
    assert [r["admdvs"] for r in response.json()["rows"]] == ["621021"]
