"""Lock the person-year accumulators and the paying account; write the settlement, the new accumulators,
the account movement and the outbox rows together (in the settle/reverse transaction, or as one
statement that checks the accumulators' version).

Lock order (always): accumulators (psn_no, year) → visit rows → prescription → account of the payer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg

from services.settlement.engine import Accumulators, Adjudication, Institution, InvariantViolation, Policy
from services.settlement.eligibility_client import Person
from services.settlement.payloads import VisitFacts, breakdown, settled_payload, subsidy_payload
from services.settlement.pgconn import Sql, execute, fetchval
from services.settlement.runtime import PRODUCER
from shared.events.envelope import Envelope, dumps, new_event
from shared.events.topics import SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE
from shared.money import ZERO

_LOCK_ACCUMULATORS = Sql(
    "INSERT INTO settlement.accumulators AS a (psn_no, year, amounts) VALUES (:psn_no, :year, '{}'::jsonb) "
    "ON CONFLICT (psn_no, year) DO UPDATE SET version = a.version "
    "RETURNING a.amounts")
_SAVE_ACCUMULATORS = Sql(
    "UPDATE settlement.accumulators SET amounts = CAST(:amounts AS jsonb), version = version + 1, updated_at = now() "
    "WHERE psn_no = :psn_no AND year = :year")
_LOCK_ACCOUNT = Sql("SELECT balc FROM settlement.accounts WHERE psn_no = :psn_no FOR UPDATE")
_MOVE_ACCOUNT = Sql(
    "WITH moved AS (UPDATE settlement.accounts SET balc = balc + :amount, updated_at = now() "
    "WHERE psn_no = :psn_no RETURNING balc) "
    "INSERT INTO settlement.account_movements (psn_no, kind, amount, setl_id, for_psn_no) "
    "SELECT CAST(:psn_no AS text), CAST(:kind AS text), CAST(:amount AS numeric), CAST(:setl_id AS text), "
    "CAST(:for_psn_no AS text) FROM moved RETURNING id")
# One statement: the person-year accumulators (when still at :acc_version, unless the caller holds their
# row; taken first, as in the lock order above), the visits moved to settled (when their lines are still
# those settled), the settlement row and the outbox rows. Unless every part is written it raises
# (settlement.refuse), which undoes all of it, whether the statement runs by itself or in the caller's
# transaction.
_WRITE_SETTLEMENT = Sql("""
WITH accumulated AS (
  INSERT INTO settlement.accumulators AS a (psn_no, year, amounts, version)
  VALUES (:psn_no, :year, CAST(:amounts AS jsonb), 1)
  ON CONFLICT (psn_no, year) DO UPDATE SET amounts = EXCLUDED.amounts, version = a.version + 1, updated_at = now()
   WHERE CAST(:acc_version AS int) IS NULL OR a.version = :acc_version
  RETURNING a.version),
moved AS (
  UPDATE settlement.visits
     SET status = CASE WHEN mdtrt_id = :mdtrt_id THEN 'settled' ELSE status END, setl_id = :setl_id
   WHERE mdtrt_id = ANY(CAST(:visit_ids AS text[]))
     AND (mdtrt_id || ':' || lines_version || ':' || status) = ANY(CAST(:expected AS text[]))
     AND EXISTS (SELECT 1 FROM accumulated)
  RETURNING mdtrt_id),
settlement AS (
  INSERT INTO settlement.settlements (setl_id, mdtrt_id, psn_no, fixmedins_code, med_type, year, status, declared,
         setl_time, setl_date, medfee_sumamt, fund_pay_sumamt, fin_subsidy_pay, psn_pay, acct_pay, acct_payer_psn_no,
         accumulator_delta, breakdown, event, subsidy)
  SELECT :setl_id, :mdtrt_id, :psn_no, :fixmedins_code, :med_type, :year, 'settled', :declared, :setl_time,
         :setl_date, :medfee, :fund, :fin, :psn_pay, :acct_pay, :payer, CAST(:delta AS jsonb),
         CAST(:breakdown AS jsonb), CAST(:event AS jsonb), CAST(:subsidy AS jsonb)
   WHERE EXISTS (SELECT 1 FROM accumulated)
     AND (SELECT count(*) FROM moved) = cardinality(CAST(:visit_ids AS text[]))
  RETURNING setl_id),
published AS (
  INSERT INTO settlement.outbox (event_id, topic, key, type, envelope)
  SELECT CAST(e.event_id AS uuid), e.topic, CAST(:psn_no AS text), e.topic, e.envelope
    FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e(event_id text, topic text, envelope jsonb)
   WHERE EXISTS (SELECT 1 FROM settlement)
  RETURNING id)
SELECT CASE
  WHEN (SELECT count(*) FROM accumulated) <> 1 THEN settlement.refuse('ACCUMULATORS_CHANGED')
  WHEN (SELECT count(*) FROM moved) <> cardinality(CAST(:visit_ids AS text[])) THEN settlement.refuse('VISIT_CHANGED')
  WHEN (SELECT count(*) FROM settlement) <> 1 OR (SELECT count(*) FROM published) <> :event_count
       THEN settlement.refuse('NOT_WRITTEN')
  ELSE true END AS written
""")
REFUSAL_HINT = "yibao-refusal"  # migrations/versions/0003_refuse.py
_ADD_OUTBOX = Sql("""
INSERT INTO settlement.outbox (event_id, topic, key, type, envelope)
VALUES (CAST(:event_id AS uuid), :topic, :key, :topic, CAST(:envelope AS jsonb))
""")


def new_id(prefix: str) -> str:
    """A readable unique id: prefix + 24 hex characters."""
    return prefix + uuid.uuid4().hex[:24].upper()


def _dump(value) -> str | None:
    return None if value is None else dumps(value)


def _envelope(event: Envelope) -> dict:
    return {"event_id": event.event_id, "type": event.type, "version": event.version,
            "occurred_at": event.occurred_at, "producer": event.producer, "key": event.key, "payload": event.payload}


async def add_outbox(conn: asyncpg.Connection, *, topic: str, key: str, payload: dict) -> Envelope:
    """An event published once the surrounding transaction commits (same row shape as shared.events)."""
    event = new_event(type=topic, key=key, payload=payload, producer=PRODUCER)
    await execute(conn, _ADD_OUTBOX, event_id=event.event_id, topic=topic, key=key,
                  envelope=dumps(_envelope(event)))
    return event


async def lock_accumulators(conn: asyncpg.Connection, *, psn_no: str, year: int) -> Accumulators:
    """Create the person-year row if needed and lock it (one round trip: an upsert takes the row lock)."""
    amounts = await fetchval(conn, _LOCK_ACCUMULATORS, psn_no=psn_no, year=year)
    return Accumulators({key: Decimal(value) for key, value in (amounts or {}).items()})


async def save_accumulators(conn: asyncpg.Connection, *, psn_no: str, year: int, after: Accumulators) -> None:
    await execute(conn, _SAVE_ACCUMULATORS, psn_no=psn_no, year=year, amounts=_dump(after.to_strings()))


async def lock_account(conn: asyncpg.Connection, *, psn_no: str) -> Decimal:
    """The payer's balance, locked for the rest of the transaction (0 when there is no account)."""
    balance = await fetchval(conn, _LOCK_ACCOUNT, psn_no=psn_no)
    return ZERO if balance is None else Decimal(balance)


async def move_account(conn: asyncpg.Connection, *, psn_no: str, amount: Decimal, kind: str, setl_id: str,
                       for_psn_no: str) -> None:
    """Add `amount` (negative for a payment) to a locked account, with its movement row."""
    moved = await fetchval(conn, _MOVE_ACCOUNT, psn_no=psn_no, amount=amount, kind=kind, setl_id=setl_id,
                           for_psn_no=for_psn_no)
    if moved is None:
        raise InvariantViolation(f"account {psn_no} vanished while locked")


def assert_amounts(result: Adjudication) -> None:
    """DOMAIN §12, checked again right before commit."""
    r = result
    amounts = [r.medfee_sumamt, r.hifp_pay, r.hifmi_pay, r.maf_pay, r.tilt_aid_pay, r.fin_subsidy_pay, r.acct_pay,
               r.psn_cash_pay, r.fund_pay_sumamt, r.psn_pay]
    if any(a < 0 for a in amounts):
        raise InvariantViolation(f"negative amount in settlement of {r.mdtrt_id}")
    if r.medfee_sumamt != r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay + r.fin_subsidy_pay + r.acct_pay \
            + r.psn_cash_pay:
        raise InvariantViolation(f"amount identity fails for {r.mdtrt_id}")
    if r.psn_pay != r.acct_pay + r.psn_cash_pay or r.fund_pay_sumamt != r.hifp_pay + r.hifmi_pay + r.maf_pay \
            + r.tilt_aid_pay:
        raise InvariantViolation(f"psn_pay / fund_pay_sumamt identity fails for {r.mdtrt_id}")


class VisitsChanged(Exception):
    """The visits to settle are no longer as loaded (lines added, settled or merged meanwhile): nothing written."""


class AccumulatorsChanged(Exception):
    """Another settlement or reversal of the person-year came first: nothing written; settle again."""


async def write_settlement(conn: asyncpg.Connection, *, result: Adjudication, before: Accumulators, setl_id: str,
                           setl_time: datetime, facts: VisitFacts, person: Person, institution: Institution,
                           policy: Policy, payer_psn_no: str, visits: dict[str, str] | None = None,
                           acc_version: int | None = None) -> dict:
    """Visits moved to settled, settlement row, accumulators, account payment and outbox rows; returns the
    breakdown answered. `visits`: mdtrt_id → the "mdtrt_id:lines_version:status" each must still have
    (VisitsChanged otherwise); the main visit (facts.mdtrt_id) becomes settled, the others keep their status.
    `acc_version`: the version `before` was read at, when the caller does not hold the accumulators' row
    (AccumulatorsChanged unless it is still that; 0 for a row that did not exist)."""
    assert_amounts(result)
    try:
        after = before.apply(result.accumulator_delta)
    except ValueError as exc:
        raise InvariantViolation(str(exc)) from exc
    body = breakdown(result, setl_id=setl_id, setl_time=setl_time, facts=facts, status="settled")
    event = settled_payload(result, setl_id=setl_id, setl_time=setl_time, facts=facts, person=person,
                            institution=institution, policy=policy)
    subsidy = subsidy_payload(result, setl_id=setl_id, setl_date=setl_time.date(), fixmedins_code=facts.fixmedins_code)
    outgoing = [new_event(type=SETTLED, key=result.psn_no, payload=event, producer=PRODUCER)]
    if subsidy is not None:
        outgoing.append(new_event(type=SUBSIDY_DUE, key=result.psn_no, payload=subsidy, producer=PRODUCER))
    visits = visits or {}
    try:
        await fetchval(
            conn, _WRITE_SETTLEMENT, visit_ids=list(visits), expected=list(visits.values()), acc_version=acc_version,
            event_count=len(outgoing), setl_id=setl_id, mdtrt_id=facts.mdtrt_id, psn_no=result.psn_no,
            fixmedins_code=facts.fixmedins_code, med_type=result.med_type, year=result.year, declared=facts.declared,
            setl_time=setl_time, setl_date=setl_time.date(), medfee=result.medfee_sumamt,
            fund=result.fund_pay_sumamt, fin=result.fin_subsidy_pay, psn_pay=result.psn_pay, acct_pay=result.acct_pay,
            payer=payer_psn_no if result.acct_pay > 0 else None, delta=_dump(result.accumulator_delta.to_strings()),
            breakdown=_dump(body), event=_dump(event), subsidy=_dump(subsidy), amounts=_dump(after.to_strings()),
            events=_dump([{"event_id": e.event_id, "topic": e.type, "envelope": _envelope(e)} for e in outgoing]))
    except asyncpg.RaiseError as exc:
        if exc.hint != REFUSAL_HINT:
            raise
        if exc.message == "VISIT_CHANGED":
            raise VisitsChanged(facts.mdtrt_id) from None
        if exc.message == "ACCUMULATORS_CHANGED" and acc_version is not None:
            raise AccumulatorsChanged(f"{result.psn_no}/{result.year}") from None
        raise InvariantViolation(f"settlement {setl_id}: {exc.message} for {result.psn_no}/{result.year}") from None
    if result.acct_pay > 0:
        await move_account(conn, psn_no=payer_psn_no, amount=-result.acct_pay, kind="payment", setl_id=setl_id,
                           for_psn_no=result.psn_no)
    return body


async def write_reversal(conn: asyncpg.Connection, *, row, before: Accumulators, reversed_at: datetime) -> dict:
    """Given the settlement row just marked reversed (its person-year already locked): restore the
    accumulators, refund the account, emit the events."""
    delta = Accumulators({k: Decimal(v) for k, v in row["accumulator_delta"].items()})
    try:
        after = before.apply(-delta)
    except ValueError as exc:
        raise InvariantViolation(f"reversal of {row.setl_id}: {exc}") from exc
    psn_no, setl_id = row["psn_no"], row["setl_id"]
    await save_accumulators(conn, psn_no=psn_no, year=row["year"], after=after)
    acct_pay = Decimal(row["acct_pay"])
    if acct_pay > 0:
        await lock_account(conn, psn_no=row["acct_payer_psn_no"])
        await move_account(conn, psn_no=row["acct_payer_psn_no"], amount=acct_pay, kind="refund", setl_id=setl_id,
                           for_psn_no=psn_no)
    rev_date = reversed_at.date()
    await add_outbox(conn, topic=SETTLEMENT_REVERSED, key=psn_no, payload={
        "setl_id": setl_id, "mdtrt_id": row["mdtrt_id"], "psn_no": psn_no, "fixmedins_code": row["fixmedins_code"],
        "reversed_at": reversed_at.isoformat(), "rev_date": rev_date.isoformat(), "original": row["event"]})
    if row["subsidy"]:
        await add_outbox(conn, topic=SUBSIDY_DUE, key=psn_no,
                         payload={**row["subsidy"], "reversal": True, "rev_date": rev_date.isoformat()})
    return {"setl_id": setl_id, "status": "reversed", "reversed_at": reversed_at.isoformat(),
            "rev_date": rev_date.isoformat(), "mdtrt_id": row["mdtrt_id"]}
