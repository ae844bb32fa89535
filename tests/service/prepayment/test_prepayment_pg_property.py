"""The property of tests/unit/prepayment, smaller, against real PostgreSQL through the inbox consumer.

Random disbursements (over HTTP), settlements, reversals and subsidies, some events delivered
twice under the same event_id, in a random order: each institution's position, its entries'
trial balance and each finance level's burden equal the simple model's.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prepayment_support import deliveries, scenarios, yuan

from services.prepayment.ledger import FINANCE_LEVELS

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(data=st.data())
async def test_stored_books_match_the_simple_model(books, data):
    codes = tuple("T" + uuid.uuid4().hex[:10] for _ in range(2))
    scenario = data.draw(scenarios(codes, max_settlements=6))
    delivered = data.draw(deliveries(scenario))
    for code in codes:
        await books.institution(code)
    for code, fen in scenario.disbursements:
        assert (await books.prepay(code, yuan(fen))).status_code == 201
    for event_id, topic, payload in delivered:
        await books.deliver(topic, payload, event_id=event_id)

    burden = {level: Decimal("0.00") for level in FINANCE_LEVELS}
    for code in codes:
        expected = scenario.model_position(code)
        assert await books.position(code) == {"fixmedins_code": code, **{k: f"{v:.2f}" for k, v in expected.items()}}
        balances = await books.trial(code)  # asserts debits = credits
        assert sum(balances.values()) == 0
        for level in FINANCE_LEVELS:
            burden[level] += sum(
                (
                    balances.get(f"finance:{level}:{part}", Decimal("0"))
                    for part in ("advanced", "recoverable", "share_due")
                ),
                Decimal("0"),
            )
    for level in FINANCE_LEVELS:
        assert burden[level] == scenario.model_finance_net(level), level
