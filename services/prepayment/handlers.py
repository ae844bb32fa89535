"""Event consumers of the prepayment service.

Each handler runs inside the consumer's transaction, after the inbox recorded the event id
(so a redelivery never reaches it). It locks the settlement (advisory lock on its setl_id),
merges the event into the stored per-settlement state with the pure rules of `postings`, and
posts every entry that state implies; entries already in the journal are skipped by ref. So
the same event twice, or the events of one settlement in any order, give the same books.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.prepayment import postings, store
from services.prepayment.facts import (
    business_date_of,
    reversal_facts,
    settlement_facts,
    subsidy_facts,
    subsidy_reversal_day,
)
from shared.db import Unit
from shared.events.consumer import Handler
from shared.events.envelope import Envelope
from shared.events.topics import INSTITUTION_CHANGED, SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE
from shared.readmodels import institution_changed_handler


async def _states(unit: Unit, setl_id: str) -> tuple[postings.SettlementState | None, postings.SubsidyState | None]:
    await store.lock(unit, store.LOCK_SETTLEMENT, setl_id)
    return await store.load_settlement(unit, setl_id), await store.load_subsidy(unit, setl_id)


async def handle_settled(unit: Unit, event: Envelope) -> None:
    """`settled`: the funds owe the institution their shares of the settlement."""
    facts = settlement_facts(event.payload)
    settlement, subsidy = await _states(unit, facts.setl_id)
    outcome = postings.apply_settled(facts, settlement, subsidy)
    await store.save_outcome(unit, outcome, before=(settlement, subsidy))


async def handle_settlement_reversed(unit: Unit, event: Envelope) -> None:
    """`settlement-reversed`: the opposite entries (and the subsidy's, for a COVID settlement)."""
    rev = reversal_facts(event.payload)
    settlement, subsidy = await _states(unit, rev.setl_id)
    outcome = postings.apply_settlement_reversed(rev, settlement, subsidy)
    await store.save_outcome(unit, outcome, before=(settlement, subsidy))


async def handle_subsidy_due(unit: Unit, event: Envelope) -> None:
    """`subsidy-due`: the hospital's claim on finance, the advance and the final shares (or their reversal)."""
    occurred_on = business_date_of(event.occurred_at)
    facts = subsidy_facts(event.payload, occurred_on=occurred_on)
    settlement, subsidy = await _states(unit, facts.setl_id)
    outcome = postings.apply_subsidy_due(
        facts,
        reversal_day=subsidy_reversal_day(event.payload, occurred_on=occurred_on),
        settlement=settlement,
        subsidy=subsidy,
    )
    await store.save_outcome(unit, outcome, before=(settlement, subsidy))


def handlers(app: FastAPI) -> dict[str, Handler]:
    """The consumed topics and their handlers (they need nothing of the app but the unit they are given)."""
    return {
        INSTITUTION_CHANGED: institution_changed_handler(),
        SETTLED: handle_settled,
        SETTLEMENT_REVERSED: handle_settlement_reversed,
        SUBSIDY_DUE: handle_subsidy_due,
    }
