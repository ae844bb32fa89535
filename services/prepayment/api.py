"""HTTP routes of the prepayment service (thin: parse, call one function, shape the answer).

Writes need an admin key; reads an admin or ops key; an institution's own HIS (or pharmacy)
key may read its position. POSTs that move money honour Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.prepayment import budgets, clearings, finance, prepayments, store
from services.prepayment.budgets import BudgetThresholds
from services.prepayment.ledger import CODE_PATTERN
from services.prepayment.schemas import (
    AdvanceIn,
    BudgetIn,
    BudgetOut,
    ClearingIn,
    ClearingOut,
    ClearingsOut,
    DayPaymentsOut,
    DisbursedOut,
    EntriesOut,
    Payer,
    PlanOut,
    PositionOut,
    PrepaymentIn,
    PrepaymentOut,
    RunDueIn,
    ScheduleIn,
    SubsidiesOut,
    SubsidyPaymentIn,
    SubsidyPaymentOut,
    SubsidyPositionsOut,
    TrialBalanceOut,
)
from shared import idempotency
from shared.auth import Admin, Principal, require
from shared.db import Unit
from shared.idempotency import Answer
from shared.inputs import BusinessDay
from shared.service import Db, idempotency_key, respond

router = APIRouter(prefix="/v1", tags=["prepayment"])
OpsReader = Annotated[Principal, Depends(require("ops"))]
Viewer = Annotated[Principal, Depends(require("ops", "his", "pharmacy"))]
CodePath = Path(min_length=1, max_length=32, pattern=CODE_PATTERN)
CodeQuery = Query(default=None, min_length=1, max_length=32, pattern=CODE_PATTERN)
IdPath = Path(min_length=1, max_length=36, pattern=r"^[0-9a-fA-F-]+$")
Limit = Query(default=1000, ge=1, le=5000)
EntryKind = Literal[
    "settlement",
    "settlement-reversal",
    "account-payment",
    "account-payment-reversal",
    "subsidy",
    "subsidy-reversal",
    "subsidy-payment",
    "prepayment",
    "clearing",
]


async def _budget_thresholds(request: Request) -> BudgetThresholds:
    """When budget use is flagged: deploy/policy/budget.toml, loaded at start-up."""
    return request.app.state.budget_thresholds


Thresholds = Annotated[BudgetThresholds, Depends(_budget_thresholds)]


# ---------------------------------------------------------------- prepayments


@router.post("/prepayments", status_code=201, response_model=PrepaymentOut)
async def disburse_prepayment(body: PrepaymentIn, db: Db, request: Request, principal: Admin) -> Response:
    """Disburse a prepayment now; emits `prepayment-disbursed`."""

    async def work(unit: Unit) -> Answer:
        return Answer.json(await prepayments.disburse(unit, body), status=201)

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.post("/prepayments/schedule", status_code=201, response_model=PlanOut)
async def schedule_prepayments(body: ScheduleIn, db: Db, request: Request, principal: Admin) -> Response:
    """A monthly prepayment plan; each payment is disbursed when due or when advanced."""

    async def work(unit: Unit) -> Answer:
        return Answer.json(await prepayments.schedule(unit, body), status=201)

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.post("/prepayments/run-due", response_model=DisbursedOut)
async def disburse_due(db: Db, request: Request, principal: Admin, body: RunDueIn | None = None) -> Response:
    """Disburse scheduled prepayments due on or before `on` (default today); the service also does this itself."""
    body = body or RunDueIn()
    on = body.on or store.business_today()

    async def work(unit: Unit) -> Answer:
        done = await prepayments.disburse_due(unit, on)
        return Answer.json(DisbursedOut(on=on, disbursed=done).model_dump(mode="json"))

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.post("/prepayments/{prepayment_id}/advance", response_model=PrepaymentOut)
async def advance_prepayment(
    body: AdvanceIn, db: Db, request: Request, principal: Admin, prepayment_id: str = IdPath
) -> Response:
    """Disburse a scheduled prepayment earlier than planned."""

    async def work(unit: Unit) -> Answer:
        return Answer.json(await prepayments.advance(unit, prepayment_id, body.disbursed_on))

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.get("/prepayments", response_model=list[PrepaymentOut])
async def list_prepayments(
    db: Db,
    _: OpsReader,
    fixmedins_code: str | None = CodeQuery,
    status: Literal["scheduled", "disbursed"] | None = None,
    limit: int = Limit,
):
    async with db.connect() as unit:
        return await prepayments.find(unit, fixmedins_code=fixmedins_code, status=status, limit=limit)


@router.get("/prepayments/{prepayment_id}", response_model=PrepaymentOut)
async def get_prepayment(db: Db, _: OpsReader, prepayment_id: str = IdPath):
    async with db.connect() as unit:
        return await prepayments.get(unit, prepayment_id)


# ---------------------------------------------------------------- positions and the ledger


@router.get("/institutions/{code}/position", response_model=PositionOut)
async def get_position(db: Db, principal: Viewer, code: str = CodePath):
    """{prepaid, fund_payable, acct_payable, subsidy_receivable, net}; net = fund_payable + acct_payable +
    subsidy_receivable − prepaid."""
    if principal.role not in ("admin", "ops"):
        principal.require_institution(code)
    async with db.connect() as unit:
        return await store.get_position(unit, code)


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut)
async def get_trial_balance(db: Db, _: OpsReader, fixmedins_code: str | None = CodeQuery):
    """Every account's balance (debits − credits); debits = credits. Optionally one institution's entries only."""
    async with db.connect() as unit:
        result = await store.get_trial_balance(unit, fixmedins_code=fixmedins_code)
    return {
        "debits": result.debits,
        "credits": result.credits,
        "accounts": [{"account": account, "balance": balance} for account, balance in result.accounts],
    }


@router.get("/ledger/entries", response_model=EntriesOut)
async def list_entries(
    db: Db,
    _: OpsReader,
    fixmedins_code: str | None = CodeQuery,
    setl_id: str | None = Query(default=None, min_length=1, max_length=64, pattern=r"^[!-~]+$"),
    kind: EntryKind | None = None,
    limit: int = Limit,
):
    async with db.connect() as unit:
        return {
            "entries": await store.list_entries(
                unit, fixmedins_code=fixmedins_code, setl_id=setl_id, kind=kind, limit=limit
            )
        }


@router.get("/subsidies", response_model=SubsidiesOut)
async def list_subsidies(
    db: Db, _: OpsReader, payer: Payer, fixmedins_code: str | None = CodeQuery, limit: int = Limit
):
    """What one finance level owes: its final share per COVID settlement (reversed ones omitted)."""
    async with db.connect() as unit:
        return await store.subsidies_of(unit, payer=payer, fixmedins_code=fixmedins_code, limit=limit)


@router.post("/subsidy-payments", status_code=201, response_model=SubsidyPaymentOut)
async def pay_subsidy(body: SubsidyPaymentIn, db: Db, request: Request, principal: Admin) -> Response:
    """Finance pays a hospital its COVID subsidy, or a level pays its share to the level that advanced it; never more
    than is outstanding (422 PAYMENT_EXCEEDS_OUTSTANDING). The same `ref` again: 200, the first answer."""

    async def work(unit: Unit) -> Answer:
        answer, created = await finance.record_payment(unit, body)
        return Answer.json(answer, status=201 if created else 200)

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.get("/subsidy-payments", response_model=DayPaymentsOut)
async def day_payments(
    db: Db,
    _: OpsReader,
    day: Annotated[BusinessDay, Query(alias="date")],
    limit: int = Query(default=finance.MAX_PAYMENTS, ge=1, le=finance.MAX_PAYMENTS),
):
    """Finance's payments of a day (`paid_on`): count and amount in all and per payer level, and the payments (for
    reporting's reconciliation)."""
    async with db.connect() as unit:
        return await finance.payments_of_day(unit, day=day, limit=limit)


@router.get("/subsidies/positions", response_model=SubsidyPositionsOut)
async def subsidy_positions(db: Db, _: OpsReader):
    """Per finance level: advanced, recoverable, share_due, paid, received, outstanding; per hospital: receivable,
    paid, outstanding."""
    async with db.connect() as unit:
        return await finance.positions(unit)


# ---------------------------------------------------------------- clearing and budgets


@router.post("/clearings", status_code=201, response_model=ClearingsOut)
async def run_clearing(body: ClearingIn, db: Db, request: Request, principal: Admin) -> Response:
    """Clear a period per institution: net_due = carried_in + fund_payable − prepaid (idempotent per period)."""

    async def work(unit: Unit) -> Answer:
        result, created = await clearings.run(
            unit, period_start=body.period_start, period_end=body.period_end, fixmedins_code=body.fixmedins_code
        )
        return Answer.json(result, status=201 if created else 200)

    return respond(await idempotency.run(db, idempotency_key(request, principal, body), work))


@router.get("/clearings", response_model=list[ClearingOut])
async def list_clearings(db: Db, _: OpsReader, fixmedins_code: str | None = CodeQuery, limit: int = Limit):
    async with db.connect() as unit:
        return await clearings.history(unit, fixmedins_code=fixmedins_code, limit=limit)


@router.put("/budgets/{code}", response_model=BudgetOut)
async def put_budget(body: BudgetIn, db: Db, thresholds: Thresholds, _: Admin, code: str = CodePath):
    """Set or replace a year's budget; emits `budget-set` (with a version that grows with every change)."""
    return await db.transaction(
        lambda unit: budgets.put_budget(unit, code, year=body.year, amount=body.amount, thresholds=thresholds)
    )


@router.get("/budgets/{code}", response_model=BudgetOut)
async def get_budget(
    db: Db,
    thresholds: Thresholds,
    _: OpsReader,
    code: str = CodePath,
    year: int | None = Query(default=None, ge=2000, le=2099),
):
    """Budget, used, ratio and status (ok, warning, exceeded: deploy/policy/budget.toml); COVID is outside it."""
    async with db.connect() as unit:
        return await budgets.get_budget(unit, code, year=year or store.business_today().year, thresholds=thresholds)
