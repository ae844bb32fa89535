"""HTTP routes of the settlement service: visits, fee lines, presettle/settle, reversal, reading settlements;
and around the counter: catalogue, prescriptions and pharmacy settlement, declared claims, accounts.

Thin: parse, authorise, call one service function, answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response

from services.settlement.channels import accounts, claims, pharmacy, pharmacy_presettle, prescriptions, purchases
from services.settlement.runtime import CtxDep
from services.settlement.schemas import (
    CODE,
    IDENT,
    CatalogueIn,
    ClaimIn,
    ClosureIn,
    CreditIn,
    CreditRunIn,
    DischargeIn,
    FeeItemIn,
    FeesIn,
    PharmacySettleIn,
    PrescriptionIn,
    PurchaseIn,
    SettleIn,
    VisitIn,
)
from services.settlement.settle import reverse, settle
from services.settlement.store import catalogue, queries, statements
from services.settlement.visits import cancel, fees, information, lines, visits
from shared.auth import Principal, require
from shared.idempotency import Answer
from shared.inputs import MAX_OFFSET, PRINTABLE, BusinessDay
from shared.service import idempotency_key, respond

router = APIRouter(prefix="/v1", tags=["settlement"])

Hospital = Annotated[Principal, Depends(require("his"))]
Pharmacy = Annotated[Principal, Depends(require("pharmacy"))]
Institutional = Annotated[Principal, Depends(require("his", "pharmacy"))]
Viewer = Annotated[Principal, Depends(require("his", "pharmacy", "ops"))]
Ops = Annotated[Principal, Depends(require("ops"))]
Admin = Annotated[Principal, Depends(require())]
MdtrtId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
SetlId = Annotated[str, Path(min_length=1, max_length=40, pattern=IDENT)]
Ident = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)]
PsnNo = Annotated[str, Path(min_length=1, max_length=40, pattern=CODE)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
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
    setl_date: Annotated[BusinessDay, Query()],
    fixmedins_code: Annotated[str | None, Query(max_length=32, pattern=CODE)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> dict:
    return await queries.list_settlements(
        ctx, setl_date=setl_date, fixmedins_code=fixmedins_code, principal=principal, limit=limit, offset=offset
    )


@router.get("/totals")
async def totals(ctx: CtxDep, _: Ops, day: Annotated[BusinessDay, Query(alias="date")]) -> dict:
    return await queries.totals(ctx, day=day)


@router.get("/catalog")
async def search_catalogue(
    ctx: CtxDep,
    _: Viewer,
    q: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
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


# A person's credential (电子凭证 01, ID number 02, card 03) that opens the account to an institution that has not
# seen the person (1101); printable text only.
CertTypeQuery = Annotated[Literal["01", "02", "03"] | None, Query()]
CertNoQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE)]


@router.get("/accounts/{psn_no}")
async def get_account(
    psn_no: Ident,
    ctx: CtxDep,
    principal: Viewer,
    mdtrt_cert_type: CertTypeQuery = None,
    mdtrt_cert_no: CertNoQuery = None,
) -> dict:
    """{psn_no, balc}: admin and ops any; an HIS or pharmacy key a person its institution has seen, or with the
    person's credential (otherwise 403 PERSON_NOT_SEEN, whether or not the person exists)."""
    return await accounts.get_account(
        ctx, psn_no=psn_no, principal=principal, cert_type=mdtrt_cert_type, cert_no=mdtrt_cert_no
    )


@router.post("/accounts/{psn_no}/credits", status_code=201)
async def credit_account(psn_no: PsnNo, body: CreditIn, ctx: CtxDep, _: Admin) -> Response:
    return respond(await accounts.credit(ctx, psn_no=psn_no, body=body))


# ---- what an HIS takes back before a settlement, and what it reads of the books (the national-platform gateway's
# transactions 2202/2203/2205/2302/2404/2405, 2204/2301 answers, 5206, 3201; issue 12)
SnPath = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)]
Year = Annotated[int, Query(ge=1900, le=2099)]


@router.post("/visits/{mdtrt_id}/cancel")
async def cancel_visit(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Hospital) -> dict:
    """An unsettled registration or admission cancelled (status closed, without a settlement)."""
    return await cancel.cancel_visit(ctx, mdtrt_id=mdtrt_id, principal=principal)


@router.post("/visits/{mdtrt_id}/discharge/cancel")
async def cancel_discharge(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Hospital) -> dict:
    return await cancel.cancel_discharge(ctx, mdtrt_id=mdtrt_id, principal=principal)


@router.post("/visits/{mdtrt_id}/information")
async def visit_information(
    mdtrt_id: MdtrtId, body: information.VisitInformationIn, ctx: CtxDep, principal: Hospital
) -> dict:
    """An open outpatient visit's med_type (11, 14), diagnoses and chronic disease, sent after its registration."""
    return await information.set_information(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal)


@router.post("/visits/{mdtrt_id}/fees/cancel")
async def cancel_fees(mdtrt_id: MdtrtId, body: cancel.LinesCancelIn, ctx: CtxDep, principal: Hospital) -> dict:
    return await cancel.cancel_lines(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal)


@router.put("/visits/{mdtrt_id}/fees/{feedetl_sn}")
async def put_fee_line(
    mdtrt_id: MdtrtId, feedetl_sn: SnPath, body: FeeItemIn, ctx: CtxDep, principal: Hospital
) -> Response:
    """One unsettled line created (201) or replaced (200), e.g. netted with a refund of part of it."""
    return respond(await lines.put_line(ctx, mdtrt_id=mdtrt_id, feedetl_sn=feedetl_sn, item=body, principal=principal))


@router.post("/pharmacy/settlements/presettle")
async def presettle_prescription(body: PharmacySettleIn, ctx: CtxDep, principal: Pharmacy) -> dict:
    """The dual-channel settlement of a prescription as it would be now; writes nothing (2101)."""
    return await pharmacy_presettle.presettle_prescription(ctx, body=body, principal=principal)


@router.post("/pharmacy/purchases/presettle")
async def purchase_presettle(body: PurchaseIn, ctx: CtxDep, principal: Pharmacy) -> dict:
    """A retail purchase as it would be now; writes nothing (2101)."""
    return await pharmacy_presettle.presettle_purchase(ctx, body=body, principal=principal)


@router.post("/visits/{mdtrt_id}/fees/classified", status_code=201)
async def add_classified_fees(mdtrt_id: MdtrtId, body: FeesIn, ctx: CtxDep, principal: Hospital) -> Response:
    """POST …/fees, answering also how the catalogue classifies each uploaded line (2204 in one call)."""
    return respond(await lines.add_classified(ctx, mdtrt_id=mdtrt_id, body=body, principal=principal))


@router.get("/visits/{mdtrt_id}/fees")
async def classified_fees(mdtrt_id: MdtrtId, ctx: CtxDep, principal: Institutional) -> dict:
    """The visit's lines as the catalogue classifies them (class, self-pay ratio, price cap, split)."""
    return await lines.classified_lines(ctx, mdtrt_id=mdtrt_id, principal=principal)


@router.get("/persons/{psn_no}/accumulators")
async def person_accumulators(psn_no: PsnNo, year: Year, ctx: CtxDep, principal: Viewer) -> dict:
    """The person-year's accumulators (an HIS or pharmacy key: a person its institution has seen)."""
    return await statements.accumulations(ctx, psn_no=psn_no, year=year, principal=principal)


@router.get("/institutions/{code}/settlement-totals")
async def settlement_totals(
    ctx: CtxDep,
    principal: Viewer,
    code: Annotated[str, Path(min_length=1, max_length=32, pattern=CODE)],
    insutype: Annotated[Literal["310", "390"], Query()],
    clr_type: Annotated[Literal["11", "21", "41"], Query()],
    setl_optins: Annotated[str, Query(pattern=r"^[0-9]{6}$")],
    begndate: Annotated[BusinessDay, Query()],
    enddate: Annotated[BusinessDay, Query()],
) -> dict:
    """Standing settlements of the institution in [begndate, enddate] by insurance and clearing type (3201)."""
    return await statements.settlement_totals(
        ctx,
        fixmedins_code=code,
        insutype=insutype,
        clr_type=clr_type,
        area=setl_optins,
        begndate=begndate,
        enddate=enddate,
        principal=principal,
    )


# ------------------------------------------------------------------ the money after the settlement (issue 13)


@router.post("/pharmacy/purchases", status_code=201)
async def pharmacy_purchase(body: PurchaseIn, request: Request, ctx: CtxDep, principal: Pharmacy) -> Response:
    """定点药店购药 without a prescription (med_type 41): the personal account pays what it may up to its balance,
    the rest is cash; no fund pays. Reversed with POST /v1/settlements/{setl_id}/reverse."""
    key = idempotency_key(request, principal, body)
    return respond(await purchases.purchase(ctx, body=body, principal=principal, key=key))


@router.get("/account-totals")
async def account_totals(ctx: CtxDep, _: Ops, day: Annotated[BusinessDay, Query(alias="date")]) -> dict:
    """A business day's account payments and retail purchases, net of its reversals (for reconciliation)."""
    return await purchases.account_totals(ctx, day=day)


@router.post("/accounts/credit-runs", status_code=201)
async def credit_run(body: CreditRunIn, request: Request, ctx: CtxDep, principal: Admin) -> Response:
    """Credit every employee for a month (DOMAIN §7); the same month again: 200, the same answer."""
    key = idempotency_key(request, principal, body)
    return respond(await accounts.credit_run(ctx, body=body, key=key))


@router.get("/accounts/{psn_no}/statement")
async def account_statement(
    psn_no: Ident,
    ctx: CtxDep,
    principal: Viewer,
    year: Annotated[int | None, Query(ge=2000, le=2099)] = None,
    mdtrt_cert_type: CertTypeQuery = None,
    mdtrt_cert_no: CertNoQuery = None,
) -> dict:
    """A year's movements with the running balance (default: this year); who may read it as GET /v1/accounts."""
    return await accounts.statement(
        ctx,
        psn_no=psn_no,
        year=year or ctx.now().year,
        principal=principal,
        cert_type=mdtrt_cert_type,
        cert_no=mdtrt_cert_no,
    )


@router.post("/accounts/{psn_no}/closure")
async def close_account(psn_no: PsnNo, body: ClosureIn, request: Request, ctx: CtxDep, principal: Admin) -> Response:
    """Transfer out or death: the balance is paid out; later payments from the account → 422 ACCOUNT_CLOSED."""
    key = idempotency_key(request, principal, body)
    return respond(await accounts.close(ctx, psn_no=psn_no, body=body, key=key))
