"""What a pharmacy settlement would be now, writing nothing (药店预结算 2101): a dual-channel prescription (as
POST /v1/pharmacy/settlements would settle it) and a retail purchase (as POST /v1/pharmacy/purchases would).

The same checks and the same engine as the settling paths, on the person-year's accumulators and the paying
account as they stand (unlocked reads); the answer is the breakdown without setl_id, with what the settling path
would reject announced as warnings (as POST /v1/visits/{mdtrt_id}/presettle does).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.settlement.channels.pharmacy import _LOAD, _check_items, _Hospital, _person
from services.settlement.eligibility_client import verify_credential
from services.settlement.engine import (
    Accumulators,
    Claim,
    EngineError,
    FeeLine,
    adjudicate_purchase,
    prescription_is_valid,
)
from services.settlement.runtime import Ctx, business_date, engine_problem
from services.settlement.schemas import PharmacySettleIn, PurchaseIn
from services.settlement.settle.inputs import (
    account_payer,
    checked_person,
    fee_line,
    institution_of,
    run_engine,
    with_violations_as_warnings,
)
from services.settlement.settle.payloads import VisitFacts, breakdown
from services.settlement.store.ledger import account_closed, new_id
from shared.auth import Principal
from shared.db import Sql
from shared.money import ZERO
from shared.problems import Problem, not_found

_STANDING = Sql("""
SELECT (SELECT amounts FROM accumulators WHERE psn_no = :psn_no AND year = :year) AS amounts,
       (SELECT balc FROM accounts WHERE psn_no = :payer) AS balc,
       (SELECT closed_on FROM accounts WHERE psn_no = :payer) AS closed_on
""")
_PHARMACY = Sql("SELECT kind, level, affiliation, admdvs, suspended FROM institutions WHERE fixmedins_code = :code")


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
    async with ctx.db.connect() as unit:
        rx = await unit.fetchrow(_LOAD, pharmacy=body.fixmedins_code, rx_no=body.rx_no)
    pharmacy = institution_of(rx, code=body.fixmedins_code)
    if pharmacy.kind != "pharmacy":
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED", f"{body.fixmedins_code} is not a designated pharmacy")
    if rx.rx_no is None:
        raise not_found("prescription", body.rx_no, "PRESCRIPTION_NOT_FOUND")
    if rx.used_setl_id is not None:
        raise Problem(409, "PRESCRIPTION_USED", f"prescription {rx.rx_no} was already dispensed")
    today = business_date(ctx.now())
    person = await _person(ctx, rx=rx, body=body, today=today)
    hospital = institution_of(_Hospital(rx) if rx.h_kind else None, code=rx.rx_hospital)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=pharmacy.admdvs, on=today)
    if not prescription_is_valid(issued_on=rx.issued_on, used_on=today, policy=policy, valid_days=rx.valid_days):
        raise Problem(422, "PRESCRIPTION_EXPIRED", f"prescription {rx.rx_no} of {rx.issued_on} is no longer valid")
    prescribed = _check_items(rx, body.items)
    items = [
        item.model_copy(
            update={
                "item_class": item.item_class or prescribed[item.med_list_codg].get("item_class"),
                "days_supply": item.days_supply
                if item.days_supply is not None
                else prescribed[item.med_list_codg]["days_supply"],
            }
        )
        for item in body.items
    ]
    payer = account_payer(person, acct_used_flag=body.acct_used_flag, acct_payer_psn_no=body.acct_payer_psn_no)
    mdtrt_id = new_id("M")
    try:
        claim = Claim(
            med_type="41",
            institution=pharmacy,
            prescriber=hospital,
            begin_date=today,
            lines=tuple(fee_line(i) for i in items),
            mdtrt_id=mdtrt_id,
            chronic_disease=rx.chronic_disease,
            acct_used_flag=body.acct_used_flag,
            acct_payer_psn_no=payer if payer != rx.psn_no else None,
            admissions=tuple((date.fromisoformat(b), date.fromisoformat(e) if e else None) for b, e in rx.admissions),
        )
    except EngineError as exc:
        raise engine_problem(exc) from None
    before, balance = await _standing(ctx, psn_no=rx.psn_no, year=today.year, payer=payer)
    result = run_engine(
        ctx, claim=replace(claim, account_balance=balance), person=person, accumulators=before, policy=policy
    )
    facts = VisitFacts(
        mdtrt_id=mdtrt_id,
        fixmedins_code=body.fixmedins_code,
        begndate=today,
        enddate=None,
        chronic_disease=rx.chronic_disease,
        rx_no=rx.rx_no,
    )
    answer = breakdown(result, setl_id=None, setl_time=None, facts=facts, status="presettled")
    return with_violations_as_warnings(answer, result)


async def presettle_purchase(ctx: Ctx, *, body: PurchaseIn, principal: Principal) -> dict:
    """The retail purchase as it would be now: the account pays what it may up to its balance, the rest is cash."""
    principal.require_institution(body.fixmedins_code)
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_PHARMACY, code=body.fixmedins_code)
    pharmacy = institution_of(row, code=body.fixmedins_code)
    if pharmacy.kind != "pharmacy":
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED", f"{body.fixmedins_code} is not a designated pharmacy")
    now = ctx.now()
    today = business_date(now)
    holder = await verify_credential(
        ctx.eligibility, api_key=ctx.api_key, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
    )
    if holder is None:
        raise Problem(422, "CREDENTIAL_MISMATCH", "the credential resolves to no insured person")
    person = await checked_person(
        ctx, psn_no=holder, on=today, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
    )
    payer = account_payer(person, acct_used_flag=True, acct_payer_psn_no=body.acct_payer_psn_no)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=pharmacy.admdvs, on=today)
    mdtrt_id = new_id("M")
    _, balance = await _standing(ctx, psn_no=person.psn_no, year=today.year, payer=payer, open_account=True)
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
                for i in body.items
            ),
            mdtrt_id=mdtrt_id,
            acct_used_flag=True,
            acct_payer_psn_no=payer if payer != person.psn_no else None,
            account_balance=balance,
        )
        result = adjudicate_purchase(claim=claim, eligibility=person.snapshot, policy=policy, catalogue=ctx.catalogue)
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
    answer = breakdown(result, setl_id=None, setl_time=None, facts=facts, status="presettled")
    return with_violations_as_warnings(answer, result)
