"""The settlement's books in its own schema: lock the person-year accumulators and the paying account; write the
settlement, the new accumulators, the account movement and the outbox rows together (in the settle/reverse
transaction, or as one statement that checks the accumulators' version).

The store writes what the settle layer decided and built (settle/record.py): it builds no answers and no payloads.
Lock order (always): accumulators (psn_no, year) → visit rows → prescription → account of the payer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.settlement.engine import Accumulators, InvariantViolation
from shared.db import Row, Sql, Unit, outbox_row
from shared.events.envelope import dumps, new_event
from shared.money import ZERO
from shared.problems import Problem

_LOCK_ACCUMULATORS = Sql(
    "INSERT INTO accumulators AS a (psn_no, year, amounts) VALUES (:psn_no, :year, '{}'::jsonb) "
    "ON CONFLICT (psn_no, year) DO UPDATE SET version = a.version "
    "RETURNING a.amounts"
)
_SAVE_ACCUMULATORS = Sql(
    "UPDATE accumulators SET amounts = CAST(:amounts AS jsonb), version = version + 1, updated_at = now() "
    "WHERE psn_no = :psn_no AND year = :year"
)
_LOCK_ACCOUNT = Sql("SELECT balc, closed_on FROM accounts WHERE psn_no = :psn_no FOR UPDATE")
_MOVE_ACCOUNT = Sql(
    "WITH moved AS (UPDATE accounts SET balc = balc + :amount, updated_at = now() "
    "WHERE psn_no = :psn_no RETURNING balc) "
    "INSERT INTO account_movements (psn_no, kind, amount, setl_id, for_psn_no) "
    "SELECT CAST(:psn_no AS text), CAST(:kind AS text), CAST(:amount AS numeric), CAST(:setl_id AS text), "
    "CAST(:for_psn_no AS text) FROM moved RETURNING id"
)
# One statement: the person-year accumulators (when still at :acc_version, unless the caller holds their
# row; taken first, as in the lock order above), the visits moved to settled (when their lines are still
# those settled), the settlement row and the outbox rows. Unless every part is written it raises
# (refuse), which undoes all of it, whether the statement runs by itself or in the caller's
# transaction.
_WRITE_SETTLEMENT = Sql("""
WITH accumulated AS (
  INSERT INTO accumulators AS a (psn_no, year, amounts, version)
  VALUES (:psn_no, :year, CAST(:amounts AS jsonb), 1)
  ON CONFLICT (psn_no, year) DO UPDATE SET amounts = EXCLUDED.amounts, version = a.version + 1, updated_at = now()
   WHERE CAST(:acc_version AS int) IS NULL OR a.version = :acc_version
  RETURNING a.version),
moved AS (
  UPDATE visits
     SET status = CASE WHEN mdtrt_id = :mdtrt_id THEN 'settled' ELSE status END, setl_id = :setl_id
   WHERE mdtrt_id = ANY(CAST(:visit_ids AS text[]))
     AND (mdtrt_id || ':' || lines_version || ':' || status) = ANY(CAST(:expected AS text[]))
     AND EXISTS (SELECT 1 FROM accumulated)
  RETURNING mdtrt_id),
settlement AS (
  INSERT INTO settlements (setl_id, mdtrt_id, psn_no, fixmedins_code, med_type, year, status, declared,
         setl_time, setl_date, medfee_sumamt, fund_pay_sumamt, fin_subsidy_pay, psn_pay, acct_pay, acct_payer_psn_no,
         accumulator_delta, breakdown, event, subsidy)
  SELECT :setl_id, :mdtrt_id, :psn_no, :fixmedins_code, :med_type, :year, 'settled', :declared, :setl_time,
         :setl_date, :medfee, :fund, :fin, :psn_pay, :acct_pay, :payer, CAST(:delta AS jsonb),
         CAST(:breakdown AS jsonb), CAST(:event AS jsonb), CAST(:subsidy AS jsonb)
   WHERE EXISTS (SELECT 1 FROM accumulated)
     AND (SELECT count(*) FROM moved) = cardinality(CAST(:visit_ids AS text[]))
  RETURNING setl_id),
published AS (
  INSERT INTO outbox (event_id, topic, key, type, envelope)
  SELECT CAST(e.event_id AS uuid), e.topic, CAST(:psn_no AS text), e.topic, CAST(e.envelope AS jsonb)
    FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e(event_id text, topic text, envelope text)
   WHERE EXISTS (SELECT 1 FROM settlement)
  RETURNING id)
SELECT CASE
  WHEN (SELECT count(*) FROM accumulated) <> 1 THEN refuse('ACCUMULATORS_CHANGED')
  WHEN (SELECT count(*) FROM moved) <> cardinality(CAST(:visit_ids AS text[])) THEN refuse('VISIT_CHANGED')
  WHEN (SELECT count(*) FROM settlement) <> 1 OR (SELECT count(*) FROM published) <> :event_count
       THEN refuse('NOT_WRITTEN')
  ELSE true END AS written
""")
REFUSAL_HINT = "yibao-refusal"  # migrations/versions/0003_refuse.py


def new_id(prefix: str) -> str:
    """A readable unique id: prefix + 24 hex characters."""
    return prefix + uuid.uuid4().hex[:24].upper()


def _dump(value: Any) -> str | None:
    return None if value is None else dumps(value)


async def lock_accumulators(unit: Unit, *, psn_no: str, year: int) -> Accumulators:
    """Create the person-year row if needed and lock it (one round trip: an upsert takes the row lock)."""
    amounts = await unit.fetchval(_LOCK_ACCUMULATORS, psn_no=psn_no, year=year)
    return Accumulators({key: Decimal(value) for key, value in (amounts or {}).items()})


async def save_accumulators(unit: Unit, *, psn_no: str, year: int, after: Accumulators) -> None:
    await unit.execute(_SAVE_ACCUMULATORS, psn_no=psn_no, year=year, amounts=_dump(after.to_strings()))


def account_closed(psn_no: str, closed_on: date) -> Problem:
    """422 ACCOUNT_CLOSED: the account was closed (transfer out, death) and pays nothing any more."""
    return Problem(
        422,
        "ACCOUNT_CLOSED",
        f"the personal account of {psn_no} was closed on {closed_on.isoformat()}; it pays nothing any more",
        errors=[{"field": "acct_payer_psn_no", "code": "ACCOUNT_CLOSED", "detail": f"{psn_no} closed"}],
    )


async def lock_account(unit: Unit, *, psn_no: str, paying: bool = True) -> Decimal:
    """The account's balance, locked for the rest of the transaction (0 when there is no account). A closed account
    pays nothing (422 ACCOUNT_CLOSED); a refund to it (`paying=False`) is still taken."""
    row = await unit.fetchrow(_LOCK_ACCOUNT, psn_no=psn_no)
    if row is None:
        return ZERO
    if paying and row.closed_on is not None:
        raise account_closed(psn_no, row.closed_on)
    return Decimal(row.balc)


async def move_account(unit: Unit, *, psn_no: str, amount: Decimal, kind: str, setl_id: str, for_psn_no: str) -> None:
    """Add `amount` (negative for a payment) to a locked account, with its movement row."""
    moved = await unit.fetchval(
        _MOVE_ACCOUNT, psn_no=psn_no, amount=amount, kind=kind, setl_id=setl_id, for_psn_no=for_psn_no
    )
    if moved is None:
        raise InvariantViolation(f"account {psn_no} vanished while locked")


class VisitsChanged(Exception):
    """The visits to settle are no longer as loaded (lines added, settled or merged meanwhile): nothing written."""


class AccumulatorsChanged(Exception):
    """Another settlement or reversal of the person-year came first: nothing written; settle again."""


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A decided settlement as the store keeps it (built by settle/record.py)."""

    setl_id: str
    setl_time: datetime
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    med_type: str
    year: int
    declared: bool
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    fin_subsidy_pay: Decimal
    psn_pay: Decimal
    acct_pay: Decimal
    acct_payer_psn_no: str  # whose account pays (the person, or a family member)
    accumulator_delta: Accumulators
    breakdown: dict[str, Any]  # the answer, kept and answered again by GET
    event: dict[str, Any]  # the `settled` payload, kept for the reversal's event
    subsidy: dict[str, Any] | None  # the `subsidy-due` payload of a COVID settlement
    events: tuple[tuple[str, dict[str, Any]], ...]  # (topic, payload) to publish

    @property
    def setl_date(self) -> date:
        return self.setl_time.date()


async def write_settlement(
    unit: Unit,
    record: SettlementRecord,
    *,
    before: Accumulators,
    visits: dict[str, str] | None = None,
    acc_version: int | None = None,
) -> None:
    """Visits moved to settled, settlement row, accumulators, account payment and outbox rows, in one statement
    (plus the account's). `visits`: mdtrt_id → the "mdtrt_id:lines_version:status" each must still have
    (VisitsChanged otherwise); the main visit (record.mdtrt_id) becomes settled, the others keep their status.
    `acc_version`: the version `before` was read at, when the caller does not hold the accumulators' row
    (AccumulatorsChanged unless it is still that; 0 for a row that did not exist)."""
    try:
        after = before.apply(record.accumulator_delta)
    except ValueError as exc:
        raise InvariantViolation(str(exc)) from exc
    outgoing = [
        new_event(type=topic, key=record.psn_no, payload=payload, producer=unit.producer)
        for topic, payload in record.events
    ]
    visits = visits or {}
    r = record
    try:
        await unit.fetchval(
            _WRITE_SETTLEMENT,
            visit_ids=list(visits),
            expected=list(visits.values()),
            acc_version=acc_version,
            event_count=len(outgoing),
            setl_id=r.setl_id,
            mdtrt_id=r.mdtrt_id,
            psn_no=r.psn_no,
            fixmedins_code=r.fixmedins_code,
            med_type=r.med_type,
            year=r.year,
            declared=r.declared,
            setl_time=r.setl_time,
            setl_date=r.setl_date,
            medfee=r.medfee_sumamt,
            fund=r.fund_pay_sumamt,
            fin=r.fin_subsidy_pay,
            psn_pay=r.psn_pay,
            acct_pay=r.acct_pay,
            payer=r.acct_payer_psn_no if r.acct_pay > 0 else None,
            delta=_dump(r.accumulator_delta.to_strings()),
            breakdown=_dump(r.breakdown),
            event=_dump(r.event),
            subsidy=_dump(r.subsidy),
            amounts=_dump(after.to_strings()),
            events=_dump([outbox_row(e) for e in outgoing]),
        )
    except asyncpg.RaiseError as exc:
        if exc.hint != REFUSAL_HINT:
            raise
        if exc.message == "VISIT_CHANGED":
            raise VisitsChanged(r.mdtrt_id) from None
        if exc.message == "ACCUMULATORS_CHANGED" and acc_version is not None:
            raise AccumulatorsChanged(f"{r.psn_no}/{r.year}") from None
        raise InvariantViolation(f"settlement {r.setl_id}: {exc.message} for {r.psn_no}/{r.year}") from None
    unit.published()
    if r.acct_pay > 0:
        await move_account(
            unit, psn_no=r.acct_payer_psn_no, amount=-r.acct_pay, kind="payment", setl_id=r.setl_id, for_psn_no=r.psn_no
        )


_MARK_REVERSED = Sql("""
UPDATE settlements SET status = 'reversed', reversed_at = :at, rev_date = :day
 WHERE setl_id = :setl_id AND status = 'settled'
RETURNING setl_id, mdtrt_id, psn_no, year, fixmedins_code, med_type, acct_pay, acct_payer_psn_no,
          accumulator_delta, event, subsidy
""")


async def mark_reversed(unit: Unit, *, setl_id: str, at: datetime) -> Row | None:
    """The settlement marked reversed (its person-year locked by the caller); None if it already was."""
    return await unit.fetchrow(_MARK_REVERSED, setl_id=setl_id, at=at, day=at.date())


async def write_reversal(
    unit: Unit, *, row: Row, before: Accumulators, events: list[tuple[str, dict[str, Any]]]
) -> None:
    """Given the settlement row just marked reversed (its person-year locked): restore the accumulators, refund
    the account, publish `events` (topic, payload)."""
    delta = Accumulators({k: Decimal(v) for k, v in row["accumulator_delta"].items()})
    try:
        after = before.apply(-delta)
    except ValueError as exc:
        raise InvariantViolation(f"reversal of {row['setl_id']}: {exc}") from exc
    psn_no, setl_id = row["psn_no"], row["setl_id"]
    await save_accumulators(unit, psn_no=psn_no, year=row["year"], after=after)
    acct_pay = Decimal(row["acct_pay"])
    if acct_pay > 0:
        await lock_account(unit, psn_no=row["acct_payer_psn_no"], paying=False)
        await move_account(
            unit, psn_no=row["acct_payer_psn_no"], amount=acct_pay, kind="refund", setl_id=setl_id, for_psn_no=psn_no
        )
    for topic, payload in events:
        await unit.publish(topic=topic, key=psn_no, payload=payload)
