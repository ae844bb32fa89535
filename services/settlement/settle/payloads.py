"""The answers and event payloads of a settlement and its reversal (CONTRACT "Breakdown", docs/events.md), and the
record the store keeps of a settlement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.settlement.eligibility_client import Person
from services.settlement.engine import MONEY_FIELDS, Adjudication, Institution, InvariantViolation, LineResult, Policy
from services.settlement.engine.eligibility import aid_identities_for
from services.settlement.store.ledger import SettlementRecord
from shared.admdvs import same_city, same_province
from shared.events.topics import SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE
from shared.money import fmt


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the events say about the visit besides the adjudication."""

    mdtrt_id: str
    fixmedins_code: str
    begndate: date
    enddate: date | None
    chronic_disease: str | None
    declared: bool = False
    merged_mdtrt_ids: tuple[str, ...] = ()
    rx_no: str | None = None
    claim_id: str | None = None
    retail_purchase: bool = False  # 定点药店购药 without a prescription: the personal account only (DOMAIN §7)


def origin(insuplc_admdvs: str, home_region: str) -> str:
    """local (same city as the platform's pooling area), province, or other_province."""
    if same_city(insuplc_admdvs, home_region):
        return "local"
    if same_province(insuplc_admdvs, home_region):
        return "province"
    return "other_province"


def breakdown(
    result: Adjudication, *, setl_id: str | None, setl_time: datetime | None, facts: VisitFacts, status: str | None
) -> dict:
    """The CONTRACT breakdown plus what an HIS needs to file it."""
    body = {"setl_id": setl_id, **result.to_breakdown()}
    body["mdtrt_id"] = facts.mdtrt_id
    body.update(
        setl_time=setl_time.isoformat() if setl_time else None,
        setl_date=setl_time.date().isoformat() if setl_time else None,
        status=status,
        fixmedins_code=facts.fixmedins_code,
        declared=facts.declared,
        pool=result.pool,
        aid_category=result.aid_category,
        acct_payer_psn_no=result.acct_payer_psn_no,
        policy_version=result.policy_version,
        merged_mdtrt_ids=list(facts.merged_mdtrt_ids),
    )
    if facts.rx_no:
        body["rx_no"] = facts.rx_no
    if facts.claim_id:
        body["claim_id"] = facts.claim_id
    return body


def settled_payload(
    result: Adjudication,
    *,
    setl_id: str,
    setl_time: datetime,
    facts: VisitFacts,
    person: Person,
    institution: Institution,
    policy: Policy,
) -> dict:
    """The `settled` event of docs/events.md."""
    two_disease = None
    if result.pool == "chronic" and facts.chronic_disease in policy.scheme(result.insutype).chronic_per_disease:
        two_disease = facts.chronic_disease
    payload = {
        "setl_id": setl_id,
        "mdtrt_id": facts.mdtrt_id,
        "psn_no": result.psn_no,
        "insutype": result.insutype,
        "psn_type": person.psn_type,
        "insuplc_admdvs": person.insuplc_admdvs,
        "origin": origin(person.insuplc_admdvs, policy.region),
        "fixmedins_code": facts.fixmedins_code,
        "fixmedins_kind": institution.kind,
        "fixmedins_level": institution.level,
        "fixmedins_affiliation": institution.affiliation,
        "fixmedins_admdvs": institution.admdvs,
        "med_type": result.med_type,
        "chronic_disease": facts.chronic_disease,
        "two_disease": two_disease,
        "aid_category": result.aid_category,
        "setl_time": setl_time.isoformat(),
        "setl_date": setl_time.date().isoformat(),
        "begndate": facts.begndate.isoformat(),
        "enddate": facts.enddate.isoformat() if facts.enddate else None,
        "covid_status": result.covid_status,
        "offsite": result.offsite,
        "declared": facts.declared,
        "retail_purchase": facts.retail_purchase,
        "acct_payer_psn_no": result.acct_payer_psn_no,  # a family member whose account paid (家庭共济), else null
        # supervision (DOMAIN §13): every identity the person held on the visit's date(s), and the lines
        "aid_categories": held_categories(person, facts),
        "lines": [line_payload(line) for line in result.lines],
    }
    for name in MONEY_FIELDS:
        payload[name] = fmt(getattr(result, name))
    return payload


def held_categories(person: Person, facts: VisitFacts) -> list[str]:
    """The identity categories (救助身份, 防返贫监测对象 …) the person held on the visit's day (a stay: its admission or
    discharge day), for the 防返贫 rules of supervision; medical aid itself uses only those its policy knows."""
    dates = (facts.begndate, facts.enddate) if facts.enddate is not None else (facts.begndate,)
    held = aid_identities_for(eligibility=person.snapshot, dates=dates)
    return sorted({identity.category for identity in held})


def line_payload(line: LineResult) -> dict[str, Any]:
    """One fee line of the `settled` event: the line as uploaded, the class applied, and what the catalogue says of
    its code (category, essential drug, watched goods) for the supervision rules."""
    return {
        "feedetl_sn": line.feedetl_sn,
        "med_list_codg": line.med_list_codg,
        "med_list_name": line.med_list_name,
        "item_class": line.item_class,
        "category": line.category,
        "essential": line.essential,
        "watched": line.watched,
        "pric": fmt(line.pric),
        "cnt": _quantity(line.cnt),
        "amount": fmt(line.amount),
        "days_supply": line.days_supply,
        "fee_ocur_time": line.fee_ocur_time.isoformat() if line.fee_ocur_time is not None else None,
    }


def _quantity(cnt: Decimal) -> str:
    """A quantity as plain text without trailing zeros ("2", "0.5")."""
    text = format(cnt, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def subsidy_payload(result: Adjudication, *, setl_id: str, setl_date: date, fixmedins_code: str) -> dict | None:
    """The `subsidy-due` event of a COVID settlement with a finance subsidy (None otherwise)."""
    subsidy = result.subsidy
    if subsidy is None or subsidy.amount <= 0:
        return None
    return {
        "setl_id": setl_id,
        "fixmedins_code": fixmedins_code,
        "case_status": subsidy.case_status,
        "amount": fmt(subsidy.amount),
        "advance_payer": subsidy.advance_payer,
        "shares": [{"payer": payer, "amount": fmt(amount)} for payer, amount in subsidy.shares],
        "psn_no": result.psn_no,
        "setl_date": setl_date.isoformat(),
        "reversal": False,
    }


def assert_amounts(result: Adjudication) -> None:
    """DOMAIN §12, checked again right before the settlement is written."""
    r = result
    amounts = [
        r.medfee_sumamt,
        r.hifp_pay,
        r.hifmi_pay,
        r.maf_pay,
        r.tilt_aid_pay,
        r.fin_subsidy_pay,
        r.acct_pay,
        r.psn_cash_pay,
        r.fund_pay_sumamt,
        r.psn_pay,
    ]
    if any(a < 0 for a in amounts):
        raise InvariantViolation(f"negative amount in settlement of {r.mdtrt_id}")
    if (
        r.medfee_sumamt
        != r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay + r.fin_subsidy_pay + r.acct_pay + r.psn_cash_pay
    ):
        raise InvariantViolation(f"amount identity fails for {r.mdtrt_id}")
    if (
        r.psn_pay != r.acct_pay + r.psn_cash_pay
        or r.fund_pay_sumamt != r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay
    ):
        raise InvariantViolation(f"psn_pay / fund_pay_sumamt identity fails for {r.mdtrt_id}")


def settlement_record(
    result: Adjudication,
    *,
    setl_id: str,
    setl_time: datetime,
    facts: VisitFacts,
    person: Person,
    institution: Institution,
    policy: Policy,
    payer_psn_no: str,
) -> SettlementRecord:
    """What the store writes of a settlement: amounts, the answer, the events."""
    assert_amounts(result)
    body = breakdown(result, setl_id=setl_id, setl_time=setl_time, facts=facts, status="settled")
    event = settled_payload(
        result, setl_id=setl_id, setl_time=setl_time, facts=facts, person=person, institution=institution, policy=policy
    )
    subsidy = subsidy_payload(result, setl_id=setl_id, setl_date=setl_time.date(), fixmedins_code=facts.fixmedins_code)
    events: list[tuple[str, dict[str, Any]]] = [(SETTLED, event)]
    if subsidy is not None:
        events.append((SUBSIDY_DUE, subsidy))
    return SettlementRecord(
        setl_id=setl_id,
        setl_time=setl_time,
        mdtrt_id=facts.mdtrt_id,
        psn_no=result.psn_no,
        fixmedins_code=facts.fixmedins_code,
        med_type=result.med_type,
        year=result.year,
        declared=facts.declared,
        medfee_sumamt=result.medfee_sumamt,
        fund_pay_sumamt=result.fund_pay_sumamt,
        fin_subsidy_pay=result.fin_subsidy_pay,
        psn_pay=result.psn_pay,
        acct_pay=result.acct_pay,
        acct_payer_psn_no=payer_psn_no,
        accumulator_delta=result.accumulator_delta,
        breakdown=body,
        event=event,
        subsidy=subsidy,
        events=tuple(events),
    )


def reversal_events(row: Any, *, reversed_at: datetime) -> list[tuple[str, dict[str, Any]]]:
    """`settlement-reversed` (and the `subsidy-due` reversal of a COVID settlement) for a settlement row."""
    rev_date = reversed_at.date().isoformat()
    events: list[tuple[str, dict[str, Any]]] = [
        (
            SETTLEMENT_REVERSED,
            {
                "setl_id": row["setl_id"],
                "mdtrt_id": row["mdtrt_id"],
                "psn_no": row["psn_no"],
                "fixmedins_code": row["fixmedins_code"],
                "reversed_at": reversed_at.isoformat(),
                "rev_date": rev_date,
                "original": row["event"],
            },
        )
    ]
    if row["subsidy"]:
        events.append((SUBSIDY_DUE, {**row["subsidy"], "reversal": True, "rev_date": rev_date}))
    return events


def reversal_answer(row: Any, *, reversed_at: datetime) -> dict[str, Any]:
    """The answer to a reversal."""
    return {
        "setl_id": row["setl_id"],
        "status": "reversed",
        "reversed_at": reversed_at.isoformat(),
        "rev_date": reversed_at.date().isoformat(),
        "mdtrt_id": row["mdtrt_id"],
    }
