"""HTTP routes around the counter: catalogue, prescriptions and pharmacy settlement, declared claims, accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.settlement import accounts, catalogue_store, claims, idempotency as idem, pharmacy, prescriptions
from services.settlement.api import Admin, Hospital, Viewer
from services.settlement.runtime import CtxDep, role
from services.settlement.schemas import IDENT, CatalogueIn, ClaimIn, CreditIn, PharmacySettleIn, PrescriptionIn
from shared.auth import Principal
from shared.service import wake_relay

router = APIRouter(prefix="/v1", tags=["settlement"])

Pharmacy = Annotated[Principal, Depends(role("pharmacy"))]
Ident = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)]


@router.get("/catalog")
async def search_catalogue(ctx: CtxDep, _: Viewer, q: Annotated[str | None, Query(max_length=100)] = None,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                           offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    async with ctx.sessions() as session:
        return await catalogue_store.search(session, q=q, limit=limit, offset=offset)


@router.put("/catalog/{med_list_codg}")
async def put_catalogue_entry(med_list_codg: Ident, body: CatalogueIn, request: Request, ctx: CtxDep,
                              _: Admin) -> Response:
    async with ctx.sessions() as session, session.begin():
        entry, created = await catalogue_store.put_entry(session, med_list_codg, body)
    await request.app.state.catalogue.reload()  # this worker at once; the others within a second
    return idem.json_response(entry, 201 if created else 200)


@router.post("/prescriptions", status_code=201)
async def issue_prescription(body: PrescriptionIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idem.key_for(request, principal, body)
    return await prescriptions.issue(ctx, body=body, principal=principal, key=key)


@router.get("/prescriptions/{rx_no}")
async def get_prescription(rx_no: Ident, ctx: CtxDep, principal: Viewer) -> dict:
    return await prescriptions.get(ctx, rx_no=rx_no, principal=principal)


@router.post("/pharmacy/settlements", status_code=201)
async def pharmacy_settlement(body: PharmacySettleIn, request: Request, ctx: CtxDep, principal: Pharmacy) -> Response:
    key = idem.key_for(request, principal, body)
    response = await pharmacy.settle_prescription(ctx, body=body, principal=principal, key=key)
    wake_relay(request)
    return response


@router.post("/claims", status_code=202)
async def submit_claim(body: ClaimIn, request: Request, ctx: CtxDep, principal: Hospital) -> Response:
    key = idem.key_for(request, principal, body)
    response = await claims.submit(ctx, body=body, principal=principal, key=key)
    wake_relay(request)
    return response


@router.get("/claims/{claim_id}")
async def get_claim(claim_id: Ident, ctx: CtxDep, principal: Viewer) -> dict:
    return await claims.get(ctx, claim_id=claim_id, principal=principal)


@router.get("/accounts/{psn_no}")
async def get_account(psn_no: Ident, ctx: CtxDep, _: Viewer) -> dict:
    return await accounts.get_account(ctx, psn_no=psn_no)


@router.post("/accounts/{psn_no}/credits", status_code=201)
async def credit_account(psn_no: Ident, body: CreditIn, ctx: CtxDep, _: Admin) -> Response:
    return await accounts.credit(ctx, psn_no=psn_no, body=body)
