"""Dual channel 双通道: a designated pharmacy settles an external prescription as med_type 41, under the
outpatient rules at the prescribing hospital's level (chronic rules for a chronic prescription)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from services.settlement.channels.closed import ClosedVisit, write_closed_settlement
from services.settlement.eligibility_client import Person, fetch_person, require_active, verify_credential
from services.settlement.engine import (
    Accumulators,
    Adjudication,
    Claim,
    EngineError,
    Institution,
    Policy,
    accumulator_year,
    prescription_is_valid,
)
from services.settlement.runtime import Ctx, business_date, engine_problem
from services.settlement.schemas import FeeItemIn, PharmacySettleIn
from services.settlement.settle.inputs import (
    account_payer,
    fee_line,
    institution_of,
    reject_violations,
    run_engine,
)
from services.settlement.settle.payloads import VisitFacts
from services.settlement.store.ledger import lock_account, lock_accumulators, new_id
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Row, Sql, Unit
from shared.idempotency import Answer
from shared.money import ZERO
from shared.problems import Problem, not_found

_LOAD = Sql("""
SELECT p.kind, p.level, p.affiliation, p.admdvs, p.suspended,
       r.rx_no, r.psn_no, r.fixmedins_code AS rx_hospital, r.issued_on, r.valid_days, r.chronic_disease, r.items,
       r.used_setl_id,
       h.kind AS h_kind, h.level AS h_level, h.affiliation AS h_affiliation, h.admdvs AS h_admdvs,
       h.suspended AS h_suspended,
       (SELECT coalesce(json_agg(json_build_array(a.begndate, a.enddate)), '[]'::json)
          FROM visits a WHERE a.psn_no = r.psn_no AND a.med_type = '21') AS admissions,
       (SELECT c.balc::text FROM accounts c WHERE c.psn_no = r.psn_no) AS balc
  FROM (SELECT 1) one
  LEFT JOIN institutions p ON p.fixmedins_code = :pharmacy
  LEFT JOIN prescriptions r ON r.rx_no = :rx_no
  LEFT JOIN institutions h ON h.fixmedins_code = r.fixmedins_code
""")
_USE = Sql("""
UPDATE prescriptions SET used_setl_id = :setl_id, used_at = :at
 WHERE rx_no = :rx_no AND used_setl_id IS NULL RETURNING rx_no
""")


class _Hospital:
    def __init__(self, row) -> None:
        self.kind, self.level, self.affiliation = row.h_kind, row.h_level, row.h_affiliation
        self.admdvs, self.suspended = row.h_admdvs, False  # a later suspension does not void its prescriptions


async def _person(ctx: Ctx, *, rx, body: PharmacySettleIn, today: date) -> Person:
    """The prescription's person, the credential checked in the same call; whose credential it is otherwise."""
    person = await fetch_person(
        ctx.eligibility,
        api_key=ctx.api_key,
        psn_no=rx.psn_no,
        on=today,
        cert_type=body.mdtrt_cert_type,
        cert_no=body.mdtrt_cert_no,
    )
    if person.credential_matches is not True:
        holder = await verify_credential(
            ctx.eligibility, api_key=ctx.api_key, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
        )
        if holder is None:
            raise Problem(422, "CREDENTIAL_MISMATCH", "the credential resolves to no insured person")
        if holder != rx.psn_no:
            raise Problem(422, "PRESCRIPTION_OTHER_PERSON", f"prescription {rx.rx_no} was issued to someone else")
    require_active(person)
    return person


def _check_items(rx, items: list[FeeItemIn]) -> dict[str, dict]:
    """Only the prescribed drugs, never more than prescribed (summed per drug)."""
    prescribed = {item["med_list_codg"]: item for item in rx["items"]}
    wanted: dict[str, Decimal] = defaultdict(Decimal)
    errors = []
    for item in items:
        if item.med_list_codg not in prescribed:
            errors.append(
                {
                    "field": f"items[{item.feedetl_sn}]",
                    "code": "PRESCRIPTION_ITEM_NOT_PRESCRIBED",
                    "detail": f"{item.med_list_codg} is not on prescription {rx.rx_no}",
                    "feedetl_sn": item.feedetl_sn,
                }
            )
        else:
            wanted[item.med_list_codg] += item.cnt
    for code, cnt in wanted.items():
        if cnt > Decimal(prescribed[code]["cnt"]):
            errors.append(
                {
                    "field": f"items[{code}]",
                    "code": "PRESCRIPTION_QUANTITY_EXCEEDED",
                    "detail": f"{code}: {cnt} above the prescribed {prescribed[code]['cnt']}",
                }
            )
    if len({i.feedetl_sn for i in items}) != len(items):
        errors.append({"field": "items", "code": "DUPLICATE_LINE", "detail": "the same feedetl_sn twice"})
    if errors:
        raise Problem(422, errors[0]["code"], errors[0]["detail"], errors=errors)
    return prescribed


def designated_pharmacy(row, *, code: str) -> Institution:
    """The local copy's institution as the engine sees it; 422 unless a designated pharmacy, not suspended."""
    pharmacy = institution_of(row, code=code)
    if pharmacy.kind != "pharmacy":
        raise Problem(
            422,
            "INSTITUTION_NOT_DESIGNATED",
            f"{code} is not a designated pharmacy",
            errors=[{"field": "fixmedins_code", "code": "INSTITUTION_NOT_DESIGNATED", "detail": code}],
        )
    return pharmacy


@dataclass(frozen=True, slots=True)
class PharmacySale:
    """A sale at a pharmacy's counter (a dispensed prescription, a retail purchase) checked before the accumulators
    and the account: where, to whom, whose account pays, under which policy, the lines and the engine's claim."""

    pharmacy: Institution
    person: Person
    payer: str
    policy: Policy
    items: list[FeeItemIn]
    claim: Claim
    facts: VisitFacts
    today: date


async def record_sale(
    unit: Unit,
    sale: PharmacySale,
    result: Adjudication,
    *,
    psn_no: str,
    cert_type: str,
    setl_id: str,
    now: datetime,
    before: Accumulators,
) -> Answer:
    """201 the breakdown, the sale written as a closed visit (med_type 41) with its lines and settlement."""
    record = await write_closed_settlement(
        unit,
        result,
        visit=ClosedVisit(psn_no=psn_no, med_type="41", cert_type=cert_type, begntime=now),
        facts=sale.facts,
        items=sale.items,
        setl_id=setl_id,
        setl_time=now,
        person=sale.person,
        institution=sale.pharmacy,
        policy=sale.policy,
        payer_psn_no=sale.payer,
        before=before,
    )
    return Answer.json(record.breakdown, 201)


@dataclass(frozen=True, slots=True)
class Dispensing(PharmacySale):
    """A prescription checked for dispensing today."""

    rx: Row


def dispensed(ctx: Ctx, checked: Dispensing, *, accumulators: Accumulators, balance: Decimal) -> Adjudication:
    """The engine's dual-channel settlement against the person-year's `accumulators` and the payer's `balance`."""
    return run_engine(
        ctx,
        claim=replace(checked.claim, account_balance=balance),
        person=checked.person,
        accumulators=accumulators,
        policy=checked.policy,
    )


async def dispensing(ctx: Ctx, *, body: PharmacySettleIn) -> Dispensing:
    """Every check of a dual-channel settlement before the accumulators (the settle's and the presettle's)."""
    async with ctx.db.connect() as unit:
        rx = await unit.fetchrow(_LOAD, pharmacy=body.fixmedins_code, rx_no=body.rx_no)
    pharmacy = designated_pharmacy(rx, code=body.fixmedins_code)
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
                "med_list_name": item.med_list_name or prescribed[item.med_list_codg].get("med_list_name") or "",
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
    facts = VisitFacts(
        mdtrt_id=mdtrt_id,
        fixmedins_code=body.fixmedins_code,
        begndate=today,
        enddate=None,
        chronic_disease=rx.chronic_disease,
        rx_no=rx.rx_no,
    )
    return Dispensing(
        rx=rx,
        pharmacy=pharmacy,
        person=person,
        policy=policy,
        payer=payer,
        items=items,
        claim=claim,
        facts=facts,
        today=today,
    )


async def settle_prescription(
    ctx: Ctx, *, body: PharmacySettleIn, principal: Principal, key: idem.IdempotencyKey | None
) -> Answer:
    """201 breakdown (med_type 41); the prescription is used once, by its person, within its validity."""
    principal.require_institution(body.fixmedins_code)
    return await idem.answer_once(ctx.db, key, lambda: _settle(ctx, body=body, key=key))


async def _settle(ctx: Ctx, *, body: PharmacySettleIn, key: idem.IdempotencyKey | None) -> Answer:
    checked = await dispensing(ctx, body=body)
    rx = checked.rx
    own_balance = Decimal(rx.balc) if rx.balc is not None else ZERO

    async def work(unit: Unit) -> Answer:
        before = await lock_accumulators(unit, psn_no=rx.psn_no, year=accumulator_year(checked.claim))
        balance = await lock_account(unit, psn_no=checked.payer) if body.acct_used_flag else own_balance
        result = dispensed(ctx, checked, accumulators=before, balance=balance)
        reject_violations(result)
        setl_id, now = new_id("S"), ctx.now()
        if await unit.fetchval(_USE, setl_id=setl_id, at=now, rx_no=rx.rx_no) is None:
            raise Problem(409, "PRESCRIPTION_USED", f"prescription {rx.rx_no} was already dispensed")
        return await record_sale(
            unit,
            checked,
            result,
            psn_no=rx.psn_no,
            cert_type=body.mdtrt_cert_type,
            setl_id=setl_id,
            now=now,
            before=before,
        )

    return await ctx.db.transaction(idem.keeping(key, work))
