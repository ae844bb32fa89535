"""A visit settled as it is recorded (a pharmacy's dispensing or retail purchase, a declared claim): the visit is
written closed, with its lines and its settlement, in the unit of work that decided it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.settlement.eligibility_client import Person
from services.settlement.engine import Accumulators, Adjudication, Institution, Policy
from services.settlement.schemas import FeeItemIn
from services.settlement.settle.payloads import VisitFacts, settlement_record
from services.settlement.store.ledger import SettlementRecord, write_settlement
from services.settlement.visits.fees import insert_lines, line_hash
from shared.db import Sql, Unit

_INSERT_VISIT = Sql("""
INSERT INTO visits (mdtrt_id, psn_no, fixmedins_code, med_type, mdtrt_cert_type, begntime, begndate, endtime, enddate,
                    diagnoses, chronic_disease, referral_compliant, status, setl_id, rx_no, claim_id)
VALUES (:mdtrt_id, :psn_no, :code, :med_type, :cert_type, :begntime, :begndate, :endtime, :enddate,
        CAST(:diagnoses AS jsonb), :chronic_disease, :referral_compliant, 'closed', :setl_id, :rx_no, :claim_id)
""")


@dataclass(frozen=True, slots=True)
class ClosedVisit:
    """What the visit row keeps besides its `VisitFacts` (mdtrt_id, institution, dates, chronic disease, rx, claim)."""

    psn_no: str
    med_type: str
    cert_type: str | None
    begntime: datetime
    endtime: datetime | None = None
    diagnoses: tuple[str, ...] = ()
    referral_compliant: bool = True


async def write_closed_settlement(
    unit: Unit,
    result: Adjudication,
    *,
    visit: ClosedVisit,
    facts: VisitFacts,
    items: list[FeeItemIn],
    setl_id: str,
    setl_time: datetime,
    person: Person,
    institution: Institution,
    policy: Policy,
    payer_psn_no: str,
    before: Accumulators,
) -> SettlementRecord:
    """The closed visit, its lines and the settlement (accumulators, account, outbox rows) of `result`."""
    await unit.execute(
        _INSERT_VISIT,
        mdtrt_id=facts.mdtrt_id,
        psn_no=visit.psn_no,
        code=facts.fixmedins_code,
        med_type=visit.med_type,
        cert_type=visit.cert_type,
        begntime=visit.begntime,
        begndate=facts.begndate,
        endtime=visit.endtime,
        enddate=facts.enddate,
        diagnoses=list(visit.diagnoses),
        chronic_disease=facts.chronic_disease,
        referral_compliant=visit.referral_compliant,
        setl_id=setl_id,
        rx_no=facts.rx_no,
        claim_id=facts.claim_id,
    )
    await insert_lines(unit, mdtrt_id=facts.mdtrt_id, items=[(i, line_hash(i)) for i in items])
    record = settlement_record(
        result,
        setl_id=setl_id,
        setl_time=setl_time,
        facts=facts,
        person=person,
        institution=institution,
        policy=policy,
        payer_psn_no=payer_psn_no,
    )
    await write_settlement(unit, record, before=before)
    return record
