"""HTTP routes of the settlement service: visits, fee lines, presettle/settle, reversal, reading settlements.

Thin: parse, authorise, call one service function, answer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response

from services.settlement import idempotency as idem
from services.settlement import queries, reverse, settle, visits
from services.settlement.runtime import CtxDep, role
from services.settlement.schemas import CODE, IDENT, DischargeIn, FeesIn, SettleIn, VisitIn
from shared.auth import Principal
from shared.service import wake_relay

router = APIRouter(prefix="/v1", tags=["settlement"])

Hospital = Annotated[Principal, Depends(role("his"))]
Institutional = Annotated[Principal, Depends(role("his", "pharmacy"))]
Viewer = Annotated[Principal, Depends(role("his", "pharmacy", "ops"))]
Ops = Annotated[Principal, Depends(role("ops"))]
Admin = Annotated[Principal, Depends(role())]
MdtrtId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
SetlId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
Options = Annotated[SettleIn | None, Body()]


def _committed(request: Request, response: Response) -> Response:
    wake_relay(request)
    return response


@router.post("/visits", status_code=201)
async def create_visit(body: VisitIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idem.key_for(request, principal, body)
    return await visits.create_visit(ctx, body=body, principal=principal, key=key)


@router.get("/visits/{mdtrt_id}")
async def get_visit(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Viewer) -> dict:
    return await visits.get_visit(ctx, mdtrt_id=mdtrt_id, principal=principal)


@router.post("/visits/{mdtrt_id}/fees", status_code=201)
async def add_fees(mdtrt_id: MdtrtId, body: FeesIn, ctx: CtxDep, principal: Hospital) -> Response:
    return await visits.add_fees(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal)


@router.post("/visits/{mdtrt_id}/discharge")
async def discharge(mdtrt_id: MdtrtId, body: DischargeIn, ctx: CtxDep, principal: Hospital) -> dict:
    return await visits.discharge(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal)


@router.post("/visits/{mdtrt_id}/presettle")
async def presettle(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Hospital, body: Options = None) -> dict:
    return await settle.presettle(ctx, mdtrt_id=mdtrt_id, principal=principal, options=body or SettleIn())


@router.post("/visits/{mdtrt_id}/settle", status_code=201)
async def settle_visit(mdtrt_id: MdtrtId, request: Request, ctx: CtxDep, principal: Hospital,
                       body: Options = None) -> Response:
    options = body or SettleIn()
    key = idem.key_for(request, principal, options)
    return _committed(request, await settle.settle(ctx, mdtrt_id=mdtrt_id, principal=principal, options=options,
                                                   key=key))


@router.post("/settlements/{setl_id}/reverse")
async def reverse_settlement(setl_id: SetlId, request: Request, ctx: CtxDep, principal: Institutional) -> Response:
    key = idem.key_for(request, principal, {})
    return _committed(request, await reverse.reverse(ctx, setl_id=setl_id, principal=principal, key=key))


@router.get("/settlements/{setl_id}")
async def get_settlement(setl_id: SetlId, ctx: CtxDep, principal: Viewer) -> dict:
    return await queries.get_settlement(ctx, setl_id=setl_id, principal=principal)


@router.get("/settlements")
async def list_settlements(ctx: CtxDep, principal: Viewer, setl_date: date,
                           fixmedins_code: Annotated[str | None, Query(max_length=32, pattern=CODE)] = None,
                           limit: int = 100, offset: int = 0) -> dict:
    return await queries.list_settlements(ctx, setl_date=setl_date, fixmedins_code=fixmedins_code,
                                          principal=principal, limit=limit, offset=offset)


@router.get("/totals")
async def totals(ctx: CtxDep, _: Ops, day: Annotated[date, Query(alias="date")]) -> dict:
    return await queries.totals(ctx, day=day)
