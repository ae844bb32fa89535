"""HTTP routes of the reporting service: the bureau's reports, reconciliation, the event stream, the dashboard.

Thin: parse, authorise, call one query, shape the answer. Reports are for ops and admin; the case
ledger shows names and ID numbers in full to admin only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import AfterValidator

from services.reporting import alerts, daily, dashboard, feed, layouts, ledgers, price_watch, reconcile, stats
from services.reporting.areas import AdmdvsQuery, RollupQuery, area_of
from services.reporting.exports import Format, area_answer
from shared.auth import Principal, authenticate, require
from shared.inputs import MAX_QUERY_INT, MONTH_PATTERN, BusinessDay, month_in_window
from shared.problems import Problem
from shared.service import Db

router = APIRouter(prefix="/v1", tags=["reporting"])
pages = APIRouter(tags=["dashboard"])
STATIC = Path(__file__).parent / "static"

Ops = Annotated[Principal, Depends(require("ops"))]
Day = Annotated[BusinessDay, Query(alias="date", description="YYYY-MM-DD, 1900-01-01 … 2099-12-31")]
Fmt = Annotated[Format, Query(alias="format")]
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM"), AfterValidator(month_in_window)]
Year = Annotated[int, Query(ge=1900, le=2100)]


@router.get("/reports/daily")
async def daily_report(
    request: Request,
    db: Db,
    _: Ops,
    day: Day,
    fmt: Fmt = "json",
    cumulative: bool = False,
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
) -> Response:
    """附件2: COVID patients' settlements of the business day (cumulative=true: everything up to it); `admdvs`
    (with `rollup`): the institutions of a pooling area only (a county's report, the city's roll-up)."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await daily.daily_report(unit, day=day, cumulative=cumulative, area=area)
    name = f"daily-{day.isoformat()}" + ("-cumulative" if cumulative else "")
    return area_answer(request, body, area=area, fmt=fmt, layout=layouts.daily_form, filename=name)


@router.get("/reports/covid-ledger")
async def covid_ledger(
    request: Request,
    db: Db,
    principal: Ops,
    day: Day,
    fmt: Fmt = "json",
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
) -> Response:
    """附件3 for the filing date `date`: published cases up to 17:00 the day before; masked unless admin; `admdvs`:
    the cases of the hospitals of a pooling area."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await ledgers.covid_ledger(unit, filing_date=day, unmasked=principal.role == "admin", area=area)
    name = f"covid-ledger-{day.isoformat()}"
    return area_answer(request, body, area=area, fmt=fmt, layout=layouts.ledger_form, filename=name)


@router.get("/reports/prepayments")
async def prepayment_table(
    request: Request,
    db: Db,
    _: Ops,
    day: Day,
    fmt: Fmt = "json",
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
) -> Response:
    """附件4 for the filing date `date`: cumulative special prepayments per pooling area up to 17:00 the day before."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await ledgers.prepayment_table(unit, filing_date=day, area=area)
    name = f"prepayments-{day.isoformat()}"
    return area_answer(request, body, area=area, fmt=fmt, layout=layouts.prepayment_form, filename=name)


@router.get("/reports/two-diseases")
async def two_diseases(
    request: Request,
    db: Db,
    _: Ops,
    month: Month,
    fmt: Fmt = "json",
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
) -> Response:
    """两病 monthly statistics: beneficiaries, visits, total cost, fund paid, by disease."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await stats.two_diseases(unit, month=month, area=area)
    name = f"two-diseases-{month}"
    return area_answer(request, body, area=area, fmt=fmt, layout=layouts.two_disease_form, filename=name)


@router.get("/reports/indicators")
async def indicators(
    request: Request,
    db: Db,
    _: Ops,
    year: Year,
    fmt: Fmt = "json",
    admdvs: AdmdvsQuery = None,
    rollup: RollupQuery = False,
) -> Response:
    """Institution indicators of a year (aid self-pay share vs 10 %, outside-catalogue share, budget use)."""
    area = area_of(admdvs, rollup)
    async with db.connect() as unit:
        body = await stats.indicators(unit, year=year, thresholds=request.app.state.budget_thresholds, area=area)
    name = f"indicators-{year}"
    return area_answer(request, body, area=area, fmt=fmt, layout=layouts.indicators_form, filename=name)


@router.get("/reconciliation")
async def reconciliation(request: Request, db: Db, _: Ops, day: Day) -> dict:
    """Reporting's totals of the business day against the settlement service's (503 if it is down)."""
    state = request.app.state
    theirs = await reconcile.settlement_totals(state.settlement, day=day, api_key=state.settings.internal_api_key)
    async with db.connect() as unit:
        ours = await daily.day_totals(unit, day=day)
    return reconcile.compare(day=day, settlement=theirs, reporting=ours)


@router.get("/reconciliation/accounts")
async def account_reconciliation(request: Request, db: Db, _: Ops, day: Day) -> dict:
    """The account side of a business day: personal-account payments (own, family) and retail purchases, reporting's
    against the settlement service's (/v1/account-totals; 503 if it is down)."""
    state = request.app.state
    theirs = await reconcile.settlement_account_totals(
        state.settlement, day=day, api_key=state.settings.internal_api_key
    )
    async with db.connect() as unit:
        ours = await daily.account_totals(unit, day=day)
    return reconcile.compare_accounts(day=day, settlement=theirs, reporting=ours)


@router.get("/reconciliation/finance-payments")
async def finance_reconciliation(request: Request, db: Db, _: Ops, day: Day) -> dict:
    """Finance's COVID subsidy payments of a day (`paid_on`), count and amount in all and per payer level, reporting's
    (from `subsidy-paid`) against the prepayment service's (/v1/subsidy-payments; 503 PREPAYMENT_UNAVAILABLE if it is
    down). A route of its own, like the account side's: the settlements' reconciliation does not wait for prepayment."""
    state = request.app.state
    theirs = await reconcile.prepayment_finance_payments(
        state.prepayment, day=day, api_key=state.settings.internal_api_key
    )
    async with db.connect() as unit:
        ours = await daily.finance_payments(unit, day=day)
    return reconcile.compare_finance(day=day, prepayment=theirs, reporting=ours)


@router.get("/dashboard")
async def dashboard_summary(request: Request, db: Db, _: Ops, day: Day) -> dict:
    """What the dashboard draws for a business day, plus the most recent events of the feed."""
    async with db.connect() as unit:
        body = await dashboard.summary(unit, day=day)
        body["alerts_open"] = await alerts.open_counts(unit)
        body["watched_sales"] = (await price_watch.watched_sales(unit, day=day, area=None))["districts"]
    body["recent_events"] = [{"id": seq, **data} for seq, data in list(request.app.state.feed.recent)[-50:]]
    return body


@router.post("/events/stream-tickets", status_code=201)
async def stream_ticket(request: Request, principal: Ops) -> dict:
    """A short-lived ticket for `GET /v1/events/stream?ticket=` (EventSource cannot send X-Api-Key)."""
    return feed.issue_ticket(api_keys_json=request.app.state.settings.api_keys_json, principal=principal)


def _stream_principal(request: Request, ticket: str | None) -> Principal:
    if request.headers.get("x-api-key"):
        principal = authenticate(request)
    elif ticket:
        principal = feed.check_ticket(ticket, api_keys_json=request.app.state.settings.api_keys_json)
    else:
        raise Problem(
            401, "UNAUTHENTICATED", "missing X-Api-Key header or stream ticket", headers={"WWW-Authenticate": "ApiKey"}
        )
    if principal.role not in feed.STREAM_ROLES:
        raise Problem(403, "FORBIDDEN", f"role {principal.role} may not read the event stream")
    return principal


@router.get("/events/stream", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    ticket: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_QUERY_INT)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-Sent Events of every event applied (personal data left out); `since`/Last-Event-ID resume."""
    _stream_principal(request, ticket)
    if since is None and last_event_id and last_event_id.isdigit():
        since = int(last_event_id)
    body = feed.sse(request.app.state.feed, since=since, limit=limit)
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


_ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}


@pages.get("/static/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> FileResponse:
    """The dashboard's script and style sheet (a fixed list: nothing else of the disk is served)."""
    if name not in _ASSETS:
        raise Problem(404, "NOT_FOUND", f"no asset {name[:40]}")
    return FileResponse(
        STATIC / name,
        media_type=_ASSETS[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@pages.get("/", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    """The ops dashboard (static; it asks for a key and reads the API with it)."""
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
