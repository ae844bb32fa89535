"""Personal accounts 个人账户 (DOMAIN §7): balance, idempotent credits per person and period.

Payments and refunds happen inside the settle / reverse transaction (ledger.py), with the account row
locked after the person-year accumulators; a CHECK keeps every balance ≥ 0.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import idempotency as idem
from services.settlement.runtime import Ctx
from services.settlement.schemas import CreditIn
from shared.db import run_in_transaction
from shared.money import ZERO, fmt
from shared.problems import Problem

_BALANCE = text("SELECT balc FROM settlement.accounts WHERE psn_no = :psn_no")
_RECORD_CREDIT = text("""
INSERT INTO settlement.account_movements (psn_no, kind, amount, period) VALUES (:psn_no, 'credit', :amount, :period)
ON CONFLICT (psn_no, period) WHERE kind = 'credit' DO NOTHING RETURNING id
""")
_EXISTING_CREDIT = text(
    "SELECT amount FROM settlement.account_movements WHERE psn_no = :psn_no AND period = :period AND kind = 'credit'")
_ADD = text("""
INSERT INTO settlement.accounts AS a (psn_no, balc) VALUES (:psn_no, :amount)
ON CONFLICT (psn_no) DO UPDATE SET balc = a.balc + EXCLUDED.balc, updated_at = now() RETURNING balc
""")


async def balance(session: AsyncSession, psn_no: str) -> Decimal:
    found = await session.scalar(_BALANCE, {"psn_no": psn_no})
    return ZERO if found is None else Decimal(found)


async def get_account(ctx: Ctx, *, psn_no: str) -> dict:
    """{psn_no, balc}; a person without an account has 0.00."""
    async with ctx.sessions() as session:
        return {"psn_no": psn_no, "balc": fmt(await balance(session, psn_no))}


async def credit(ctx: Ctx, *, psn_no: str, body: CreditIn) -> Response:
    """201 the first time for (person, period); the same amount again 200 (no-op); another amount 409."""

    async def work(session: AsyncSession) -> Response:
        recorded = await session.scalar(_RECORD_CREDIT, {"psn_no": psn_no, "amount": body.amount,
                                                         "period": body.period})
        if recorded is None:
            existing = Decimal(await session.scalar(_EXISTING_CREDIT, {"psn_no": psn_no, "period": body.period}))
            if existing != body.amount:
                raise Problem(409, "CREDIT_PERIOD_CONFLICT",
                              f"period {body.period} was credited {fmt(existing)} to {psn_no}, not {fmt(body.amount)}")
            current = await balance(session, psn_no)
            return idem.json_response({"psn_no": psn_no, "period": body.period, "amount": fmt(body.amount),
                                       "balc": fmt(current), "created": False}, 200)
        new_balance = await session.scalar(_ADD, {"psn_no": psn_no, "amount": body.amount})
        return idem.json_response({"psn_no": psn_no, "period": body.period, "amount": fmt(body.amount),
                                   "balc": fmt(Decimal(new_balance)), "created": True}, 201)

    return await run_in_transaction(ctx.sessions, work)
