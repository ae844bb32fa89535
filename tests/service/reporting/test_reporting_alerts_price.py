"""Price and sales watch of the watched goods (DOMAIN §13): a unit price above its monitoring cap, or above 120 % of
the median of the same code at the same institution over the previous 14 days (at least 5 lines) — each at the
threshold and just below; the day's prices and the pharmacies' sales per district as reports (JSON, xlsx)."""

from __future__ import annotations

from datetime import timedelta

from alerts_support import line, reverse, rule_alerts, settle
from reporting_support import OPS, fresh_area, fresh_day, uid, workbook

IBU = {"watched": True, "category": "drug", "essential": True, "name": "布洛芬缓释胶囊"}


async def test_a_price_above_the_monitoring_cap(reporting):
    day = fresh_day()
    code = uid("HP")
    await settle(reporting, day=day, fixmedins_code=code, lines=[line("OTC-IBU", "30.00", "2", day=day, **IBU)])
    await settle(reporting, day=day, fixmedins_code=code, lines=[line("OTC-IBU", "31.00", day=day)])  # not watched
    assert await rule_alerts(reporting, "price.cap", code) == []  # 30.00 is the cap: not above it
    above = await settle(
        reporting,
        day=day,
        fixmedins_code=code,
        fixmedins_admdvs="621024",
        lines=[line("OTC-IBU", "30.01", day=day, **IBU), line("OTC-IBU", "29.00", day=day, **IBU)],
    )
    [alert] = await rule_alerts(reporting, "price.cap", code)
    assert alert["kind"] == "price" and alert["subject"] == f"OTC-IBU@{code}"
    assert alert["fixmedins_code"] == code and alert["admdvs"] == "621024" and alert["psn_no"] is None
    facts = alert["facts"]
    assert (facts["pric"], facts["cap"], facts["day"], facts["setl_id"]) == (
        "30.01",
        "30.00",
        day.isoformat(),
        above["setl_id"],
    )
    await settle(reporting, day=day, fixmedins_code=code, lines=[line("OTC-IBU", "35.00", day=day, **IBU)])
    assert len(await rule_alerts(reporting, "price.cap", code)) == 1  # one alert per code, institution and day

    await reverse(reporting, above)  # 35.00 is still above the cap that day
    assert (await rule_alerts(reporting, "price.cap", code))[0]["status"] == "open"


async def test_a_reversal_withdraws_a_price_alert_that_no_longer_holds(reporting):
    day = fresh_day()
    code = uid("HP")
    above = await settle(
        reporting,
        day=day,
        fixmedins_code=code,
        lines=[line("MASK-SURG", "1.50", "10", day=day, watched=True, category="material")],
    )
    [alert] = await rule_alerts(reporting, "price.cap", code)
    await reverse(reporting, above, day=day + timedelta(days=1))
    [withdrawn] = await rule_alerts(reporting, "price.cap", code)
    assert withdrawn["alert_id"] == alert["alert_id"] and withdrawn["resolution"] == "withdrawn"


async def _baseline(reporting, code: str, day, prices: list[str]) -> None:
    """Lines of OTC-APAP at `code` on the days before `day` (one a day, oldest first)."""
    for n, price in enumerate(prices):
        when = day - timedelta(days=len(prices) - n)
        await settle(
            reporting,
            day=when,
            fixmedins_code=code,
            lines=[line("OTC-APAP", price, day=when, watched=True, category="drug")],
        )


async def test_a_rise_above_120_percent_of_the_median_of_the_previous_14_days(reporting):
    day = fresh_day(20)
    code, thin = uid("HP"), uid("HP")
    await _baseline(reporting, code, day, ["9.00", "10.00", "10.00", "11.00", "15.00", "10.50"])  # median 10.25
    await _baseline(reporting, thin, day, ["10.00", "10.00", "10.00", "10.00"])  # 4 lines: no baseline
    old = day - timedelta(days=15)  # outside the 14 days: left out of the median
    await settle(reporting, day=old, fixmedins_code=code, lines=[line("OTC-APAP", "1.00", day=old, watched=True)])
    await settle(
        reporting, day=day, fixmedins_code=code, lines=[line("OTC-APAP", "12.30", day=day, watched=True)]
    )  # 1.2 × 10.25 = 12.30
    await settle(reporting, day=day, fixmedins_code=thin, lines=[line("OTC-APAP", "19.00", day=day, watched=True)])
    assert await rule_alerts(reporting, "price.rise", code) == []
    assert await rule_alerts(reporting, "price.rise", thin) == []
    await settle(reporting, day=day, fixmedins_code=code, lines=[line("OTC-APAP", "12.31", day=day, watched=True)])
    [alert] = await rule_alerts(reporting, "price.rise", code)
    facts = alert["facts"]
    assert (facts["median"], facts["threshold"], facts["baseline_lines"], facts["pric"]) == (
        "10.250",
        "12.3000",
        6,
        "12.31",
    )
    assert facts["baseline_from"] == (day - timedelta(days=14)).isoformat()
    assert await rule_alerts(reporting, "price.cap", code) == []  # 12.31 is below the cap of 20.00


async def test_prices_and_pharmacy_sales_of_the_day(reporting):
    day = fresh_day()
    area = await fresh_area(reporting)
    pharmacy, other, hospital = uid("PX"), uid("PX"), uid("HX")
    common = {"day": day, "fixmedins_admdvs": area, "kind": "pharmacy", "med_type": "41"}
    await settle(
        reporting,
        fixmedins_code=pharmacy,
        retail_purchase=True,
        lines=[line("OTC-IBU", "28.00", "2", day=day, **IBU), line("YP-X", "5.00", day=day)],
        **common,
    )
    sold = await settle(reporting, fixmedins_code=pharmacy, lines=[line("OTC-IBU", "26.00", day=day, **IBU)], **common)
    await settle(
        reporting, fixmedins_code=other, lines=[line("MASK-N95", "4.00", "10", day=day, watched=True)], **common
    )
    gone = await settle(
        reporting, fixmedins_code=other, lines=[line("MASK-N95", "4.00", "5", day=day, watched=True)], **common
    )
    await reverse(reporting, gone)
    await settle(
        reporting,
        day=day,
        fixmedins_code=hospital,
        fixmedins_admdvs=area,
        lines=[line("OTC-IBU", "27.00", day=day, **IBU)],
    )  # a hospital: a price, not a pharmacy sale

    sales = (
        await reporting.get("/v1/reports/watched-sales", params={"date": day.isoformat(), "admdvs": area}, headers=OPS)
    ).json()
    assert [
        (i["fixmedins_code"], i["med_list_codg"], i["quantity"], i["amount"], i["settlements"]) for i in sales["items"]
    ] == sorted(
        [
            (pharmacy, "OTC-IBU", "3", "82.00", 2),
            (other, "MASK-N95", "10", "40.00", 1),
        ]
    )
    assert sales["districts"] == [
        {"admdvs": area, "area_name": area, "pharmacies": 2, "quantity": "13", "amount": "122.00"}
    ]
    prices = (
        await reporting.get("/v1/reports/watched-prices", params={"date": day.isoformat(), "admdvs": area}, headers=OPS)
    ).json()
    ibu = {i["fixmedins_code"]: i for i in prices["items"] if i["med_list_codg"] == "OTC-IBU"}
    assert (ibu[pharmacy]["lowest_pric"], ibu[pharmacy]["average_pric"], ibu[pharmacy]["highest_pric"]) == (
        "26.00",
        "27.33",
        "28.00",
    )
    assert ibu[pharmacy]["cap"] == "30.00" and not ibu[pharmacy]["above_cap"] and hospital in ibu
    assert sold["setl_id"]
    book = await reporting.get(
        "/v1/reports/watched-sales", params={"date": day.isoformat(), "admdvs": area, "format": "xlsx"}, headers=OPS
    )
    assert book.status_code == 200 and "watched-sales" in book.headers["content-disposition"]
    sheet = workbook(book.content).active
    assert sheet["A3"].value == "统筹区" and sheet["A4"].value == area and sheet.max_row == 6
    amount, quantity = sheet["H4"], sheet["G4"]  # yuan with two decimals, exact (Decimal, never float)
    assert amount.number_format == "0.00" and quantity.number_format == "General"
    assert isinstance(amount.value, (int, float)) and amount.value > 0
