"""Retail purchase at a designated pharmacy 定点药店购药 (med_type 41, no prescription, DOMAIN §7).

The pharmacy presents the buyer's credential; the personal account (the buyer's own, or a spouse's, parent's or
child's through `acct_payer_psn_no`) pays the catalogue items it may pay up to its balance, the rest is cash; no
pool, no aid, no accumulator changes. It is a settlement like any other: a `settled` event, reversible with
`POST /v1/settlements/{setl_id}/reverse` (which refunds the account), in the daily totals and the books.

Unit of work: idempotency key → lock the person-year accumulators (the lock order of store/ledger.py; they are
written unchanged) → lock the paying account (422 ACCOUNT_CLOSED when closed) → engine → the visit (closed at
once), its lines, the settlement, the account payment and the outbox rows → stored answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from services.settlement.channels.pharmacy import PharmacySale, designated_pharmacy, record_sale
from services.settlement.eligibility_client import verify_credential
from services.settlement.engine import Adjudication, Claim, EngineError, adjudicate_purchase
from services.settlement.runtime import Ctx, business_date, engine_problem
from services.settlement.schemas import FeeItemIn, PurchaseIn
from services.settlement.settle.inputs import account_payer, checked_person, fee_line, reject_violations
from services.settlement.settle.payloads import VisitFacts
from services.settlement.store.ledger import lock_account, lock_accumulators, new_id
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.money import fmt
from shared.problems import Problem

_PHARMACY = Sql("SELECT kind, level, affiliation, admdvs, suspended FROM institutions WHERE fixmedins_code = :code")
# A business day's account payments and retail purchases, net of that day's reversals (reporting reconciles them).
_TOTALS = Sql("""
SELECT coalesce(sum(acct), 0) AS acct_pay,
       coalesce(sum(acct) FILTER (WHERE family), 0) AS family_acct_pay,
       coalesce(sum(n) FILTER (WHERE retail), 0) AS purchases,
       coalesce(sum(medfee) FILTER (WHERE retail), 0) AS purchase_medfee,
       coalesce(sum(acct) FILTER (WHERE retail), 0) AS purchase_acct_pay,
       coalesce(sum(medfee - acct) FILTER (WHERE retail), 0) AS purchase_cash_pay
  FROM (SELECT 1 AS n, medfee_sumamt AS medfee, acct_pay AS acct, breakdown ->> 'pool' = 'retail' AS retail,
               acct_pay > 0 AND acct_payer_psn_no <> psn_no AS family
          FROM settlements WHERE setl_date = :day
        UNION ALL
        SELECT -1, -medfee_sumamt, -acct_pay, breakdown ->> 'pool' = 'retail',
               acct_pay > 0 AND acct_payer_psn_no <> psn_no
          FROM settlements WHERE rev_date = :day) moves
""")


@dataclass(frozen=True, slots=True)
class Purchase(PharmacySale):
    """A retail purchase checked before the accumulators and the account; `now` is when the lines occurred."""

    now: datetime


async def checked_purchase(ctx: Ctx, *, body: PurchaseIn) -> Purchase:
    """Every check of a retail purchase before the accumulators and the account (the purchase's and the
    presettle's): a designated pharmacy, the buyer by the credential, the payer in the family."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_PHARMACY, code=body.fixmedins_code)
    pharmacy = designated_pharmacy(row, code=body.fixmedins_code)
    now = ctx.now()
    today = business_date(now)
    holder = await verify_credential(
        ctx.eligibility, api_key=ctx.api_key, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
    )
    if holder is None:
        raise Problem(
            422,
            "CREDENTIAL_MISMATCH",
            "the credential resolves to no insured person",
            errors=[{"field": "mdtrt_cert_no", "code": "CREDENTIAL_MISMATCH", "detail": "no such credential"}],
        )
    person = await checked_person(
        ctx, psn_no=holder, on=today, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
    )
    payer = account_payer(person, acct_used_flag=True, acct_payer_psn_no=body.acct_payer_psn_no)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=pharmacy.admdvs, on=today)
    items = [
        FeeItemIn(
            feedetl_sn=i.feedetl_sn,
            med_list_codg=i.med_list_codg,
            med_list_name=i.med_list_name,
            pric=i.pric,
            cnt=i.cnt,
            fee_ocur_time=now,
        )
        for i in body.items
    ]
    mdtrt_id = new_id("M")
    try:
        claim = Claim(
            med_type="41",
            institution=pharmacy,
            begin_date=today,
            lines=tuple(fee_line(i) for i in items),
            mdtrt_id=mdtrt_id,
            acct_used_flag=True,
            acct_payer_psn_no=payer if payer != person.psn_no else None,
        )
    except EngineError as exc:
        raise engine_problem(exc) from None
    facts = VisitFacts(
        mdtrt_id=mdtrt_id,
        fixmedins_code=body.fixmedins_code,
        begndate=today,
        enddate=None,
        chronic_disease=None,
        retail_purchase=True,
    )
    return Purchase(
        pharmacy=pharmacy,
        person=person,
        payer=payer,
        policy=policy,
        items=items,
        claim=claim,
        facts=facts,
        now=now,
        today=today,
    )


def purchased(ctx: Ctx, bought: Purchase, *, balance: Decimal) -> Adjudication:
    """The engine's retail purchase against the payer's `balance`; its refusals as 422 problems."""
    try:
        return adjudicate_purchase(
            claim=replace(bought.claim, account_balance=balance),
            eligibility=bought.person.snapshot,
            policy=bought.policy,
            catalogue=ctx.catalogue,
        )
    except EngineError as exc:
        raise engine_problem(exc) from None


async def purchase(ctx: Ctx, *, body: PurchaseIn, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """201 breakdown (med_type 41, every fund 0); the same Idempotency-Key answers the first result again."""
    principal.require_institution(body.fixmedins_code)
    return await idem.answer_once(ctx.db, key, lambda: _purchase(ctx, body=body, key=key))


async def _purchase(ctx: Ctx, *, body: PurchaseIn, key: idem.IdempotencyKey | None) -> Answer:
    bought = await checked_purchase(ctx, body=body)
    person = bought.person

    async def work(unit: Unit) -> Answer:
        before = await lock_accumulators(unit, psn_no=person.psn_no, year=bought.today.year)
        result = purchased(ctx, bought, balance=await lock_account(unit, psn_no=bought.payer))
        reject_violations(result)
        return await record_sale(
            unit,
            bought,
            result,
            psn_no=person.psn_no,
            cert_type=body.mdtrt_cert_type,
            setl_id=new_id("S"),
            now=bought.now,
            before=before,
        )

    return await ctx.db.transaction(idem.keeping(key, work))


async def account_totals(ctx: Ctx, *, day: date) -> dict:
    """A business day's account payments (own and family) and retail purchases, net of that day's reversals."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_TOTALS, day=day)
    return {
        "date": day.isoformat(),
        "acct_pay": fmt(Decimal(row.acct_pay)),
        "family_acct_pay": fmt(Decimal(row.family_acct_pay)),
        "purchases": {
            "count": int(row.purchases),
            "medfee_sumamt": fmt(Decimal(row.purchase_medfee)),
            "acct_pay": fmt(Decimal(row.purchase_acct_pay)),
            "psn_cash_pay": fmt(Decimal(row.purchase_cash_pay)),
        },
    }
