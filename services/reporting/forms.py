"""A printed form as a grid (title, date lines, merged header cells, body, footer) and its two renderings:
xlsx (openpyxl, merged cells, borders, number formats) and CSV (UTF-8 with BOM so Excel reads Chinese)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
WAN_FORMAT = "0.0000"
RATIO_FORMAT = "0.00%"
YUAN_FORMAT = "0.00"
_THIN = Side(style="thin")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


class Ratio(Decimal):
    """A share printed as a percentage (xlsx) or a four-decimal ratio (CSV)."""


class Yuan(Decimal):
    """An amount in yuan, printed with its two decimals (a plain Decimal is in 万元, four decimals)."""


class Quantity(Decimal):
    """A quantity of goods, printed as it is."""


def chinese_date(day: date) -> str:
    """2020-02-04 → 2020年2月4日."""
    return f"{day.year}年{day.month}月{day.day}日"


@dataclass
class Form:
    """One sheet of a form: every row has `width` cells; coordinates are 1-based like Excel's."""

    sheet_name: str
    width: int
    rows: list[list] = field(default_factory=list)
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)
    header: tuple[int, int] = (0, 0)  # first and last header row
    body_end: int = 0  # last row of the bordered table
    widths: dict[int, float] = field(default_factory=dict)

    def add(self, *cells) -> int:
        """Append a row (padded to the width); returns its row number."""
        row = list(cells) + [""] * (self.width - len(cells))
        self.rows.append(row[: self.width])
        return len(self.rows)

    def merge(self, row: int, col: int, last_row: int, last_col: int) -> None:
        if (row, col) != (last_row, last_col):
            self.merges.append((row, col, last_row, last_col))

    def title(self, text: str) -> None:
        row = self.add(text)
        self.merge(row, 1, row, self.width)

    def line(self, *parts: tuple[int, str]) -> None:
        """A text line made of (span, text) parts, e.g. 填报单位 … 填报日期 … (单位:万元)."""
        cells: list = []
        spans = []
        for span, text in parts:
            spans.append((len(cells) + 1, span))
            cells += [text] + [""] * (span - 1)
        row = self.add(*cells)
        for start, span in spans:
            self.merge(row, start, row, min(start + span - 1, self.width))

    def note(self, text: str) -> None:
        row = self.add(text)
        self.merge(row, 1, row, self.width)


def _csv_value(value) -> str:
    if isinstance(value, Ratio):
        return f"{value:.4f}"
    if isinstance(value, Yuan):
        return f"{value:.2f}"
    if isinstance(value, Quantity):
        return f"{value.normalize():f}"
    if isinstance(value, Decimal):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def to_csv(form: Form) -> bytes:
    """The grid as CSV, merged cells written once (top-left), UTF-8 with BOM."""
    covered = {
        (r, c)
        for r1, c1, r2, c2 in form.merges
        for r in range(r1, r2 + 1)
        for c in range(c1, c2 + 1)
        if (r, c) != (r1, c1)
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for r, row in enumerate(form.rows, start=1):
        writer.writerow(["" if (r, c) in covered else _csv_value(v) for c, v in enumerate(row, start=1)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(form: Form) -> bytes:
    """The grid as a workbook laid out like the printed form."""
    book = Workbook()
    sheet = book.active
    sheet.title = form.sheet_name[:31]
    first_header, last_header = form.header
    for r, row in enumerate(form.rows, start=1):
        for c, value in enumerate(row, start=1):
            if value == "" or value is None:
                continue
            cell = sheet.cell(row=r, column=c, value=value)  # openpyxl writes Decimal (and Ratio) exactly
            if isinstance(value, Ratio):
                cell.number_format = RATIO_FORMAT
            elif isinstance(value, Yuan):
                cell.number_format = YUAN_FORMAT
            elif isinstance(value, Quantity):
                cell.number_format = "General"
            elif isinstance(value, Decimal):
                cell.number_format = WAN_FORMAT
    for r1, c1, r2, c2 in form.merges:
        sheet.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    sheet.row_dimensions[1].height = 30
    for r in range(first_header, form.body_end + 1):
        for c in range(1, form.width + 1):
            cell = sheet.cell(row=r, column=c)
            cell.border = _BORDER
            if r <= last_header:
                cell.font = Font(bold=True)
                cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            elif not isinstance(cell.value, (int, float, Decimal)):
                cell.alignment = Alignment(vertical="center", wrap_text=True)
    for c in range(1, form.width + 1):
        sheet.column_dimensions[get_column_letter(c)].width = form.widths.get(c, 14)
    sheet.print_options.horizontalCentered = True
    sheet.page_setup.orientation = "landscape"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
