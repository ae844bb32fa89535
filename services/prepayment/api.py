"""HTTP routes of the prepayment service (thin: parse, call one function, shape the answer).

Writes need an admin key; reads an admin or ops key; an institution's own HIS (or pharmacy)
key may read its position. POSTs that move money honour Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from services.prepayment import budgets, clearings, idempotency, prepayments, store
from services.prepayment.budgets import BudgetThresholds
from services.prepayment.ledger import CODE_PATTERN
from services.prepayment.schemas import (
    AdvanceIn, BudgetIn, BudgetOut, ClearingIn, ClearingOut, ClearingsOut, DisbursedOut, EntriesOut, Payer,
    PlanOut, PositionOut, PrepaymentIn, PrepaymentOut, RunDueIn, ScheduleIn, SubsidiesOut, TrialBalanceOut,
)
from shared.auth import Admin, Principal, require
from shared.db import Sessions, unit_of_work
from shared.service import wake_relay

router = APIRouter(prefix="/v1", tags=["prepayment"])
OpsReader = Annotated[Principal, Depends(require("ops"))]
Viewer = Annotated[Principal, Depends(require("ops", "his", "pharmacy"))]
CodePath = Path(min_length=1, max_length=32, pattern=CODE_PATTERN)
CodeQuery = Query(default=None, min_length=1, max_length=32, pattern=CODE_PATTERN)
IdPath = Path(min_length=1, max_length=36, pattern=r"^[0-9a-fA-F-]+$")
Limit = Query(default=1000, ge=1, le=5000)
EntryKind = Literal["settlement", "settlement-reversal", "subsidy", "subsidy-reversal", "prepayment", "clearing"]


def _budget_thresholds(request: Request) -> BudgetThresholds:
    """When budget use is flagged: deploy/policy/budget.toml, loaded at start-up."""
    return request.app.state.budget_thresholds


Thresholds = Annotated[BudgetThresholds, Depends(_budget_thresholds)]


# ---------------------------------------------------------------- prepayments

@router.post("/prepayments", status_code=201, response_model=PrepaymentOut)
async def disburse_prepayment(body: PrepaymentIn, sessions: Sessions, request: Request, _: Admin):
    """Disburse a prepayment now; emits `prepayment-disbursed`."""
    async def work(session):
        return 201, await prepayments.disburse(session, body)
    return await idempotency.respond(request, sessions, body=body.model_dump(mode="json"), work=work)


@router.post("/prepayments/schedule", status_code=201, response_model=PlanOut)
async def schedule_prepayments(body: ScheduleIn, sessions: Sessions, request: Request, _: Admin):
    """A monthly prepayment plan; each payment is disbursed when due or when advanced."""
    async def work(session):
        return 201, await prepayments.schedule(session, body)
    return await idempotency.respond(request, sessions, body=body.model_dump(mode="json"), work=work)


@router.post("/prepayments/run-due", response_model=DisbursedOut)
async def disburse_due(sessions: Sessions, request: Request, _: Admin, body: RunDueIn | None = None):
    """Disburse scheduled prepayments due on or before `on` (default today); the service also does this itself."""
    body = body or RunDueIn()
    on = body.on or store.business_today()

    async def work(session):
        done = await prepayments.disburse_due(session, on)
        return 200, DisbursedOut(on=on, disbursed=done).model_dump(mode="json")
    return await idempotency.respond(request, sessions, body=body.model_dump(mode="json"), work=work)


@router.post("/prepayments/{prepayment_id}/advance", response_model=PrepaymentOut)
async def advance_prepayment(body: AdvanceIn, sessions: Sessions, request: Request, _: Admin,
                             prepayment_id: str = IdPath):
    """Disburse a scheduled prepayment earlier than planned."""
    async def work(session):
        return 200, await prepayments.advance(session, prepayment_id, body.disbursed_on)
    return await idempotency.respond(request, sessions, body=body.model_dump(mode="json"), work=work)


@router.get("/prepayments", response_model=list[PrepaymentOut])
async def list_prepayments(sessions: Sessions, _: OpsReader, fixmedins_code: str | None = CodeQuery,
                           status: Literal["scheduled", "disbursed"] | None = None, limit: int = Limit):
    async with unit_of_work(sessions) as session:
        return await prepayments.find(session, fixmedins_code=fixmedins_code, status=status, limit=limit)


@router.get("/prepayments/{prepayment_id}", response_model=PrepaymentOut)
async def get_prepayment(sessions: Sessions, _: OpsReader, prepayment_id: str = IdPath):
    async with unit_of_work(sessions) as session:
        return await prepayments.get(session, prepayment_id)


# ---------------------------------------------------------------- positions and the ledger

@router.get("/institutions/{code}/position", response_model=PositionOut)
async def get_position(sessions: Sessions, principal: Viewer, code: str = CodePath):
    """{prepaid, fund_payable, subsidy_receivable, net}; net = fund_payable + subsidy_receivable − prepaid."""
    if principal.role not in ("admin", "ops"):
        principal.require_institution(code)
    async with unit_of_work(sessions) as session:
        return await store.get_position(session, code)


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut)
async def get_trial_balance(sessions: Sessions, _: OpsReader, fixmedins_code: str | None = CodeQuery):
    """Every account's balance (debits − credits); debits = credits. Optionally one institution's entries only."""
    async with unit_of_work(sessions) as session:
        result = await store.get_trial_balance(session, fixmedins_code=fixmedins_code)
    return {"debits": result.debits, "credits": result.credits,
            "accounts": [{"account": account, "balance": balance} for account, balance in result.accounts]}


@router.get("/ledger/entries", response_model=EntriesOut)
async def list_entries(sessions: Sessions, _: OpsReader, fixmedins_code: str | None = CodeQuery,
                       setl_id: str | None = Query(default=None, min_length=1, max_length=64, pattern=r"^[!-~]+$"),
                       kind: EntryKind | None = None, limit: int = Limit):
    async with unit_of_work(sessions) as session:
        return {"entries": await store.list_entries(session, fixmedins_code=fixmedins_code, setl_id=setl_id,
                                                    kind=kind, limit=limit)}


@router.get("/subsidies", response_model=SubsidiesOut)
async def list_subsidies(sessions: Sessions, _: OpsReader, payer: Payer, fixmedins_code: str | None = CodeQuery,
                         limit: int = Limit):
    """What one finance level owes: its final share per COVID settlement (reversed ones omitted)."""
    async with unit_of_work(sessions) as session:
        return await store.subsidies_of(session, payer=payer, fixmedins_code=fixmedins_code, limit=limit)


# ---------------------------------------------------------------- clearing and budgets

@router.post("/clearings", status_code=201, response_model=ClearingsOut)
async def run_clearing(body: ClearingIn, sessions: Sessions, request: Request, _: Admin):
    """Clear a period per institution: net_due = carried_in + fund_payable − prepaid (idempotent per period)."""
    async def work(session):
        result, created = await clearings.run(session, period_start=body.period_start, period_end=body.period_end,
                                              fixmedins_code=body.fixmedins_code)
        return (201 if created else 200), result
    return await idempotency.respond(request, sessions, body=body.model_dump(mode="json"), work=work)


@router.get("/clearings", response_model=list[ClearingOut])
async def list_clearings(sessions: Sessions, _: OpsReader, fixmedins_code: str | None = CodeQuery,
                         limit: int = Limit):
    async with unit_of_work(sessions) as session:
        return await clearings.history(session, fixmedins_code=fixmedins_code, limit=limit)


@router.put("/budgets/{code}", response_model=BudgetOut)
async def put_budget(body: BudgetIn, sessions: Sessions, request: Request, thresholds: Thresholds, _: Admin,
                     code: str = CodePath):
    """Set or replace a year's budget; emits `budget-set` (with a version that grows with every change)."""
    async with unit_of_work(sessions) as session:
        result = await budgets.put_budget(session, code, year=body.year, amount=body.amount, thresholds=thresholds)
    wake_relay(request)
    return result


@router.get("/budgets/{code}", response_model=BudgetOut)
async def get_budget(sessions: Sessions, thresholds: Thresholds, _: OpsReader, code: str = CodePath,
                     year: int | None = Query(default=None, ge=2000, le=2099)):
    """Budget, used, ratio and status (ok, warning, exceeded: deploy/policy/budget.toml); COVID is outside it."""
    async with unit_of_work(sessions) as session:
        return await budgets.get_budget(session, code, year=year or store.business_today().year,
                                        thresholds=thresholds)
