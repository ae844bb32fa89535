"""One report in the asked format: the JSON answer as is, or its official form as CSV or xlsx."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from services.reporting.areas import Area
from services.reporting.domain import area_name
from services.reporting.forms import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Form, to_csv, to_xlsx

Format = Literal["json", "csv", "xlsx"]
DEFAULT_FILING_UNIT = "市医疗保障局"


@dataclass(frozen=True, slots=True)
class FormSettings:
    """What the printed forms say about who files them (REPORT_FILING_UNIT, REPORT_REGION)."""

    filing_unit: str = DEFAULT_FILING_UNIT
    region: str = ""

    @classmethod
    def from_env(cls) -> FormSettings:
        unit = os.environ.get("REPORT_FILING_UNIT", "").strip()[:100]
        region = os.environ.get("REPORT_REGION", "").strip()[:50]
        return cls(filing_unit=unit or DEFAULT_FILING_UNIT, region=region)

    def of_area(self, area: Area | None) -> FormSettings:
        """The settings of a report filtered by a pooling area: the area's name in the form's title."""
        if area is None:
            return self
        return dataclasses.replace(self, region=area_name(area.admdvs) + ("(含所辖县区)" if area.rollup else ""))


def answer(body: dict, *, fmt: Format, layout: Callable[..., Form], filename: str, forms: FormSettings) -> Response:
    """JSON, or the form as CSV (UTF-8 with BOM) / xlsx, as a download named `filename`.{csv,xlsx}."""
    if fmt == "json":
        return JSONResponse(body)
    form = layout(body, filing_unit=forms.filing_unit, region=forms.region)
    if fmt == "csv":
        content, media_type = to_csv(form), CSV_MEDIA_TYPE
    else:
        content, media_type = to_xlsx(form), XLSX_MEDIA_TYPE
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"', "Cache-Control": "no-store"},
    )


def area_answer(
    request: Request,
    body: dict,
    *,
    area: Area | None,
    fmt: Format,
    layout: Callable[..., Form],
    filename: str,
    named: bool = True,
) -> Response:
    """`answer` for a report of a pooling area (None: every area): the area's name in the form's title; `named`: in
    the JSON too (`area`) and its code in the file name."""
    if named and area is not None:
        body["area"] = {"admdvs": area.admdvs, "rollup": area.rollup, "area_name": area_name(area.admdvs)}
        filename += f"-{area.admdvs}"
    forms: FormSettings = request.app.state.forms
    return answer(body, fmt=fmt, layout=layout, filename=filename, forms=forms.of_area(area))
