"""Civil affairs' changes of identities in bulk (民政数据批量导入): a CSV or xlsx file, one change a row.

Columns (a header row; English or Chinese names): action 操作 (add 新增 | change 变更 | end 终止), certno 身份证号
or psn_no 人员编号, category 类别 (a DOMAIN §5 aid category, or 防返贫监测对象 `monitored`, the monitored persons that
civil affairs watches without aid), start_date 开始日期, end_date 终止日期 (the day the identity was lost), and for a
change previous_category 原类别 (ended the day before the new one starts). Dates as 2024-03-01, 2024/3/1 or 20240301.

The whole file is applied in one transaction, each row in a savepoint: a row that is refused changes nothing and the
others still apply. A row already in effect is `unchanged` (importing the same file again changes nothing and
announces nothing). The answer: `{rows, applied, unchanged, refused: [{row, code, reason}]}`, rows numbered as the
spreadsheet numbers them (the header is row 1); no personal data in it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.eligibility import domain, snapshot
from services.eligibility.domain import RuleViolation, Window
from services.eligibility.persons import announce, lock_person
from shared.db import Row, Sql, Unit
from shared.inputs import FIRST_DAY, LAST_DAY, storable
from shared.problems import Problem

MAX_ROWS = 10_000
MAX_COLUMNS = 30
MONITORED = domain.MONITORED
IMPORT_CATEGORIES = domain.AID_CATEGORIES
CATEGORY_NAMES = {
    "特困人员": "tekun",
    "特困供养人员": "tekun",
    "孤儿": "orphan",
    "事实无人抚养儿童": "orphan",
    "特困职工": "tekun_worker",
    "低保对象": "dibao",
    "低保": "dibao",
    "低保边缘": "dibian",
    "低保边缘家庭成员": "dibian",
    "返贫致贫人口": "fanpin",
    "防返贫监测对象": MONITORED,
    "监测对象": MONITORED,
    **{code: code for code in IMPORT_CATEGORIES},
}
ACTIONS = {
    "add": "add",
    "新增": "add",
    "change": "change",
    "变更": "change",
    "end": "end",
    "终止": "end",
    "退出": "end",
}
COLUMNS = {
    "action": "action",
    "操作": "action",
    "操作类型": "action",
    "certno": "certno",
    "身份证号": "certno",
    "身份证号码": "certno",
    "证件号码": "certno",
    "psn_no": "psn_no",
    "人员编号": "psn_no",
    "category": "category",
    "类别": "category",
    "救助类别": "category",
    "人员类别": "category",
    "start_date": "start_date",
    "开始日期": "start_date",
    "认定日期": "start_date",
    "end_date": "end_date",
    "lost_on": "end_date",
    "终止日期": "end_date",
    "退出日期": "end_date",
    "previous_category": "previous_category",
    "原类别": "previous_category",
    "name": "name",  # read and ignored: the person is the one of the ID number
    "姓名": "name",
}
_DAY = re.compile(r"([0-9]{4})[-/.年]?([0-9]{1,2})[-/.月]?([0-9]{1,2})日?")
XLSX_MAGIC = b"PK\x03\x04"

_IDENTITIES = Sql("SELECT id, category, start_date, lost_on, window_end FROM aid_identities WHERE psn_no = :psn_no")
_PERSON_EXISTS = Sql("SELECT psn_no FROM persons WHERE psn_no = :psn_no")
_ADD = Sql("""
INSERT INTO aid_identities (psn_no, category, start_date, lost_on, window_end)
VALUES (:psn_no, :category, :start_date, :lost_on, :window_end)
""")
_SET_LOST_ON = Sql(
    "UPDATE aid_identities SET lost_on = :lost_on, window_end = :window_end, updated_at = now() WHERE id = :id"
)


class Refused(Exception):
    """A row that cannot be applied: its code and why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Change:
    row: int
    action: str
    certno: str | None
    psn_no: str | None
    category: str | None
    previous_category: str | None
    start_date: date | None
    end_date: date | None


# ------------------------------------------------------------------ reading the file


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _cells(content: bytes) -> list[list[Any]]:
    """The file's rows (xlsx: the first sheet; otherwise CSV in UTF-8, with or without BOM, or GB18030)."""
    if content.startswith(XLSX_MAGIC):
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            sheet = book.worksheets[0]
            rows = []
            for values in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
                rows.append(list(values))
                if len(rows) > MAX_ROWS + 1:
                    break
            book.close()
            return rows
        except Exception as exc:  # a damaged or foreign zip: openpyxl raises all sorts
            raise Problem(422, "INVALID_IMPORT_FILE", f"not a readable xlsx file ({type(exc).__name__})") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise Problem(422, "INVALID_IMPORT_FILE", "a CSV file in UTF-8 or GB18030, or an xlsx file")
    if not storable(text):
        raise Problem(422, "INVALID_IMPORT_FILE", "the file holds characters that cannot be stored (NUL)")
    try:
        return [row[:MAX_COLUMNS] for row in csv.reader(io.StringIO(text))][: MAX_ROWS + 2]
    except csv.Error as exc:
        raise Problem(422, "INVALID_IMPORT_FILE", f"not a readable CSV file ({exc})") from None


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        day = value
    else:
        match = _DAY.fullmatch(_text(value))
        if match is None:
            raise Refused("INVALID_DATE", f"{_text(value)[:20]!r} is not a date such as 2024-03-01")
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise Refused("INVALID_DATE", f"{_text(value)[:20]!r} is not a date") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Refused("INVALID_DATE", f"{day} is outside {FIRST_DAY} … {LAST_DAY}")
    return day


def _category(value: str, column: str) -> str | None:
    if not value:
        return None
    code = CATEGORY_NAMES.get(value) or CATEGORY_NAMES.get(value.lower())
    if code is None:
        raise Refused("UNKNOWN_AID_CATEGORY", f"{column} {value[:20]!r} is not a category civil affairs reports")
    return code


def read_changes(content: bytes) -> tuple[list[Change], list[dict[str, Any]]]:
    """The file's rows as changes, and the rows refused already for what they say (bad action, date, category)."""
    rows = _cells(content)
    while rows and not any(_text(v) for v in rows[0]):
        rows.pop(0)  # blank lines before the header
    if not rows:
        raise Problem(422, "INVALID_IMPORT_FILE", "the file is empty")
    header = [COLUMNS.get(_text(v), COLUMNS.get(_text(v).lower(), "")) for v in rows[0]]
    missing = {"action", "category"} - set(header)
    if missing or not {"certno", "psn_no"} & set(header):
        raise Problem(
            422,
            "INVALID_IMPORT_FILE",
            "the header needs action (操作), category (类别) and certno (身份证号) or psn_no (人员编号)",
        )
    if len(rows) - 1 > MAX_ROWS:
        raise Problem(422, "TOO_MANY_ROWS", f"at most {MAX_ROWS} rows per file")
    changes, refused = [], []
    for number, values in enumerate(rows[1:], start=2):
        cells = {name: values[i] for i, name in enumerate(header) if name and i < len(values)}
        if not any(_text(v) for v in cells.values()):
            continue  # a blank line
        try:
            action = ACTIONS.get(_text(cells.get("action")).lower()) or ACTIONS.get(_text(cells.get("action")))
            if action is None:
                raise Refused("UNKNOWN_ACTION", "action is add (新增), change (变更) or end (终止)")
            changes.append(
                Change(
                    row=number,
                    action=action,
                    certno=_text(cells.get("certno")).upper() or None,
                    psn_no=_text(cells.get("psn_no")) or None,
                    category=_category(_text(cells.get("category")), "category"),
                    previous_category=_category(_text(cells.get("previous_category")), "previous_category"),
                    start_date=_day(cells.get("start_date")),
                    end_date=_day(cells.get("end_date")),
                )
            )
        except Refused as exc:
            refused.append({"row": number, "code": exc.code, "reason": exc.reason})
    return changes, refused


# ------------------------------------------------------------------ applying the rows


def _need(change: Change, *names: str) -> None:
    absent = [name for name in names if getattr(change, name) is None]
    if absent:
        raise Refused("MISSING_FIELD", f"{change.action} needs {', '.join(absent)}")


async def _person(unit: Unit, change: Change) -> str:
    """The person of the row: by psn_no, else by ID number (人证相符 as a credential of type 02)."""
    found = None
    if change.psn_no:
        found = await unit.fetchval(_PERSON_EXISTS, psn_no=change.psn_no[:32])
    elif change.certno:
        try:
            found = await snapshot.verify(unit, "02", change.certno[:18])
        except RuleViolation:
            found = None
    if found is None:
        raise Refused("UNKNOWN_PERSON", "no insured person has this ID number / person number")
    await lock_person(unit, found)
    return str(found)


def _windows(rows: list[Row], category: str, *, besides: int | None = None) -> list[Window]:
    return [Window(r.start_date, r.window_end) for r in rows if r.category == category and r.id != besides]


async def _add(unit: Unit, psn_no: str, rows: list[Row], *, category: str, start: date, lost_on: date | None) -> bool:
    """The identity from `start` (lost on `lost_on`); False when it is there already as the row says."""
    same = [r for r in rows if r.category == category and r.start_date == start]
    if same:
        if same[0].lost_on == lost_on:
            return False
        raise Refused("IDENTITY_EXISTS", f"a {category} identity from {start} exists with another end; end it instead")
    window = domain.aid_window(start, lost_on)
    domain.refuse_overlap(window, _windows(rows, category), f"{category} identity")
    await unit.execute(_ADD, psn_no=psn_no, category=category, start_date=start, lost_on=lost_on, window_end=window.end)
    return True


async def _end(unit: Unit, rows: list[Row], *, category: str, lost_on: date) -> bool:
    """The identity of `category` held on `lost_on` ends that day; False when it ended that day already."""
    if any(r.category == category and r.lost_on == lost_on for r in rows):
        return False
    held = [r for r in rows if r.category == category and r.lost_on is None and r.start_date <= lost_on]
    if not held:
        raise Refused("NO_SUCH_IDENTITY", f"no open {category} identity begun by {lost_on}")
    identity = max(held, key=lambda r: r.start_date)
    window = domain.aid_window(identity.start_date, lost_on)
    domain.refuse_overlap(window, _windows(rows, category, besides=identity.id), f"{category} identity")
    await unit.execute(_SET_LOST_ON, id=identity.id, lost_on=lost_on, window_end=window.end)
    return True


async def _apply(unit: Unit, change: Change, *, today: date) -> bool:
    """One row; True when it changed something (then the person is announced)."""
    psn_no = await _person(unit, change)
    rows = list(await unit.fetch(_IDENTITIES, psn_no=psn_no))
    if change.action == "add":
        _need(change, "category", "start_date")
        assert change.category is not None and change.start_date is not None
        changed = await _add(
            unit, psn_no, rows, category=change.category, start=change.start_date, lost_on=change.end_date
        )
    elif change.action == "end":
        _need(change, "category", "end_date")
        assert change.category is not None and change.end_date is not None
        changed = await _end(unit, rows, category=change.category, lost_on=change.end_date)
    else:
        _need(change, "previous_category", "category", "start_date")
        assert change.previous_category and change.category and change.start_date
        if change.previous_category == change.category:
            raise Refused("SAME_CATEGORY", "a change names two different categories")
        ended = await _end(unit, rows, category=change.previous_category, lost_on=change.start_date - timedelta(days=1))
        rows = list(await unit.fetch(_IDENTITIES, psn_no=psn_no))
        added = await _add(unit, psn_no, rows, category=change.category, start=change.start_date, lost_on=None)
        changed = ended or added
    if changed:
        await announce(unit, [psn_no], "aid_identity", today=today)
    return changed


async def import_changes(unit: Unit, content: bytes, *, today: date) -> dict[str, Any]:
    """Apply a civil-affairs file in this unit of work; the report of what was applied and refused."""
    changes, refused = read_changes(content)
    rows = len(changes) + len(refused)
    applied = unchanged = 0
    for change in changes:
        try:
            async with unit.savepoint():
                if await _apply(unit, change, today=today):
                    applied += 1
                else:
                    unchanged += 1
        except Refused as exc:
            refused.append({"row": change.row, "code": exc.code, "reason": exc.reason})
        except RuleViolation as exc:
            refused.append({"row": change.row, "code": exc.code, "reason": exc.detail})
    refused.sort(key=lambda r: r["row"])
    return {
        "rows": rows,
        "applied": applied,
        "unchanged": unchanged,
        "refused": refused,
    }
