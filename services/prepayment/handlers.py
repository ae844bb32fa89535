"""Event consumers of the prepayment service.

Each handler runs inside the consumer's transaction, after the inbox recorded the event ids
(so a redelivery never reaches it). The settlement topics are applied a batch at a time: lock the
settlements (advisory locks on their setl_ids), merge each event into the stored per-settlement state
with the pure rules of `postings`, and post every entry that state implies; entries already in the
journal are skipped by ref. So the same event twice, or the events of one settlement in any order,
give the same books.
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
from shared.events.consumer import Batched, Handler
from shared.events.envelope import Envelope
from shared.events.topics import INSTITUTION_CHANGED, SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE
from shared.readmodels import institution_changed_handler


async def apply_settlement_events(unit: Unit, events: list[Envelope]) -> None:
    """`settled`, `settlement-reversed` and `subsidy-due` of a batch, in their order, with a handful of statements
    for the whole batch: lock the settlements (sorted), load their states, merge each event with the pure rules of
    `postings`, then store the states that changed and post every entry implied (entries already in the journal
    are skipped by ref).

    - `settled`: the funds (and the personal account) owe the institution their shares of the settlement;
    - `settlement-reversed`: the opposite entries (and the subsidy's, for a COVID settlement);
    - `subsidy-due`: the hospital's claim on finance, the advance and the final shares (or their reversal)."""
    ids = sorted({str(event.payload.get("setl_id")) for event in events})
    await store.lock_all(unit, store.LOCK_SETTLEMENT, ids)
    before = await store.load_states(unit, ids)
    settlements, subsidies = dict(before[0]), dict(before[1])
    entries = []
    for event in events:
        outcome = _outcome(event, settlements, subsidies)
        if outcome.settlement is not None:
            settlements[outcome.settlement.setl_id] = outcome.settlement
        if outcome.subsidy is not None:
            subsidies[outcome.subsidy.setl_id] = outcome.subsidy
        entries += outcome.entries
    await store.save_states(unit, (settlements, subsidies), before=before)
    await store.post_many(unit, entries)


def _outcome(event: Envelope, settlements: dict, subsidies: dict) -> postings.Outcome:
    if event.type == SETTLED:
        facts = settlement_facts(event.payload)
        return postings.apply_settled(facts, settlements.get(facts.setl_id), subsidies.get(facts.setl_id))
    if event.type == SETTLEMENT_REVERSED:
        rev = reversal_facts(event.payload)
        return postings.apply_settlement_reversed(rev, settlements.get(rev.setl_id), subsidies.get(rev.setl_id))
    occurred_on = business_date_of(event.occurred_at)
    due = subsidy_facts(event.payload, occurred_on=occurred_on)
    return postings.apply_subsidy_due(
        due,
        reversal_day=subsidy_reversal_day(event.payload, occurred_on=occurred_on),
        settlement=settlements.get(due.setl_id),
        subsidy=subsidies.get(due.setl_id),
    )


def handlers(app: FastAPI) -> dict[str, Handler]:
    """The consumed topics and their handlers (they need nothing of the app but the unit they are given); the
    settlement topics share one batched handler, so a poll's events of those topics are applied together."""
    books = Batched(apply_settlement_events)
    return {
        INSTITUTION_CHANGED: institution_changed_handler(),
        SETTLED: books,
        SETTLEMENT_REVERSED: books,
        SUBSIDY_DUE: books,
    }
