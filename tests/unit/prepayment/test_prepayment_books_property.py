"""Model-based: random disbursements, settlements and reversals, duplicated and reordered.

Whatever the delivery, the trial balance is zero and each institution's position (and each
finance level's burden) equals what a simple model computes straight from the scenario.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prepayment_support import deliveries, scenarios, yuan

from services.prepayment.books import MemoryBooks
from services.prepayment.ledger import FINANCE_LEVELS

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY = date(2024, 6, 1)
CODES = ("H1", "H2", "H3")


def _replay(scenario, events) -> MemoryBooks:
    books = MemoryBooks()
    for index, (code, fen) in enumerate(scenario.disbursements):
        books.disburse(prepayment_id=f"p{index}", fixmedins_code=code, amount=Decimal(yuan(fen)), disbursed_on=DAY)
    for event_id, topic, payload in events:
        books.apply(topic, payload, event_id=event_id, occurred_on=DAY)
    return books


def _finance_net(books: MemoryBooks, level: str) -> Decimal:
    return sum(books.ledger.balance(f"finance:{level}:{part}") for part in ("advanced", "recoverable", "share_due"))


@SETTINGS
@given(data=st.data())
def test_books_match_the_simple_model_whatever_the_delivery(data):
    scenario = data.draw(scenarios(CODES))
    delivered = data.draw(deliveries(scenario))
    books = _replay(scenario, delivered)

    trial = books.trial_balance()
    assert trial.debits == trial.credits
    assert sum(books.ledger.balances.values()) == 0
    for code in CODES:
        position = books.position(code)
        expected = scenario.model_position(code)
        assert (
            position.prepaid,
            position.fund_payable,
            position.acct_payable,
            position.subsidy_receivable,
            position.net,
        ) == (
            expected["prepaid"],
            expected["fund_payable"],
            expected["acct_payable"],
            expected["subsidy_receivable"],
            expected["net"],
        ), code
    for level in FINANCE_LEVELS:
        assert _finance_net(books, level) == scenario.model_finance_net(level), level

    in_order = _replay(scenario, scenario.events())
    assert {k: v for k, v in books.ledger.balances.items() if v} == {
        k: v for k, v in in_order.ledger.balances.items() if v
    }
    assert set(books.ledger.entries) == set(in_order.ledger.entries)
