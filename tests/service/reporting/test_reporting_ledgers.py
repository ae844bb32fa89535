"""附件3 (COVID case ledger: published cases, cutoff, masking) and 附件4 (special prepayments, 17:00 cutoff)."""

from __future__ import annotations

from datetime import timedelta

from reporting_support import ADMIN, HIS, OPS, at, case, feed, fresh_area, fresh_day, prepayment, uid, workbook

from shared.events.topics import COVID_CASE_REGISTERED, INSTITUTION_CHANGED, PREPAYMENT_DISBURSED


async def _ledger(reporting, day, headers, fmt="json"):
    response = await reporting.get(
        "/v1/reports/covid-ledger", params={"date": day.isoformat(), "format": fmt}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def test_case_ledger_lists_published_cases_up_to_the_cutoff_masked_for_ops(reporting):
    filing = fresh_day()
    cutoff_day = filing - timedelta(days=1)
    psn = uid("P")
    shown = case(psn_no=psn, diagnosed_at=at(cutoff_day, 16, 59), name="欧阳明月", certno="62100219800101123X")
    ids = {"shown": shown["case_id"]}
    await feed(reporting, COVID_CASE_REGISTERED, shown)
    later = case(psn_no=uid("P"), diagnosed_at=at(cutoff_day, 17, 1))
    unpublished = case(psn_no=uid("P"), published=False, diagnosed_at=at(cutoff_day, 9))
    excluded = case(psn_no=uid("P"), diagnosed_at=at(cutoff_day, 9))
    for payload in (later, unpublished, excluded):
        await feed(reporting, COVID_CASE_REGISTERED, payload)
    await feed(reporting, COVID_CASE_REGISTERED, {**excluded, "status": "excluded", "version": 2})
    # an update that arrives late (older version) changes nothing
    await feed(reporting, COVID_CASE_REGISTERED, {**shown, "status": "suspected", "version": 0})
    ids.update(later=later["case_id"], unpublished=unpublished["case_id"], excluded=excluded["case_id"])

    admin = (await _ledger(reporting, filing, ADMIN)).json()
    ops = (await _ledger(reporting, filing, OPS)).json()
    assert admin["cutoff"] == f"{cutoff_day.isoformat()}T17:00:00+08:00"
    mine = {item["case_id"]: item for item in admin["items"] if item["case_id"] in ids.values()}
    assert set(mine) == {ids["shown"]}
    full = mine[ids["shown"]]
    assert (full["psn_name"], full["certno"], full["psn_no"]) == ("欧阳明月", "62100219800101123X", psn)
    assert (full["status"], full["gend"], full["age"], full["admission_date"]) == (
        "confirmed",
        "1",
        cutoff_day.year - 1980 - ((cutoff_day.month, cutoff_day.day) < (1, 1)),
        cutoff_day.isoformat(),
    )
    masked = next(item for item in ops["items"] if item["case_id"] == ids["shown"])
    assert masked["psn_name"] == "欧***" and masked["certno"] == "621002********123X"
    assert "psn_no" not in masked and ops["masked"] is True and admin["masked"] is False

    sheet = workbook((await _ledger(reporting, filing, OPS, "xlsx")).content).active
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A4:A5", "H4:I4", "D4:D5"} <= merged
    assert [sheet.cell(row=4, column=c).value for c in (1, 4, 8, 10, 11, 12)] == [
        "姓名",
        "身份证号",
        "参保险种",
        "参保地",
        "疑似",
        "确诊",
    ]
    assert (sheet["H5"].value, sheet["I5"].value) == ("职工医保", "居民医保")
    rows = [[sheet.cell(row=r, column=c).value for c in range(1, 13)] for r in range(6, sheet.max_row + 1)]
    ours = [r for r in rows if r[3] == "621002********123X"]
    assert len(ours) == 1 and ours[0][0] == "欧***" and ours[0][7] == "√" and ours[0][11] == "√"
    assert not any("欧阳明月" in str(v) or "62100219800101123X" in str(v) for r in rows for v in r)
    # the next filing day sees the case diagnosed at 17:01 as well
    following = (await _ledger(reporting, filing + timedelta(days=1), OPS)).json()
    assert ids["later"] in {item["case_id"] for item in following["items"]}


async def test_case_ledger_is_not_for_institutions(reporting):
    response = await reporting.get("/v1/reports/covid-ledger", params={"date": "2024-01-02"}, headers=HIS)
    assert response.status_code == 403


async def test_prepayment_table_cutoff_is_17_the_day_before(reporting):
    filing = fresh_day()
    day_before = filing - timedelta(days=1)
    area = await fresh_area(reporting)  # the area's row of 附件4 is this test's data alone
    code = uid("HP")
    await feed(
        reporting,
        INSTITUTION_CHANGED,
        {
            "fixmedins_code": code,
            "fixmedins_name": "测试定点医院",
            "kind": "hospital",
            "level": 2,
            "affiliation": "county",
            "admdvs": area,
            "suspended": False,
            "version": 1,
        },
    )
    events = [  # (amount, kind, disbursed_on, recorded at)
        ("1000000.00", "covid_special", day_before, at(day_before, 16, 59)),  # in: before 17:00
        ("30000000.00", "top_up", day_before, at(day_before, 17, 1)),  # out: after 17:00 → the next filing
        ("250000.00", "covid_special", day_before - timedelta(days=3), at(filing, 9)),  # back-dated: its day counts
        ("777.00", "annual_turnover", day_before, at(day_before, 9)),  # not a special prepayment
        ("5.55", "covid_special", filing, at(filing, 8)),  # today's: not yet
    ]
    for amount, kind, disbursed_on, recorded in events:
        await feed(
            reporting,
            PREPAYMENT_DISBURSED,
            prepayment(admdvs=area, amount=amount, kind=kind, disbursed_on=disbursed_on, fixmedins_code=code),
            key=code,
            occurred_at=recorded,
        )

    async def table(day):
        response = await reporting.get("/v1/reports/prepayments", params={"date": day.isoformat()}, headers=OPS)
        assert response.status_code == 200, response.text
        body = response.json()
        return body, next(r for r in body["rows"] if r["admdvs"] == area)

    body, ours = await table(filing)
    assert body["cutoff"] == f"{day_before.isoformat()}T17:00:00+08:00"
    assert (ours["amount"], ours["covid_special"], ours["top_up"], ours["count"]) == (
        "1250000.00",
        "1250000.00",
        "0.00",
        2,
    )
    _, earlier = await table(day_before)
    assert earlier["amount"] == "250000.00"  # only the back-dated one was before 17:00 two days back
    _, following = await table(filing + timedelta(days=1))
    assert (following["amount"], following["top_up"]) == ("31250005.55", "30000000.00")
    _, empty = await table(filing - timedelta(days=30))  # the area's hospital gives a zero row
    assert empty["amount"] == "0.00"

    response = await reporting.get(
        "/v1/reports/prepayments", params={"date": filing.isoformat(), "format": "xlsx"}, headers=OPS
    )
    sheet = workbook(response.content).active
    assert sheet["A1"].value.endswith("医保专项预付金拨付情况表") and sheet["C2"].value == "单位:万元"
    assert [sheet.cell(row=4, column=c).value for c in (1, 2)] == ["统筹区", "累计预付金额"]
    line = next(r for r in range(5, sheet.max_row + 1) if sheet.cell(row=r, column=1).value == area)
    assert [sheet.cell(row=line, column=c).value for c in (2, 3, 4)] == [125, 125, 0]
    assert sheet.cell(row=line, column=2).number_format == "0.0000"
