"""What a pharmacy settlement would be now, writing nothing (药店预结算 2101): a dual-channel prescription (as
POST /v1/pharmacy/settlements would settle it) and a retail purchase (as POST /v1/pharmacy/purchases would).

The same checks and the same engine as the settling paths, on the person-year's accumulators and the paying
account as they stand (unlocked reads); the answer is the breakdown without setl_id, with what the settling path
would reject announced as warnings (as POST /v1/visits/{mdtrt_id}/presettle does).
"""

from __future__ import annotations

from decimal import Decimal

from services.settlement.channels.pharmacy import dispensed, dispensing
from services.settlement.channels.purchases import checked_purchase, purchased
from services.settlement.engine import Accumulators, Adjudication
from services.settlement.runtime import Ctx
from services.settlement.schemas import PharmacySettleIn, PurchaseIn
from services.settlement.settle.inputs import with_violations_as_warnings
from services.settlement.settle.payloads import VisitFacts, breakdown
from services.settlement.store.ledger import account_closed
from shared.auth import Principal
from shared.db import Sql
from shared.money import ZERO

_STANDING = Sql("""
SELECT (SELECT amounts FROM accumulators WHERE psn_no = :psn_no AND year = :year) AS amounts,
       (SELECT balc FROM accounts WHERE psn_no = :payer) AS balc,
       (SELECT closed_on FROM accounts WHERE psn_no = :payer) AS closed_on
""")


async def _standing(
    ctx: Ctx, *, psn_no: str, year: int, payer: str, open_account: bool = False
) -> tuple[Accumulators, Decimal]:
    """The person-year's accumulators and the payer's balance as they stand (unlocked); `open_account`: 422
    ACCOUNT_CLOSED for a closed one, as the purchase would."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_STANDING, psn_no=psn_no, year=year, payer=payer)
    if open_account and row.closed_on is not None:
        raise account_closed(payer, row.closed_on)
    amounts = Accumulators({k: Decimal(v) for k, v in (row.amounts or {}).items()})
    return amounts, ZERO if row.balc is None else Decimal(row.balc)


async def presettle_prescription(ctx: Ctx, *, body: PharmacySettleIn, principal: Principal) -> dict:
    """The dual-channel settlement of the prescription as it would be now (med_type 41, no setl_id)."""
    principal.require_institution(body.fixmedins_code)
    checked = await dispensing(ctx, body=body)
    before, balance = await _standing(ctx, psn_no=checked.rx.psn_no, year=checked.today.year, payer=checked.payer)
    return _presettled(dispensed(ctx, checked, accumulators=before, balance=balance), checked.facts)


async def presettle_purchase(ctx: Ctx, *, body: PurchaseIn, principal: Principal) -> dict:
    """The retail purchase as it would be now: the account pays what it may up to its balance, the rest is cash."""
    principal.require_institution(body.fixmedins_code)
    bought = await checked_purchase(ctx, body=body)
    year = bought.today.year
    _, balance = await _standing(ctx, psn_no=bought.person.psn_no, year=year, payer=bought.payer, open_account=True)
    return _presettled(purchased(ctx, bought, balance=balance), bought.facts)


def _presettled(result: Adjudication, facts: VisitFacts) -> dict:
    """The breakdown without setl_id, what the settling path would reject announced as warnings."""
    answer = breakdown(result, setl_id=None, setl_time=None, facts=facts, status="presettled")
    return with_violations_as_warnings(answer, result)
