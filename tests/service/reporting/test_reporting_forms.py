"""The official layouts: 附件2 as xlsx (merged headers, 万元 with four decimals, filing lines) and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from reporting_support import ADMIN, OPS, fresh_day, settle, settle_ordinary, workbook

from services.reporting.domain import area_name

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _daily(reporting, day, fmt, **params):
    response = await reporting.get(
        "/v1/reports/daily", params={"date": day.isoformat(), "format": fmt, **params}, headers=OPS
    )
    assert response.status_code == 200, response.text
    return response


async def test_daily_xlsx_is_laid_out_like_the_form(reporting):
    day = fresh_day()
    await settle(
        reporting,
        day=day,
        covid="confirmed",
        origin="local",
        insutype="310",
        medfee="12345.67",
        hifp="8000.00",
        hifmi="1234.56",
        maf="100.00",
    )
    await settle(
        reporting,
        day=day,
        covid="suspected",
        origin="other_province",
        insutype="390",
        medfee="50.00",
        hifp="20.00",
        hifmi="0.00",
        maf="0.00",
    )
    response = await _daily(reporting, day, "xlsx")
    assert response.headers["content-type"] == XLSX
    assert f'filename="daily-{day.isoformat()}.xlsx"' in response.headers["content-disposition"]
    sheet = workbook(response.content).active

    assert sheet["A1"].value.endswith("新型冠状病毒感染的肺炎参保患者门诊和住院医疗费用情况表")
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert "A1:I1" in merged
    assert sheet["A2"].value.startswith("填报单位(盖章):")
    filed = day + timedelta(days=1)
    assert sheet["E2"].value == f"填报日期:{filed.year}年{filed.month}月{filed.day}日"
    assert "万元" in sheet["H2"].value
    header = [sheet.cell(row=4, column=c).value for c in range(1, 10)]
    assert header == [
        "项 目",
        None,
        None,
        "当日结算人数",
        "医疗总费用",
        "基本医保支付",
        "大病保险支付",
        "医疗救助支付",
        "应由个人负担的费用",
    ]
    assert {"A4:C4", "A5:A10", "A11:A16", "B5:B6", "B7:B8", "B9:B10", "B15:B16", "A17:C17"} <= merged
    assert (sheet["A5"].value, sheet["B5"].value, sheet["C5"].value) == ("确诊病例", "本市参保患者", "职工医保")
    assert (sheet["B7"].value, sheet["B9"].value, sheet["C10"].value) == (
        "收治省内其它市州参保患者",
        "收治外省参保患者",
        "居民医保",
    )
    assert sheet["A11"].value == "疑似病例" and sheet["A17"].value == "合 计"
    # 万元 with four decimals: 12345.67 yuan → 1.2346; 1234.56 → 0.1235; burden 3011.11 → 0.3011
    assert [sheet.cell(row=5, column=c).value for c in range(4, 10)] == [1, 1.2346, 0.8, 0.1235, 0.01, 0.3011]
    assert all(sheet.cell(row=5, column=c).number_format == "0.0000" for c in range(5, 10))
    assert [sheet.cell(row=16, column=c).value for c in range(4, 10)] == [1, 0.005, 0.002, 0, 0, 0.003]
    assert [sheet.cell(row=17, column=c).value for c in range(4, 10)] == [2, 1.2396, 0.802, 0.1235, 0.01, 0.3041]
    assert sheet.cell(row=6, column=4).value == 0 and sheet.cell(row=6, column=5).value == 0  # zero rows kept
    assert sheet["A18"].value.startswith("填表人:")
    assert any("可以零报告" in (sheet.cell(row=r, column=1).value or "") for r in range(19, 23))


async def test_cumulative_xlsx_says_so(reporting):
    day = fresh_day()
    response = await _daily(reporting, day, "xlsx", cumulative="true")
    sheet = workbook(response.content).active
    assert sheet["D4"].value == "累计结算人数"
    assert "累计" in sheet["A3"].value


async def test_daily_csv_has_a_bom_and_the_same_grid(reporting):
    day = fresh_day()
    await settle(
        reporting,
        day=day,
        covid="confirmed",
        origin="province",
        insutype="390",
        medfee="100.00",
        hifp="60.00",
        hifmi="0.00",
        maf="10.00",
    )
    response = await _daily(reporting, day, "csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0].endswith("情况表")
    assert rows[3][:4] == ["项 目", "", "", "当日结算人数"]
    province_employee, province_resident = rows[6], rows[7]
    assert province_employee[:3] == ["", "收治省内其它市州参保患者", "职工医保"]
    assert province_resident[2:] == ["居民医保", "1", "0.0100", "0.0060", "0.0000", "0.0010", "0.0030"]
    assert rows[16][0] == "合 计" and rows[16][3:] == ["1", "0.0100", "0.0060", "0.0000", "0.0010", "0.0030"]


async def test_every_report_renders_in_every_format(reporting):
    day = fresh_day()
    await settle_ordinary(reporting, day=day, two_disease="diabetes", med_type="14", medfee="200.00", hifp="100.00")
    for path, params in (
        ("/v1/reports/covid-ledger", {"date": day.isoformat()}),
        ("/v1/reports/prepayments", {"date": day.isoformat()}),
        ("/v1/reports/two-diseases", {"month": day.isoformat()[:7]}),
        ("/v1/reports/indicators", {"year": str(day.year)}),
    ):
        for fmt in ("json", "csv", "xlsx"):
            response = await reporting.get(path, params={**params, "format": fmt}, headers=ADMIN)
            assert response.status_code == 200, (path, fmt, response.text)
            if fmt == "xlsx":
                sheet = workbook(response.content).active
                assert sheet["A1"].value and "A1:" in " ".join(str(r) for r in sheet.merged_cells.ranges)
            if fmt == "csv":
                assert response.content.startswith(b"\xef\xbb\xbf")


async def test_a_report_of_a_pooling_area_says_so_in_its_title_and_the_bureaus_in_json_and_file_name(reporting):
    """Every report filtered by area names it in the form's title; the bureau's reports (附件2/3/4, the statistics)
    also in the JSON (`area` with its name) and in the file name, supervision's lists in neither (their JSON says
    the area as they read it)."""
    day = fresh_day()
    area, title = {"admdvs": "621000", "rollup": True}, area_name("621000") + "(含所辖县区)"
    on_day, in_month = {"date": day.isoformat()}, {"month": day.isoformat()[:7]}
    for path, params, stem, named in (
        ("/v1/reports/daily", on_day, f"daily-{day.isoformat()}", True),
        ("/v1/reports/covid-ledger", on_day, f"covid-ledger-{day.isoformat()}", True),
        ("/v1/reports/prepayments", on_day, f"prepayments-{day.isoformat()}", True),
        ("/v1/reports/two-diseases", in_month, f"two-diseases-{in_month['month']}", True),
        ("/v1/reports/indicators", {"year": str(day.year)}, f"indicators-{day.year}", True),
        ("/v1/reports/watched-prices", on_day, f"watched-prices-{day.isoformat()}", False),
        ("/v1/reports/watched-sales", on_day, f"watched-sales-{day.isoformat()}", False),
        ("/v1/reports/institution-indicators", in_month, f"institution-indicators-{in_month['month']}", False),
        ("/v1/alerts", {}, "alerts", False),
    ):
        query = {**params, "admdvs": "621000", "rollup": "true"}
        body = (await reporting.get(path, params=query, headers=ADMIN)).json()
        if path == "/v1/alerts":
            assert "area" not in body, body
        else:
            assert body["area"] == ({**area, "area_name": area_name("621000")} if named else area), (path, body)
        book = await reporting.get(path, params={**query, "format": "xlsx"}, headers=ADMIN)
        assert book.status_code == 200, (path, book.text)
        name = f"{stem}-621000.xlsx" if named else f"{stem}.xlsx"
        assert book.headers["content-disposition"] == f'attachment; filename="{name}"', path
        assert workbook(book.content).active["A1"].value.startswith(title), path
        plain = await reporting.get(path, params={**params, "format": "xlsx"}, headers=ADMIN)
        assert not workbook(plain.content).active["A1"].value.startswith(title), path
