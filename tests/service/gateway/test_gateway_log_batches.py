"""The message log's writer (services/gateway/logwriter.py): the claims and answers of the transactions in flight go
to PostgreSQL together, one statement at a time, and each row learns what its own statement would have told it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from gateway_support import his as his_of
from gateway_support import twins
from his_client import (
    Item,
    check_identities,
    fees_2204,
    now,
    numbered,
    person_1101,
    register_2201,
    settle_data,
    settlement_5203,
    visit_2203,
)

from services.gateway.logwriter import Row, Written
from shared.db import Sql
from shared.testing import fetch, fetchval

CODE = "H1"
_FEE_LINE = Sql("""
INSERT INTO gateway.fee_lines (mdtrt_id, feedetl_sn, fixmedins_code, cnt, item)
VALUES (:visit, :sn, :code, :cnt, CAST(:item AS jsonb))
""")


def _app(gateway):
    return gateway._transport.app


def _writer(gateway):
    return _app(gateway).state.gateway.log


def _msgid() -> str:
    return f"LOGB-{uuid.uuid4().hex[:24]}"


def _log(msgid: str, response: str = '{"infcode":0}') -> Row:
    return Row("log", CODE, msgid, "1101", "h" * 64, response=response, psn_no="P1")


async def _stored(gateway, msgid: str):
    rows = await fetch(
        _app(gateway),
        "SELECT infno, response FROM gateway.messages WHERE fixmedins_code = :c AND msgid = :m",
        c=CODE,
        m=msgid,
    )
    return rows[0] if rows else None


async def test_answers_arriving_together_go_in_one_statement(gateway):
    writer = _writer(gateway)
    ids = [_msgid() for _ in range(5)]
    before = writer.statements
    written = await asyncio.gather(*(writer.write(_log(m, f'{{"n":"{m}"}}')) for m in ids))
    assert written == [Written(True)] * 5
    assert writer.statements - before == 1
    for m in ids:
        assert (await _stored(gateway, m))["response"] == f'{{"n":"{m}"}}'


async def test_one_msgid_twice_at_once_is_first_once_and_taken_once(gateway):
    writer = _writer(gateway)
    msgid = _msgid()
    before = writer.statements
    first, second = await asyncio.gather(writer.write(_log(msgid, '"first"')), writer.write(_log(msgid, '"second"')))
    assert (first.done, second.done) == (True, False)
    assert writer.statements - before == 2  # the second row waited for a statement of its own
    assert (await _stored(gateway, msgid))["response"] == '"first"'


async def test_claims_answers_and_claimed_answers_together(gateway):
    """A claim (of a visit with uploaded lines: they come with it), a claim of a msgid held, a claimed answer kept,
    an answer logged: one statement, each row its own outcome."""
    app, writer = _app(gateway), _writer(gateway)
    held, claimed_before, fresh, logged = _msgid(), _msgid(), _msgid(), _msgid()
    visit = f"LOGB-V-{uuid.uuid4().hex[:8]}"
    await writer.claim(code=CODE, msgid=held, infno="2207", digest="x" * 64, lines_of=None)
    await writer.claim(code=CODE, msgid=claimed_before, infno="2203", digest="y" * 64, lines_of=None)
    async with app.state.db.connect() as unit:
        for sn, fee, cnt in (("1", "30.00", "3"), ("2", "12.50", "1"), ("3", "10.00", "-1")):
            await unit.execute(
                _FEE_LINE, visit=visit, sn=sn, code=CODE, cnt=Decimal(cnt), item=f'{{"det_item_fee_sumamt": "{fee}"}}'
            )
    before = writer.statements
    outcomes = await asyncio.gather(
        writer.claim(code=CODE, msgid=fresh, infno="2207", digest="z" * 64, lines_of=visit),
        writer.claim(code=CODE, msgid=held, infno="2207", digest="x" * 64, lines_of=visit),
        writer.write(Row("remember", CODE, claimed_before, response='"kept"', mdtrt_id=visit)),
        writer.write(_log(logged)),
    )
    assert writer.statements - before == 1
    assert outcomes == [
        Written(True, 3, Decimal("32.50")),  # 30.00 + 12.50 − 10.00 (the refund)
        Written(False, 3, Decimal("32.50")),
        Written(True),
        Written(True),
    ]
    kept = await fetch(
        app,
        "SELECT response, mdtrt_id FROM gateway.messages WHERE fixmedins_code = :c AND msgid = :m",
        c=CODE,
        m=claimed_before,
    )
    assert (kept[0]["response"], kept[0]["mdtrt_id"]) == ('"kept"', visit)
    assert (await _stored(gateway, fresh))["response"] is None  # a claim: no answer yet


_KEPT = """
INSERT INTO gateway.fee_lines (mdtrt_id, feedetl_sn, fixmedins_code, cnt, item)
SELECT CAST(:visit AS text), '1', CAST(:code AS text), 1, CAST('{}' AS jsonb) WHERE {logged}
"""


async def test_rows_kept_with_an_answer_go_alone_and_only_with_it(gateway):
    """2204's fee lines go with its answer: in a statement of their own, written only if the answer is logged."""
    writer = _writer(gateway)
    taken, fresh, other = _msgid(), _msgid(), _msgid()
    await writer.write(_log(taken))
    visits = [f"LOGB-K-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    before = writer.statements
    outcomes = await asyncio.gather(
        writer.write(replace(_log(fresh), kept=(_KEPT, {"visit": visits[0]}))),
        writer.write(replace(_log(taken), kept=(_KEPT, {"visit": visits[1]}))),
        writer.write(_log(other)),
    )
    assert [o.done for o in outcomes] == [True, False, True]
    assert writer.statements - before == 3  # each kept row alone; the plain one by itself after them
    lines = await fetch(_app(gateway), "SELECT mdtrt_id FROM gateway.fee_lines WHERE mdtrt_id = ANY(:v)", v=visits)
    assert [r["mdtrt_id"] for r in lines] == [visits[0]]


async def test_a_statement_that_fails_fails_each_of_its_rows_and_writes_none(gateway):
    writer = _writer(gateway)
    good = _msgid()
    bad = Row("log", CODE, _msgid(), "TOO-LONG-INFNO", "h" * 64, response="{}")  # infno is 8 characters at most
    results = await asyncio.gather(writer.write(_log(good)), writer.write(bad), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert await _stored(gateway, good) is None
    assert (await writer.write(_log(good))).done  # the writer goes on


async def test_outpatient_days_at_once_each_logged_and_replayed_byte_for_byte(gateway, settlement, eligibility):
    """Six HIS days side by side: every message logged with its answer, each msgid replaying its own bytes."""
    his = his_of(gateway)

    async def day() -> list[tuple[str, str, bytes]]:
        p, _ = await twins(eligibility, insutype="390")
        when = now() - timedelta(minutes=5)
        sent: list[tuple[str, str, dict]] = []

        async def call(infno: str, input_: dict):
            msgid = his.msgid()
            answer = await his.call(infno, input_, msgid=msgid)
            assert answer.ok, answer.raw
            sent.append((infno, msgid, input_))
            return answer

        await call("1101", person_1101(p))
        mdtrt_id = (await call("2201", register_2201(p, when=when, ipt_otp_no="MZB"))).output["data"]["mdtrt_id"]
        await call("2203", visit_2203(p, mdtrt_id, when=when))
        items = numbered([Item("XGWA001", "12.00", "3"), Item("XGWB001", "55.00", "2")])
        await call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
        medfee = sum((i.total for i in items), Decimal("0.00"))
        await call("2206", settle_data(p, mdtrt_id, medfee))
        settled = (await call("2207", settle_data(p, mdtrt_id, medfee))).output["setlinfo"]
        check_identities(settled)
        assert Decimal(str(settled["medfee_sumamt"])) == medfee
        await call("5203", settlement_5203(p, mdtrt_id, settled["setl_id"]))
        return [(infno, msgid, input_) for infno, msgid, input_ in sent]

    days = await asyncio.gather(*(day() for _ in range(6)))
    sent = [message for one in days for message in one]
    assert len(sent) == 42
    app = _app(gateway)
    for infno, msgid, input_ in sent:
        stored = await fetchval(
            app, "SELECT response FROM gateway.messages WHERE fixmedins_code = :c AND msgid = :m", c=CODE, m=msgid
        )
        assert stored is not None, (infno, msgid)
        again = await his.call(infno, input_, msgid=msgid)
        assert again.raw == stored.encode(), infno


@pytest.fixture(autouse=True)
def _no_leftover_rows(gateway):
    """Every row a test hands the writer is answered (nothing left pending)."""
    yield
    assert _writer(gateway).pending == []
