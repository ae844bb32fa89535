"""HTTP routes of supervision (DOMAIN §13, CONTRACT "(supervision)"): alerts, the watched goods, the monthly
institution indicators, county filing. Reads for ops and admin; resolving, checks and filings for admin."""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator

from services.reporting import alerts, filing, indicators, price_watch, supervision_layouts
from services.reporting.alerts import AlertFilter, Supervision
from services.reporting.areas import AdmdvsQuery, RollupQuery, area_of
from services.reporting.exports import area_answer
from services.reporting.schemas import AlertResolveIn, CheckIn, FilingIn
from shared.auth import Admin, Principal, require
from shared.inputs import MAX_OFFSET, MONTH_PATTERN, BusinessDay, month_in_window
from shared.service import Db

router = APIRouter(prefix="/v1", tags=["supervision"])

Ops = Annotated[Principal, Depends(require("ops"))]
Day = Annotated[BusinessDay, Query(alias="date", description="YYYY-MM-DD")]
ListFormat = Annotated[Literal["json", "xlsx"], Query(alias="format")]
Fmt = Annotated[Literal["json", "csv", "xlsx"], Query(alias="format")]
CODE = r"^[A-Za-z0-9_-]{1,40}$"
AlertId = Annotated[str, Path(pattern=r"^A[0-9A-F]{20}$")]
MAX_EXPORT = 10_000


def _supervision(request: Request) -> Supervision:
    return request.app.state.supervision  # type: ignore[no-any-return]


# Supervision's lists say their area themselves (`area` in the JSON) and keep the file name without it.
_answer = functools.partial(area_answer, named=False)


@router.get("/alerts")
async def list_alerts(
    request: Request,
    db: Db,
    _: Ops,
    kind: Annotated[Literal["high_cost", "price", "fraud", "indicator", "filing"] | None, Query()] = None,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    rule: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}\.[a-z_]{1,40}$")] = None,
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
    fixmedins_code: Annotated[str | None, Query(pattern=CODE)] = None,
    psn_no: Annotated[str | None, Query(pattern=CODE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    fmt: ListFormat = "json",
) -> Response:
    """Alerts, newest first, filtered; `format=xlsx` exports the list (up to 10,000) for the office that receives it."""
    area = area_of(admdvs, rollup)
    where = AlertFilter(kind=kind, status=status, rule=rule, psn_no=psn_no, fixmedins_code=fixmedins_code, area=area)
    async with db.connect() as unit:
        if fmt == "xlsx":
            body = await alerts.list_alerts(unit, where, limit=MAX_EXPORT, offset=0)
        else:
            body = await alerts.list_alerts(unit, where, limit=limit, offset=offset)
    name = "alerts" + (f"-{kind}" if kind else "") + (f"-{status}" if status else "")
    return _answer(request, body, area=area, fmt=fmt, layout=supervision_layouts.alerts_form, filename=name)


@router.get("/alerts/{alert_id}")
async def get_alert(db: Db, _: Ops, alert_id: AlertId) -> dict:
    async with db.connect() as unit:
        return await alerts.get(unit, alert_id)


@router.post("/alerts/{alert_id}/resolve")
async def resolve_alert(request: Request, db: Db, principal: Admin, alert_id: AlertId, body: AlertResolveIn) -> dict:
    """Record what was done (化解 / 查实 / 排除 …); 409 ALERT_ALREADY_RESOLVED for an alert resolved otherwise."""
    supervision = _supervision(request)
    return await db.transaction(
        lambda unit: alerts.resolve(
            unit,
            supervision,
            alert_id,
            resolution=body.resolution,
            note=body.note,
            amount=body.amount,
            role=principal.role,
        )
    )


@router.post("/alerts/checks")
async def run_check(request: Request, db: Db, _: Admin, body: CheckIn) -> dict:
    """Run a check now (the service also runs them on its own): late filings of a day, or a month's indicators."""
    supervision = _supervision(request)
    if body.check == "filing":
        assert body.date is not None
        day = body.date
        raised = await db.transaction(
            lambda unit: filing.check_filings(unit, supervision, supervision.clock(), days=[day])
        )
        return {"check": "filing", "date": day.isoformat(), "raised": raised}
    assert body.month is not None
    month = indicators.month_of(body.month)
    counts = await db.transaction(lambda unit: indicators.evaluate_month(unit, supervision, month))
    return {"check": "indicators", "month": month.text, **counts}


@router.get("/reports/watched-prices")
async def watched_prices(
    request: Request,
    db: Db,
    _: Ops,
    day: Day,
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
    fmt: Fmt = "json",
) -> Response:
    """The day's unit prices of the watched goods per code and institution, against their monitoring caps."""
    area, policy = area_of(admdvs, rollup), _supervision(request).book.on(day)
    async with db.connect() as unit:
        body = await price_watch.watched_prices(unit, day=day, area=area, policy=policy)
    name = f"watched-prices-{day.isoformat()}"
    return _answer(request, body, area=area, fmt=fmt, layout=supervision_layouts.prices_form, filename=name)


@router.get("/reports/watched-sales")
async def watched_sales(
    request: Request,
    db: Db,
    _: Ops,
    day: Day,
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
    fmt: Fmt = "json",
) -> Response:
    """The day's sales of the watched goods at pharmacies, per pharmacy and district."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await price_watch.watched_sales(unit, day=day, area=area)
    name = f"watched-sales-{day.isoformat()}"
    return _answer(request, body, area=area, fmt=fmt, layout=supervision_layouts.sales_form, filename=name)


@router.get("/reports/institution-indicators")
async def institution_indicators(
    request: Request,
    db: Db,
    _: Ops,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM"), AfterValidator(month_in_window)],
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
    fmt: Fmt = "json",
) -> Response:
    """Each hospital's monthly indicators (seed 002) against the thresholds in force, the failing ones flagged."""
    area, chosen = area_of(admdvs, rollup), indicators.month_of(month)
    policy = _supervision(request).book.on(chosen.first)
    async with db.connect() as unit:
        body = await indicators.month_indicators(unit, month=chosen, area=area, policy=policy)
    name = f"institution-indicators-{month}"
    return _answer(request, body, area=area, fmt=fmt, layout=supervision_layouts.month_indicators_form, filename=name)


@router.post("/filings", status_code=201)
async def file_report(request: Request, db: Db, principal: Admin, body: FilingIn) -> Response:
    """A report filed for a day and pooling area (填报人, 审核人); the same filing again answers 200 with the first."""
    supervision = _supervision(request)
    view, created = await db.transaction(
        lambda unit: filing.file_report(
            unit,
            supervision,
            report=body.report,
            day=body.date,
            admdvs=body.admdvs,
            filled_by=body.filled_by,
            approved_by=body.approved_by,
            note=body.note,
            role=principal.role,
        )
    )
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/filings")
async def list_filings(
    request: Request,
    db: Db,
    _: Ops,
    day: Day,
    report: Annotated[Literal["daily", "covid-ledger", "prepayments"], Query()] = "daily",
) -> dict:
    """Every pooling area's filing of a report and day: filed, late, missing (past the deadline) or due."""
    async with db.connect() as unit:
        return await filing.filings(unit, _supervision(request), report=report, day=day)
