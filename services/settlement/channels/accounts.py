"""Personal accounts 个人账户 (DOMAIN §7): balance, idempotent credits per person and period.

Payments and refunds happen inside the settle / reverse transaction (ledger.py), with the account row
locked after the person-year accumulators; a CHECK keeps every balance ≥ 0.

Who reads a balance (as the national platform's 1101): admin and ops keys any; an HIS or pharmacy key only a
person its institution has seen (a visit, settlement, prescription or declared claim there, or a settlement there
paid from this account), or one whose credential it presents. Otherwise 403 PERSON_NOT_SEEN, the same answer
whether the person exists or not.
"""

from __future__ import annotations

from decimal import Decimal

from services.settlement.eligibility_client import verify_credential
from services.settlement.runtime import Ctx
from services.settlement.schemas import CreditIn
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.money import ZERO, fmt
from shared.problems import Problem

_BALANCE = Sql("SELECT balc FROM accounts WHERE psn_no = :psn_no")
# The balance and whether the institution has seen the person, in one statement. Visits (which pharmacy and settled
# declared claims also write) and settlements are found by their psn_no indexes; prescriptions, claims and the
# account payer have none on the person yet, so a refusal scans them (a read route, not the settlement path).
_BALANCE_IF_SEEN = Sql("""
SELECT (SELECT balc FROM accounts WHERE psn_no = :psn_no) AS balc,
       EXISTS (SELECT 1 FROM visits WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM settlements WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM prescriptions WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM claims WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM settlements WHERE acct_payer_psn_no = :psn_no AND fixmedins_code = :code) AS seen
""")
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


async def get_account(
    ctx: Ctx, *, psn_no: str, principal: Principal, cert_type: str | None = None, cert_no: str | None = None
) -> dict:
    """{psn_no, balc} (0.00 without an account) for a key that may see the person's account, else 403."""
    if (cert_type is None) != (cert_no is None):
        raise Problem(
            422,
            "INVALID_CREDENTIAL",
            "a credential is mdtrt_cert_type and mdtrt_cert_no together",
            errors=[
                {
                    "field": "mdtrt_cert_type" if cert_type is None else "mdtrt_cert_no",
                    "code": "INVALID_CREDENTIAL",
                    "detail": "missing: give both or neither",
                }
            ],
        )
    if principal.role in ("admin", "ops"):
        async with ctx.db.connect() as unit:
            return {"psn_no": psn_no, "balc": fmt(await balance(unit, psn_no))}
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_BALANCE_IF_SEEN, psn_no=psn_no, code=principal.fixmedins_code)
    if not row.seen and not (cert_type and cert_no and await _holds_credential(ctx, psn_no, cert_type, cert_no)):
        raise Problem(
            403,
            "PERSON_NOT_SEEN",
            f"institution {principal.fixmedins_code} has no visit, settlement or prescription of person {psn_no}: "
            "present the person's credential (mdtrt_cert_type, mdtrt_cert_no) to read the account",
        )
    return {"psn_no": psn_no, "balc": fmt(ZERO if row.balc is None else Decimal(row.balc))}


async def _holds_credential(ctx: Ctx, psn_no: str, cert_type: str, cert_no: str) -> bool:
    """The credential resolves to this person at eligibility (one credential of nobody is simply no match)."""
    holder = await verify_credential(ctx.eligibility, api_key=ctx.api_key, cert_type=cert_type, cert_no=cert_no)
    return holder == psn_no


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
