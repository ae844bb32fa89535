"""The prepayment service's bookkeeping in memory: the same decisions as the handlers, no database.

Used as the executable model in tests (and handy in a REPL): feed it events in any order, any
number of times, and read positions and the trial balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.prepayment import postings
from services.prepayment.facts import reversal_facts, settlement_facts, subsidy_facts, subsidy_reversal_day
from services.prepayment.ledger import Ledger, TrialBalance
from shared.events.topics import SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE


@dataclass
class MemoryBooks:
    """Per-settlement state plus a ledger; `apply` is idempotent on event_id like the inbox."""

    ledger: Ledger = field(default_factory=Ledger)
    settlements: dict[str, postings.SettlementState] = field(default_factory=dict)
    subsidies: dict[str, postings.SubsidyState] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def apply(self, topic: str, payload: dict, *, event_id: str, occurred_on: date) -> bool:
        """Apply one event once; True if it was new."""
        if event_id in self.seen:
            return False
        self.seen.add(event_id)
        if topic == SETTLED:
            facts = settlement_facts(payload)
            outcome = postings.apply_settled(
                facts, self.settlements.get(facts.setl_id), self.subsidies.get(facts.setl_id)
            )
        elif topic == SETTLEMENT_REVERSED:
            rev = reversal_facts(payload)
            outcome = postings.apply_settlement_reversed(
                rev, self.settlements.get(rev.setl_id), self.subsidies.get(rev.setl_id)
            )
        elif topic == SUBSIDY_DUE:
            facts = subsidy_facts(payload, occurred_on=occurred_on)
            outcome = postings.apply_subsidy_due(
                facts,
                reversal_day=subsidy_reversal_day(payload, occurred_on=occurred_on),
                settlement=self.settlements.get(facts.setl_id),
                subsidy=self.subsidies.get(facts.setl_id),
            )
        else:
            return True
        if outcome.settlement is not None:
            self.settlements[outcome.settlement.setl_id] = outcome.settlement
        if outcome.subsidy is not None:
            self.subsidies[outcome.subsidy.setl_id] = outcome.subsidy
        for posted in outcome.entries:
            self.ledger.post(posted)
        return True

    def disburse(
        self, *, prepayment_id: str, fixmedins_code: str, amount: Decimal, disbursed_on: date, kind: str = "top_up"
    ) -> None:
        self.ledger.post(
            postings.prepayment_entry(
                prepayment_id=prepayment_id,
                fixmedins_code=fixmedins_code,
                amount=amount,
                disbursed_on=disbursed_on,
                kind=kind,
            )
        )

    def position(self, fixmedins_code: str) -> postings.Position:
        return postings.position(dict(self.ledger.balances), fixmedins_code)

    def trial_balance(self) -> TrialBalance:
        return self.ledger.trial_balance()
