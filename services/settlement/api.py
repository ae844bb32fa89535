"""HTTP routes of the settlement service: visits, fee lines, presettle/settle, reversal, reading settlements;
and around the counter: catalogue, prescriptions and pharmacy settlement, declared claims, accounts.

Thin: parse, authorise, call one service function, answer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response

from services.settlement.channels import accounts, claims, pharmacy, prescriptions
from services.settlement.runtime import CtxDep, role
from services.settlement.schemas import (
    CODE,
    IDENT,
    CatalogueIn,
    ClaimIn,
    CreditIn,
    DischargeIn,
    FeesIn,
    PharmacySettleIn,
    PrescriptionIn,
    SettleIn,
    VisitIn,
)
from services.settlement.settle import reverse, settle
from services.settlement.store import catalogue, queries
from services.settlement.visits import fees, visits
from shared.auth import Principal
from shared.idempotency import Answer
from shared.service import idempotency_key, respond

router = APIRouter(prefix="/v1", tags=["settlement"])

Hospital = Annotated[Principal, Depends(role("his"))]
Pharmacy = Annotated[Principal, Depends(role("pharmacy"))]
Institutional = Annotated[Principal, Depends(role("his", "pharmacy"))]
Viewer = Annotated[Principal, Depends(role("his", "pharmacy", "ops"))]
Ops = Annotated[Principal, Depends(role("ops"))]
Admin = Annotated[Principal, Depends(role())]
MdtrtId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
SetlId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
Ident = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)]
Options = Annotated[SettleIn | None, Body()]


@router.post("/visits", status_code=201)
async def create_visit(body: VisitIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idempotency_key(request, principal, body)
    return respond(await visits.create_visit(ctx, body=body, principal=principal, key=key))


@router.get("/visits/{mdtrt_id}")
async def get_visit(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Viewer) -> dict:
    return await visits.get_visit(ctx, mdtrt_id=mdtrt_id, principal=principal)


@router.post("/visits/{mdtrt_id}/fees", status_code=201)
async def add_fees(mdtrt_id: MdtrtId, body: FeesIn, ctx: CtxDep, principal: Hospital) -> Response:
    return respond(await fees.add_fees(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal))


@router.post("/visits/{mdtrt_id}/discharge")
async def discharge(mdtrt_id: MdtrtId, body: DischargeIn, ctx: CtxDep, principal: Hospital) -> dict:
    return await visits.discharge(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal)


@router.post("/visits/{mdtrt_id}/presettle")
async def presettle(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Hospital, body: Options = None) -> dict:
    return await settle.presettle(ctx, mdtrt_id=mdtrt_id, principal=principal, options=body or SettleIn())


@router.post("/visits/{mdtrt_id}/settle", status_code=201)
async def settle_visit(
    mdtrt_id: MdtrtId, request: Request, ctx: CtxDep, principal: Hospital, body: Options = None
) -> Response:
    options = body or SettleIn()
    key = idempotency_key(request, principal, options)
    return respond(await settle.settle(ctx, mdtrt_id=mdtrt_id, principal=principal, options=options, key=key))


@router.post("/settlements/{setl_id}/reverse")
async def reverse_settlement(setl_id: SetlId, request: Request, ctx: CtxDep, principal: Institutional) -> Response:
    key = idempotency_key(request, principal, {})
    return respond(await reverse.reverse(ctx, setl_id=setl_id, principal=principal, key=key))


@router.get("/settlements/{setl_id}")
async def get_settlement(setl_id: SetlId, ctx: CtxDep, principal: Viewer) -> dict:
    return await queries.get_settlement(ctx, setl_id=setl_id, principal=principal)


@router.get("/settlements")
async def list_settlements(
    ctx: CtxDep,
    principal: Viewer,
    setl_date: date,
    fixmedins_code: Annotated[str | None, Query(max_length=32, pattern=CODE)] = None,
    limit: int = 100,
    offset: int = 0,
) -> dict:
    return await queries.list_settlements(
        ctx, setl_date=setl_date, fixmedins_code=fixmedins_code, principal=principal, limit=limit, offset=offset
    )


@router.get("/totals")
async def totals(ctx: CtxDep, _: Ops, day: Annotated[date, Query(alias="date")]) -> dict:
    return await queries.totals(ctx, day=day)


@router.get("/catalog")
async def search_catalogue(
    ctx: CtxDep,
    _: Viewer,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    async with ctx.db.connect() as unit:
        return await catalogue.search(unit, q=q, limit=limit, offset=offset)


@router.put("/catalog/{med_list_codg}")
async def put_catalogue_entry(
    med_list_codg: Ident, body: CatalogueIn, request: Request, ctx: CtxDep, _: Admin
) -> Response:
    entry, created = await ctx.db.transaction(lambda unit: catalogue.put_entry(unit, med_list_codg, body))
    await request.app.state.catalogue.reload()  # this worker at once; the others within a second
    return respond(Answer.json(entry, 201 if created else 200))


@router.post("/prescriptions", status_code=201)
async def issue_prescription(body: PrescriptionIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idempotency_key(request, principal, body)
    return respond(await prescriptions.issue(ctx, body=body, principal=principal, key=key))


@router.get("/prescriptions/{rx_no}")
async def get_prescription(rx_no: Ident, ctx: CtxDep, principal: Viewer) -> dict:
    return await prescriptions.get(ctx, rx_no=rx_no, principal=principal)


@router.post("/pharmacy/settlements", status_code=201)
async def pharmacy_settlement(body: PharmacySettleIn, request: Request, ctx: CtxDep, principal: Pharmacy) -> Response:
    key = idempotency_key(request, principal, body)
    return respond(await pharmacy.settle_prescription(ctx, body=body, principal=principal, key=key))


@router.post("/claims", status_code=202)
async def submit_claim(body: ClaimIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idempotency_key(request, principal, body)
    return respond(await claims.submit(ctx, body=body, principal=principal, key=key))


@router.get("/claims/{claim_id}")
async def get_claim(claim_id: Ident, ctx: CtxDep, principal: Viewer) -> dict:
    return await claims.get(ctx, claim_id=claim_id, principal=principal)


@router.get("/accounts/{psn_no}")
async def get_account(psn_no: Ident, ctx: CtxDep, _: Viewer) -> dict:
    return await accounts.get_account(ctx, psn_no=psn_no)


@router.post("/accounts/{psn_no}/credits", status_code=201)
async def credit_account(psn_no: Ident, body: CreditIn, ctx: CtxDep, _: Admin) -> Response:
    return respond(await accounts.credit(ctx, psn_no=psn_no, body=body))
