"""What an outpatient day through the gateway costs the database, statement by statement (benchmarks/gateway.py
measures the CPU; these hold the round trips that make most of it): each transaction's statements of the gateway's
own and of settlement, counted in the request's context (the services' relays and consumers are not counted)."""

from __future__ import annotations

import contextvars
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from gateway_support import his as his_of
from gateway_support import twins
from his_client import (
    Item,
    fees_2204,
    now,
    numbered,
    person_1101,
    register_2201,
    settle_data,
    settlement_5203,
    visit_2203,
)

from shared.db import Unit

_COUNTING: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("counting", default=None)


@pytest.fixture
def counted(monkeypatch):
    """Every statement a Unit runs while a transaction is answered, by service (Unit.producer)."""
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "publish"):
        original = getattr(Unit, name)

        def wrapper(self, *args, __original=original, **kwargs):
            counter = _COUNTING.get()
            if counter is not None:
                counter[self.producer] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(Unit, name, wrapper)

    async def call(his, infno: str, input_: dict) -> tuple[Counter, dict]:
        counter: Counter = Counter()
        token = _COUNTING.set(counter)
        try:
            answer = await his.call(infno, input_)
        finally:
            _COUNTING.reset(token)
        return counter, answer.output

    return call


async def test_an_outpatient_day_costs_the_gateway_one_statement_a_message_and_two_a_claim(
    gateway, settlement, eligibility, counted
):
    """The message log: a read (1101, 2206, 5203) and a write whose twin could move no money (2201, 2204) are logged
    with their answer in one statement; a write that claims its msgid first (2203, 2207) costs two; the gateway's own
    rows go with them: 2204's fee lines with its answer, the lines a 2207 checks its total against with its claim."""
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    await his.call("1101", person_1101(p))  # the person known to the gateway from here on (as in any day)
    cost: dict[str, Counter] = {}
    cost["1101"], _ = await counted(his, "1101", person_1101(p))
    cost["2201"], out = await counted(his, "2201", register_2201(p, when=when, ipt_otp_no="MZC"))
    mdtrt_id = out["data"]["mdtrt_id"]
    cost["2203"], _ = await counted(his, "2203", visit_2203(p, mdtrt_id, when=when))
    items = numbered([Item("XGWA001", "12.00", "3"), Item("XGWB001", "55.00", "2"), Item("XGWC001", "9.50", "1")])
    cost["2204"], out = await counted(his, "2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
    assert [r["feedetl_sn"] for r in out["result"]] == [i.sn for i in items]
    medfee = sum((i.total for i in items), Decimal("0.00"))
    cost["2206"], _ = await counted(his, "2206", settle_data(p, mdtrt_id, medfee))
    cost["2207"], out = await counted(his, "2207", settle_data(p, mdtrt_id, medfee))
    setl_id = out["setlinfo"]["setl_id"]
    cost["5203"], _ = await counted(his, "5203", settlement_5203(p, mdtrt_id, setl_id))
    gateway_statements = {infno: c["gateway"] for infno, c in cost.items()}
    assert gateway_statements == {
        "1101": 1,
        "2201": 1,
        "2203": 2,
        "2204": 1,
        "2206": 1,
        "2207": 2,
        "5203": 1,
    }, gateway_statements


async def test_fee_lines_answered_with_their_classification_read_the_visit_once(
    gateway, settlement, eligibility, counted
):
    """2204's lines go to settlement with their classification asked in the same call: the visit read, the lines
    stored (one guarded statement), and the classes from the upload itself (no second read of visit and lines)."""
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZD"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    items = numbered([Item("XGWA001", "12.00", "3"), Item("XGWB001", "55.00", "2")])
    cost, _ = await counted(his, "2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
    assert cost["settlement"] == 2, cost
