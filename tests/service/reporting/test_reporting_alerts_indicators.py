"""Institution warnings (seed 002, DOMAIN §13): each monthly indicator at its threshold and just past it, the
min-settlements rule, the aid recipients' yearly share (≤ 10 %, not above the year before), withdrawal when a
reversal changes a month; the report that shows them per institution."""

from __future__ import annotations

from datetime import date

from alerts_support import alerts_about, line, reverse, settle
from reporting_support import ADMIN, OPS, fresh_day, uid, workbook


def _outpatient(day: date, code: str, *, exam: str, treat: str, essential: str, other: str, **extra) -> dict:
    return {
        "day": day,
        "fixmedins_code": code,
        "level": 2,
        "lines": [
            line("JC-CT", exam, day=day, category="examination"),
            line("XM-GHF", treat, day=day, category="treatment"),
            line("YP-NFDP", essential, day=day, category="drug", essential=True),
            line("YP-TZ", other, day=day, category="drug"),
        ],
        **extra,
    }


async def _check(reporting, day: date) -> dict:
    response = await reporting.post(
        "/v1/alerts/checks", json={"check": "indicators", "month": f"{day:%Y-%m}"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_share_at_its_threshold_and_just_past_it(reporting):
    day = fresh_day()
    at, past, few = uid("HA"), uid("HB"), uid("HC")
    usual = {"exam": "60.00", "treat": "120.00", "essential": "16.00", "other": "4.00"}
    for _ in range(5):  # exam 30 %, personal share 20 %, class C 10 %, essential drugs 80 % of drug cost
        await settle(reporting, **_outpatient(day, at, psn_pay="40.00", fulamt_ownpay="20.00", **usual))
    for _ in range(4):
        await settle(reporting, **_outpatient(day, past, psn_pay="40.00", fulamt_ownpay="20.00", **usual))
    tipping = await settle(
        reporting,
        **_outpatient(
            day,
            past,
            exam="60.01",
            treat="119.98",
            essential="15.99",
            other="4.02",
            psn_pay="40.01",
            fulamt_ownpay="20.01",
        ),
    )
    for _ in range(4):  # four settlements: not judged, whatever they show
        await settle(reporting, **_outpatient(day, few, exam="200.00", treat="0.01", essential="0.01", other="5.00"))

    await _check(reporting, day)
    for code in (at, few):
        assert [a["rule"] for a in await alerts_at(reporting, code)] == []
    raised = {a["rule"]: a for a in await alerts_at(reporting, past)}
    assert set(raised) == {
        "indicator.exam_share",
        "indicator.self_pay_share",
        "indicator.outside_catalogue_share",
        "indicator.essential_drug_share",
    }
    exam = raised["indicator.exam_share"]
    assert exam["kind"] == "indicator" and exam["fixmedins_code"] == past and exam["admdvs"] == "621000"
    assert exam["facts"]["value"] == "0.3000" and exam["facts"]["threshold"] == "0.30"
    assert exam["facts"]["month"] == f"{day:%Y-%m}" and exam["window"]["start"] == f"{day:%Y-%m}-01"
    assert raised["indicator.essential_drug_share"]["facts"]["threshold"] == "0.80"  # level 2

    again = await _check(reporting, day)  # the same month again: nothing new
    assert len(await alerts_at(reporting, past)) == 4 and again["raised"] >= 0
    report = (
        await reporting.get("/v1/reports/institution-indicators", params={"month": f"{day:%Y-%m}"}, headers=OPS)
    ).json()
    item = next(i for i in report["items"] if i["fixmedins_code"] == past)
    flagged = {i["indicator"] for i in item["indicators"] if i["flagged"]}
    assert flagged == {"exam_share", "self_pay_share", "outside_catalogue_share", "essential_drug_share"}
    assert next(i for i in report["items"] if i["fixmedins_code"] == few)["judged"] is False

    await reverse(reporting, tipping)  # four settlements left: not judged any more
    await _check(reporting, day)
    assert {a["status"] for a in await alerts_at(reporting, past)} == {"resolved"}
    assert {a["resolution"] for a in await alerts_at(reporting, past)} == {"withdrawn"}


async def alerts_at(reporting, code: str) -> list[dict]:
    return await alerts_about(reporting, code, kind="indicator")


async def test_cost_per_visit_growth_over_the_same_month_a_year_before(reporting):
    day = fresh_day()
    year_before = date(day.year - 1, day.month, min(day.day, 28))
    at, past = uid("HG"), uid("HG")
    for code in (at, past):
        for _ in range(5):
            await settle(
                reporting,
                day=year_before,
                fixmedins_code=code,
                lines=[line("XM-GHF", "200.00", day=year_before, category="treatment")],
            )
        for _ in range(4):
            await settle(
                reporting, day=day, fixmedins_code=code, lines=[line("XM-GHF", "220.00", day=day, category="treatment")]
            )
    await settle(reporting, day=day, fixmedins_code=at, lines=[line("XM-GHF", "220.00", day=day)])  # +10.00 %
    await settle(reporting, day=day, fixmedins_code=past, lines=[line("XM-GHF", "220.05", day=day)])  # +10.005 %
    await _check(reporting, day)
    assert await alerts_at(reporting, at) == []
    [alert] = await alerts_at(reporting, past)
    assert alert["rule"] == "indicator.cost_growth_outpatient" and alert["facts"]["value"] == "0.1001"


async def test_aid_recipients_yearly_self_pay_share_in_county_hospitals(reporting):
    day = fresh_day()
    at, past, rising = uid("HY"), uid("HY"), uid("HY")
    county = {"affiliation": "county", "med_type": "21", "aid_category": "dibao", "aid_categories": ["dibao"]}

    async def stay(code: str, when: date, burden: str, **extra) -> None:
        await settle(reporting, day=when, fixmedins_code=code, psn_pay=burden, medfee="1000.00", **county, **extra)

    await stay(at, day, "100.00")  # 10 %
    await stay(past, day, "100.01")
    await stay(rising, date(day.year - 1, 6, 1), "50.00")  # 5 % the year before …
    await stay(rising, day, "80.00")  # … 8 % now: below 10 % but above last year's
    await _check(reporting, day)
    assert await alerts_at(reporting, at) == []
    [alert] = await alerts_at(reporting, past)
    assert alert["rule"] == "indicator.aid_self_pay_share" and alert["facts"]["value"] == "0.1000"
    assert alert["window"] == {"start": f"{day.year}-01-01", "end": f"{day.year}-12-31"}
    [rise] = await alerts_at(reporting, rising)
    assert rise["facts"]["previous_year"] == "0.0500" and rise["facts"]["value"] == "0.0800"


async def test_the_monthly_indicators_as_xlsx(reporting):
    day = fresh_day()
    code = uid("HX")
    for _ in range(5):
        await settle(
            reporting, day=day, fixmedins_code=code, lines=[line("JC-CT", "100.00", day=day, category="examination")]
        )
    book = await reporting.get(
        "/v1/reports/institution-indicators", params={"month": f"{day:%Y-%m}", "format": "xlsx"}, headers=OPS
    )
    assert book.status_code == 200, book.text
    sheet = workbook(book.content).active
    row = next(r for r in sheet.iter_rows(values_only=True) if r[0] == code)
    assert row[4 + 3] == "100.00% *"  # the examination share, flagged
