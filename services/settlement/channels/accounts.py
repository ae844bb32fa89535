"""Personal accounts 个人账户 (DOMAIN §7): balance, idempotent credits per person and period.

Payments and refunds happen inside the settle / reverse transaction (ledger.py), with the account row
locked after the person-year accumulators; a CHECK keeps every balance ≥ 0.
"""

from __future__ import annotations

from decimal import Decimal

from services.settlement.runtime import Ctx
from services.settlement.schemas import CreditIn
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.money import ZERO, fmt
from shared.problems import Problem

_BALANCE = Sql("SELECT balc FROM accounts WHERE psn_no = :psn_no")
_RECORD_CREDIT = Sql("""
INSERT INTO account_movements (psn_no, kind, amount, period) VALUES (:psn_no, 'credit', :amount, :period)
ON CONFLICT (psn_no, period) WHERE kind = 'credit' DO NOTHING RETURNING id
""")
_EXISTING_CREDIT = Sql(
    "SELECT amount FROM account_movements WHERE psn_no = :psn_no AND period = :period AND kind = 'credit'"
)
_ADD = Sql("""
INSERT INTO accounts AS a (psn_no, balc) VALUES (:psn_no, :amount)
ON CONFLICT (psn_no) DO UPDATE SET balc = a.balc + EXCLUDED.balc, updated_at = now() RETURNING balc
""")


async def balance(unit: Unit, psn_no: str) -> Decimal:
    found = await unit.fetchval(_BALANCE, psn_no=psn_no)
    return ZERO if found is None else Decimal(found)


async def get_account(ctx: Ctx, *, psn_no: str) -> dict:
    """{psn_no, balc}; a person without an account has 0.00."""
    async with ctx.db.connect() as unit:
        return {"psn_no": psn_no, "balc": fmt(await balance(unit, psn_no))}


async def credit(ctx: Ctx, *, psn_no: str, body: CreditIn) -> Answer:
    """201 the first time for (person, period); the same amount again 200 (no-op); another amount 409."""

    async def work(unit: Unit) -> Answer:
        recorded = await unit.fetchval(_RECORD_CREDIT, psn_no=psn_no, amount=body.amount, period=body.period)
        if recorded is None:
            existing = Decimal(await unit.fetchval(_EXISTING_CREDIT, psn_no=psn_no, period=body.period))
            if existing != body.amount:
                raise Problem(
                    409,
                    "CREDIT_PERIOD_CONFLICT",
                    f"period {body.period} was credited {fmt(existing)} to {psn_no}, not {fmt(body.amount)}",
                )
            current = await balance(unit, psn_no)
            return Answer.json(
                {
                    "psn_no": psn_no,
                    "period": body.period,
                    "amount": fmt(body.amount),
                    "balc": fmt(current),
                    "created": False,
                },
                200,
            )
        new_balance = await unit.fetchval(_ADD, psn_no=psn_no, amount=body.amount)
        return Answer.json(
            {
                "psn_no": psn_no,
                "period": body.period,
                "amount": fmt(body.amount),
                "balc": fmt(Decimal(new_balance)),
                "created": True,
            },
            201,
        )

    return await ctx.db.transaction(work)
