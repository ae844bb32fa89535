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

from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.settlement.eligibility_client import verify_credential
from services.settlement.engine import Claim, EngineError, FeeLine, adjudicate_purchase
from services.settlement.runtime import Ctx, business_date, engine_problem
from services.settlement.schemas import FeeItemIn, PurchaseIn
from services.settlement.settle.inputs import account_payer, checked_person, institution_of, reject_violations
from services.settlement.settle.payloads import VisitFacts, settlement_record
from services.settlement.store.ledger import lock_account, lock_accumulators, new_id, write_settlement
from services.settlement.visits.fees import insert_lines, line_hash
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.money import fmt
from shared.problems import Problem

_PHARMACY = Sql("SELECT kind, level, affiliation, admdvs, suspended FROM institutions WHERE fixmedins_code = :code")
_INSERT_VISIT = Sql("""
INSERT INTO visits (mdtrt_id, psn_no, fixmedins_code, med_type, mdtrt_cert_type, begntime, begndate,
                    diagnoses, status, setl_id)
VALUES (:mdtrt_id, :psn_no, :code, '41', :cert_type, :begntime, :begndate, '[]'::jsonb, 'closed', :setl_id)
""")
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


async def purchase(ctx: Ctx, *, body: PurchaseIn, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """201 breakdown (med_type 41, every fund 0); the same Idempotency-Key answers the first result again."""
    principal.require_institution(body.fixmedins_code)
    replay = await idem.replay(ctx.db, key)
    if replay is not None:
        return replay
    try:
        return await _purchase(ctx, body=body, key=key)
    except Problem:
        replay = await idem.replay(ctx.db, key)  # the first request with this key may have finished meanwhile
        if replay is not None:
            return replay
        raise


async def _purchase(ctx: Ctx, *, body: PurchaseIn, key: idem.IdempotencyKey | None) -> Answer:
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_PHARMACY, code=body.fixmedins_code)
    pharmacy = institution_of(row, code=body.fixmedins_code)
    if pharmacy.kind != "pharmacy":
        raise Problem(
            422,
            "INSTITUTION_NOT_DESIGNATED",
            f"{body.fixmedins_code} is not a designated pharmacy",
            errors=[{"field": "fixmedins_code", "code": "INSTITUTION_NOT_DESIGNATED", "detail": body.fixmedins_code}],
        )
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
            lines=tuple(
                FeeLine(
                    feedetl_sn=i.feedetl_sn,
                    med_list_codg=i.med_list_codg,
                    med_list_name=i.med_list_name,
                    pric=i.pric,
                    cnt=i.cnt,
                    fee_ocur_time=now,
                )
                for i in items
            ),
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

    async def work(unit: Unit) -> Answer:
        first = await idem.claim(unit, key)
        if first is not None:
            return first
        before = await lock_accumulators(unit, psn_no=person.psn_no, year=today.year)
        balance = await lock_account(unit, psn_no=payer)
        try:
            result = adjudicate_purchase(
                claim=replace(claim, account_balance=balance),
                eligibility=person.snapshot,
                policy=policy,
                catalogue=ctx.catalogue,
            )
        except EngineError as exc:
            raise engine_problem(exc) from None
        reject_violations(result)
        setl_id = new_id("S")
        await unit.execute(
            _INSERT_VISIT,
            mdtrt_id=mdtrt_id,
            psn_no=person.psn_no,
            code=body.fixmedins_code,
            cert_type=body.mdtrt_cert_type,
            begntime=now,
            begndate=today,
            setl_id=setl_id,
        )
        await insert_lines(unit, mdtrt_id=mdtrt_id, items=[(i, line_hash(i)) for i in items])
        record = settlement_record(
            result,
            setl_id=setl_id,
            setl_time=now,
            facts=facts,
            person=person,
            institution=pharmacy,
            policy=policy,
            payer_psn_no=payer,
        )
        await write_settlement(unit, record, before=before)
        answer = Answer.json(record.breakdown, 201)
        await idem.remember(unit, key, answer)
        return answer

    return await ctx.db.transaction(work)


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
