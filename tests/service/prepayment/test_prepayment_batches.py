"""The consumer applies a poll in one transaction with bulk statements (issue 14): a poison message in the middle of
a batch is isolated (every other event applied once, the one dead-lettered), and a batch delivered again after the
database committed it but before the offsets were committed changes nothing."""

from __future__ import annotations

import uuid

from prepayment_support import envelope, reversal_payload, settled_payload

from shared.testing import fetch, fetchval


def _sid() -> str:
    return "SB" + uuid.uuid4().hex[:14].upper()


async def _books_of(app, code: str) -> list[tuple]:
    rows = await fetch(
        app,
        """
        SELECT e.ref, l.account, l.debit, l.credit FROM journal_entries e JOIN journal_lines l USING (entry_id)
         WHERE e.fixmedins_code = :code ORDER BY e.ref, l.account""",
        code=code,
    )
    return [tuple(r) for r in rows]


async def test_a_poison_message_in_the_middle_is_isolated_and_the_rest_applied_once(books, hospital):
    good = [settled_payload(_sid(), hospital, hifp=f"{100 + i}.00", setl_date="2024-05-01") for i in range(6)]
    poison = settled_payload(_sid(), hospital, hifp="1.00", setl_date="not-a-date")
    messages = [("settled", envelope("settled", p).to_json()) for p in good[:3]]
    messages.append(("settled", envelope("settled", poison).to_json()))
    messages += [("settled", envelope("settled", p).to_json()) for p in good[3:]]
    messages.append(("settlement-reversed", envelope("settlement-reversed", reversal_payload(good[0])).to_json()))
    assert await books.consumer.apply_batch(messages) == 7  # all but the poison
    position = await books.position(hospital)
    assert position["fund_payable"] == f"{sum(100 + i for i in range(1, 6))}.00"  # good[0] settled then reversed
    dead = await fetch(
        books.app, "SELECT event_id::text, topic FROM dead_letter WHERE envelope LIKE :p", p=f"%{poison['setl_id']}%"
    )
    assert len(dead) == 1 and dead[0]["topic"] == "settled"
    assert await fetchval(books.app, "SELECT count(*) FROM settlements WHERE setl_id = :s", s=poison["setl_id"]) == 0


async def test_a_batch_delivered_again_changes_nothing(books, hospital):
    payloads = [
        settled_payload(_sid(), hospital, hifp=f"{10 + i}.00", acct="1.00", setl_date="2024-05-02") for i in range(20)
    ]
    messages = [("settled", envelope("settled", p).to_json()) for p in payloads]
    messages += [
        ("settlement-reversed", envelope("settlement-reversed", reversal_payload(p)).to_json()) for p in payloads[:5]
    ]
    assert await books.consumer.apply_batch(messages) == 25
    written = await _books_of(books.app, hospital)
    position = await books.position(hospital)
    assert await books.consumer.apply_batch(messages) == 0  # redelivered (offsets not committed): all in the inbox
    assert await _books_of(books.app, hospital) == written
    assert await books.position(hospital) == position
    assert position["fund_payable"] == f"{sum(10 + i for i in range(5, 20))}.00"
    assert position["acct_payable"] == "15.00"
