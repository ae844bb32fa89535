"""Civil affairs' bulk import of identities (POST /v1/aid-identities/imports, issue 16): a file with good rows and bad
ones applies the good ones once (importing it again changes nothing and announces nothing) and reports each bad row
with its reason; CSV (UTF-8 or GB18030) and xlsx; 防返贫监测对象 (`monitored`) reaches the snapshot."""

from __future__ import annotations

import csv
import io

from eligibility_support import ADMIN

from shared.testing import OPS_KEY, fetchval

URL = "/v1/aid-identities/imports"
CSV = {"Content-Type": "text/csv", **ADMIN}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _csv(rows: list[list[str]], header: list[str] | None = None, encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header or ["操作", "身份证号", "姓名", "类别", "开始日期", "终止日期", "原类别"])
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


async def _identities(eligibility, psn_no: str) -> list[tuple]:
    person = (await eligibility.get(f"/v1/persons/{psn_no}", headers=ADMIN)).json()
    return sorted((a["category"], a["start_date"], a["lost_on"]) for a in person["aid_identities"])


async def _announced(eligibility, psn_no: str) -> int:
    return await fetchval(
        eligibility._transport.app,
        "SELECT count(*) FROM outbox WHERE topic = 'person-changed' AND key = :p AND envelope->'payload'->>'change' = "
        "'aid_identity'",
        p=psn_no,
    )


async def test_good_rows_apply_once_and_bad_rows_are_reported(eligibility, register):
    a, b, c, d = [await register() for _ in range(4)]
    await eligibility.post(
        f"/v1/persons/{c['psn_no']}/aid-identities",
        headers=ADMIN,
        json={"category": "dibian", "start_date": "2023-01-01"},
    )
    await eligibility.post(
        f"/v1/persons/{d['psn_no']}/aid-identities",
        headers=ADMIN,
        json={"category": "dibao", "start_date": "2023-01-01"},
    )
    content = _csv(
        [
            ["新增", a["certno"], "张三", "低保对象", "2024-01-01", "", ""],  # row 2: applied
            ["新增", b["certno"], "李四", "防返贫监测对象", "2024/3/5", "", ""],  # 3: applied (monitored)
            ["变更", c["certno"], "王五", "低保对象", "20240601", "", "低保边缘"],  # 4: dibian → dibao
            ["终止", d["certno"], "赵六", "低保", "", "2024-05-20", ""],  # 5: ended
            ["新增", "621000199001011239", "无此人", "低保对象", "2024-01-01", "", ""],  # 6: nobody
            ["新增", a["certno"], "张三", "富裕户", "2024-01-01", "", ""],  # 7: unknown category
            ["新增", a["certno"], "张三", "特困人员", "2024-02-30", "", ""],  # 8: no such day
            ["删除", a["certno"], "张三", "低保对象", "2024-01-01", "", ""],  # 9: unknown action
            ["终止", a["certno"], "张三", "孤儿", "", "2024-05-01", ""],  # 10: nothing to end
            ["新增", b["certno"], "李四", "防返贫监测对象", "2024-06-01", "", ""],  # 11: overlaps row 3
            ["新增", a["certno"], "张三", "特困人员", "", "", ""],  # 12: no start date
            ["", "", "", "", "", "", ""],  # a blank line
        ]
    )
    first = await eligibility.post(URL, content=content, headers=CSV)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["rows"], report["applied"], report["unchanged"]) == (11, 4, 0)
    assert [(r["row"], r["code"]) for r in report["refused"]] == [
        (6, "UNKNOWN_PERSON"),
        (7, "UNKNOWN_AID_CATEGORY"),
        (8, "INVALID_DATE"),
        (9, "UNKNOWN_ACTION"),
        (10, "NO_SUCH_IDENTITY"),
        (11, "OVERLAPPING_WINDOW"),
        (12, "MISSING_FIELD"),
    ]
    assert all(r["reason"] for r in report["refused"])
    assert a["certno"] not in first.text and a["psn_no"] not in first.text  # no personal data in the report

    assert await _identities(eligibility, a["psn_no"]) == [("dibao", "2024-01-01", None)]
    assert await _identities(eligibility, b["psn_no"]) == [("monitored", "2024-03-05", None)]
    assert await _identities(eligibility, c["psn_no"]) == [
        ("dibao", "2024-06-01", None),
        ("dibian", "2023-01-01", "2024-05-31"),
    ]
    assert await _identities(eligibility, d["psn_no"]) == [("dibao", "2023-01-01", "2024-05-20")]
    announced = [await _announced(eligibility, p["psn_no"]) for p in (a, b, c, d)]

    again = await eligibility.post(URL, content=content, headers=CSV)
    assert again.status_code == 200
    assert (again.json()["applied"], again.json()["unchanged"]) == (0, 4)
    assert again.json()["refused"] == report["refused"]
    assert [await _identities(eligibility, p["psn_no"]) for p in (a, b, c, d)] == [
        [("dibao", "2024-01-01", None)],
        [("monitored", "2024-03-05", None)],
        [("dibao", "2024-06-01", None), ("dibian", "2023-01-01", "2024-05-31")],
        [("dibao", "2023-01-01", "2024-05-20")],
    ]
    assert [await _announced(eligibility, p["psn_no"]) for p in (a, b, c, d)] == announced  # nothing new

    snapshot = await eligibility.get(f"/v1/persons/{b['psn_no']}/snapshot", params={"on": "2024-04-01"}, headers=ADMIN)
    assert [x["category"] for x in snapshot.json()["aid_identities"]] == ["monitored"]


async def test_an_xlsx_file_with_english_headers_and_person_numbers(eligibility, register):
    from openpyxl import Workbook

    person = await register()
    book = Workbook()
    sheet = book.active
    sheet.append(["action", "psn_no", "category", "start_date", "end_date"])
    sheet.append(["add", person["psn_no"], "tekun", "2024-02-01", "2024-08-15"])
    sheet.append(["add", "NOBODY", "tekun", "2024-02-01", None])
    out = io.BytesIO()
    book.save(out)
    answer = await eligibility.post(URL, content=out.getvalue(), headers={"Content-Type": XLSX_TYPE, **ADMIN})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "rows": 2,
        "applied": 1,
        "unchanged": 0,
        "refused": [
            {"row": 3, "code": "UNKNOWN_PERSON", "reason": "no insured person has this ID number / person number"}
        ],
    }
    assert await _identities(eligibility, person["psn_no"]) == [("tekun", "2024-02-01", "2024-08-15")]


async def test_a_gb18030_csv_as_excel_saves_it(eligibility, register):
    person = await register()
    content = _csv([["新增", person["certno"], "张三", "特困人员", "2024-01-01", "", ""]], encoding="gb18030")
    answer = await eligibility.post(URL, content=content, headers=CSV)
    assert answer.status_code == 200 and answer.json()["applied"] == 1, answer.text


async def test_a_file_that_is_not_one_is_422_and_changes_nothing(eligibility, register):
    person = await register()
    for content in (
        b"",
        b"\xff\xfe\x00\x01garbage\xc3",
        b"PK\x03\x04 not really a zip",
        _csv([["新增", person["certno"], "特困人员"]], header=["操作", "身份证号", "开始日期"]),  # no category
        "操作,身份证号,类别\n新增,\x00,低保\n".encode(),
    ):
        answer = await eligibility.post(URL, content=content, headers=CSV)
        assert answer.status_code == 422, (content[:20], answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "INVALID_IMPORT_FILE"
    assert await _identities(eligibility, person["psn_no"]) == []
    too_many = _csv([["新增", person["certno"], "", "低保", "2024-01-01", "", ""]] * 10_001)
    answer = await eligibility.post(URL, content=too_many, headers=CSV)
    assert answer.status_code in (413, 422) and answer.json()["code"] in ("TOO_MANY_ROWS", "BODY_TOO_LARGE")
    assert await _identities(eligibility, person["psn_no"]) == []


async def test_the_import_is_for_admin(eligibility):
    answer = await eligibility.post(URL, content=b"a,b\n", headers={"Content-Type": "text/csv", "X-Api-Key": OPS_KEY})
    assert answer.status_code == 403 and answer.json()["code"] == "FORBIDDEN"
