"""The message log: the same msgid answers the same bytes (also when two arrive at once: one settlement), a msgid
reused for something else fails, and 2601 undoes what a message did when its answer was lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from gateway_support import credit, twins
from gateway_support import his as his_of
from his_client import (
    Item,
    admit_2401,
    amount,
    fees_2204,
    now,
    numbered,
    person_1101,
    register_2201,
    reversal_2601,
    settle_data,
    visit_2203,
)

from shared.testing import HIS_KEYS, fetch, fetchval


async def _ready_to_settle(his, p, *, items=None):
    when = now() - timedelta(minutes=10)
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZ9"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    items = items or numbered([Item("XGWA001", "120.00", "3"), Item("XGWB001", "55.00", "2")])
    await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
    return mdtrt_id, sum((i.total for i in items), Decimal("0.00"))


async def _settlements(settlement, mdtrt_id: str) -> list:
    return await fetch(
        settlement._transport.app, "SELECT setl_id, status FROM settlement.settlements WHERE mdtrt_id = :m", m=mdtrt_id
    )


async def test_a_retried_msgid_answers_the_same_bytes_and_settles_once(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    mdtrt_id, medfee = await _ready_to_settle(his, p)
    msgid = his.msgid()
    first = await his.call("2207", settle_data(p, mdtrt_id, medfee), msgid=msgid)
    again = await his.call("2207", settle_data(p, mdtrt_id, medfee), msgid=msgid, path="infno", text_plain=True)
    assert again.raw == first.raw
    assert len(await _settlements(settlement, mdtrt_id)) == 1
    # a read is kept too: 1101 under one msgid answers its first bytes
    read_id = his.msgid()
    one = await his.call("1101", person_1101(p), msgid=read_id)
    await credit(settlement, p.psn_no, "1.00")
    assert (await his.call("1101", person_1101(p), msgid=read_id)).raw == one.raw


async def test_two_identical_requests_at_once_settle_once_and_answer_alike(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="310", psn_type="in_service")
    his = his_of(gateway)
    mdtrt_id, medfee = await _ready_to_settle(his, p)
    msgid = his.msgid()
    answers = await asyncio.gather(*(his.call("2207", settle_data(p, mdtrt_id, medfee), msgid=msgid) for _ in range(4)))
    assert len({a.raw for a in answers}) == 1
    assert len(await _settlements(settlement, mdtrt_id)) == 1


async def test_a_msgid_reused_for_another_input_fails_and_changes_nothing(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    mdtrt_id, medfee = await _ready_to_settle(his, p)
    msgid = his.msgid()
    first = await his.call("2207", settle_data(p, mdtrt_id, medfee), msgid=msgid)
    other = await his.refused("2207", settle_data(p, mdtrt_id, medfee, acct="1"), msgid=msgid)
    assert "报文ID重复" in other.err_msg
    assert "报文ID重复" in (await his.refused("1101", person_1101(p), msgid=msgid)).err_msg
    assert (await his.call("2207", settle_data(p, mdtrt_id, medfee), msgid=msgid)).raw == first.raw
    assert [r["status"] for r in await _settlements(settlement, mdtrt_id)] == ["settled"]


async def test_a_lost_settle_answer_is_reversed_by_2601_once(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="310", psn_type="in_service")
    await credit(settlement, p.psn_no, "500.00")
    his = his_of(gateway)
    mdtrt_id, medfee = await _ready_to_settle(his, p)
    app = settlement._transport.app
    msgid = his.msgid()
    await his.call("2207", settle_data(p, mdtrt_id, medfee, acct="1"), msgid=msgid)  # the answer "never arrived"
    assert await fetchval(app, "SELECT balc FROM settlement.accounts WHERE psn_no = :p", p=p.psn_no) < 500
    await his.call("2601", reversal_2601(p, msgid, "2207"))
    assert await fetchval(app, "SELECT balc FROM settlement.accounts WHERE psn_no = :p", p=p.psn_no) == Decimal(
        "500.00"
    )
    amounts = await fetchval(app, "SELECT amounts FROM settlement.accumulators WHERE psn_no = :p", p=p.psn_no)
    assert all(Decimal(v) == 0 for v in amounts.values())
    await his.call("2601", reversal_2601(p, msgid, "2207"))  # twice: success, nothing more undone
    assert [r["status"] for r in await _settlements(settlement, mdtrt_id)] == ["reversed"]
    assert await fetchval(app, "SELECT balc FROM settlement.accounts WHERE psn_no = :p", p=p.psn_no) == Decimal(
        "500.00"
    )
    again = (await his.call("2207", settle_data(p, mdtrt_id, medfee, acct="1"))).output["setlinfo"]
    assert amount(again["medfee_sumamt"]) == medfee  # the visit is open again and settles anew


async def test_2601_cancels_an_admission_and_refuses_what_does_not_match(gateway, settlement, eligibility):
    p, other = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    msgid = his.msgid()
    admitted = await his.call(
        "2401", admit_2401(p, when=now() - timedelta(hours=5), ipt_no="ZY9", diagnoses=["R10.400"]), msgid=msgid
    )
    mdtrt_id = admitted.output["result"]["mdtrt_id"]
    assert "人员编号" in (await his.refused("2601", reversal_2601(other, msgid, "2401"))).err_msg
    assert "交易编号" in (await his.refused("2601", reversal_2601(p, msgid, "2207"))).err_msg
    assert "不存在" in (await his.refused("2601", reversal_2601(p, his.msgid(), "2401"))).err_msg
    await his.call("2601", reversal_2601(p, msgid, "2401"))
    status = await fetchval(
        settlement._transport.app, "SELECT status FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id
    )
    assert status == "closed"
    await his.call("2601", reversal_2601(p, msgid, "2401"))


async def test_a_msgid_whose_gateway_stopped_mid_settle_is_taken_over_and_answers_that_settlement(
    gateway, settlement, eligibility
):
    """The gateway stopped after settlement settled but before it kept its answer: the claim (a row without an answer)
    goes stale, the client's retry with the same msgid takes it over and answers the settlement the first run made."""
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    mdtrt_id, medfee = await _ready_to_settle(his, p)
    msgid = his.msgid()
    gw = gateway._transport.app
    data = settle_data(p, mdtrt_id, medfee)
    from services.gateway.envelope import input_hash  # the row the first run claimed (the same input, hashed alike)

    await fetch(
        gw,
        "INSERT INTO gateway.messages (fixmedins_code, msgid, infno, input_hash, created_at) "
        "VALUES ('H1', :m, '2207', :h, now() - interval '10 minutes')",
        m=msgid,
        h=input_hash("2207", data),
    )
    first = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", json={}, headers={"X-Api-Key": HIS_KEYS["H1"]})
    assert first.status_code == 201, first.text
    answer = await his.call("2207", data, msgid=msgid)
    assert answer.output["setlinfo"]["setl_id"] == first.json()["setl_id"]
    assert len(await _settlements(settlement, mdtrt_id)) == 1
    assert (await his.call("2207", data, msgid=msgid)).raw == answer.raw
    # another msgid for the settled visit is refused, not recovered
    assert "已结算" in (await his.refused("2207", data)).err_msg


async def test_a_second_request_waits_for_a_running_first_and_a_fresh_claim_is_not_taken_over(gateway, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    msgid = his.msgid()
    from services.gateway import messages
    from services.gateway.envelope import input_hash

    data = person_1101(p)
    await fetch(
        gateway._transport.app,
        "INSERT INTO gateway.messages (fixmedins_code, msgid, infno, input_hash) VALUES ('H1', :m, '9001', :h)",
        m=msgid,
        h=input_hash("9001", data),
    )
    waited, messages.WAIT_SECONDS = messages.WAIT_SECONDS, 0.2
    try:
        assert "处理中" in (await his.refused("9001", data, msgid=msgid)).err_msg
    finally:
        messages.WAIT_SECONDS = waited


async def test_the_log_keeps_thirty_days_and_nonces_an_hour(gateway):
    from services.gateway.app import _PURGES

    app = gateway._transport.app
    await fetch(
        app,
        "INSERT INTO gateway.messages (fixmedins_code, msgid, infno, input_hash, response, created_at) VALUES "
        "('H1', 'OLD-MSG', '1101', 'h', '{}', now() - interval '31 days'), "
        "('H1', 'NEW-MSG', '1101', 'h', '{}', now() - interval '29 days')",
    )
    await fetch(
        app, "INSERT INTO gateway.nonces (access_key, nonce, seen_at) VALUES ('k', 'old', now() - interval '2h')"
    )
    async with app.state.db.connect() as unit:
        for purge in _PURGES:
            await unit.execute(purge)
    left = {r[0] for r in await fetch(app, "SELECT msgid FROM gateway.messages WHERE msgid LIKE '%-MSG'")}
    assert left == {"NEW-MSG"}
    assert await fetch(app, "SELECT nonce FROM gateway.nonces WHERE nonce = 'old'") == []


# ------------------------------------------------------------------ messages without a claim (2201, 2204)


async def _visits_of(settlement, psn_no: str) -> list:
    return await fetch(
        settlement._transport.app,
        "SELECT mdtrt_id, status FROM settlement.visits WHERE psn_no = :p ORDER BY begntime, mdtrt_id",
        p=psn_no,
    )


def _forget_answered(gateway) -> None:
    """This process forgets which msgids it answered: as another gateway process (or one restarted) would know it."""
    gateway._transport.app.state.gateway.memo.answered.clear()


async def test_a_registration_retried_or_sent_twice_at_once_registers_one_visit(gateway, settlement, eligibility):
    p, q = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    msgid = his.msgid()
    first = await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZR"), msgid=msgid)
    again = await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZR"), msgid=msgid)
    assert again.raw == first.raw
    assert [v["status"] for v in await _visits_of(settlement, p.psn_no)] == ["open"]
    # two at once, in this process: one registers, the other answers its bytes
    msgid = his.msgid()
    answers = await asyncio.gather(
        *(his.call("2201", register_2201(q, when=when, ipt_otp_no="MZS"), msgid=msgid) for _ in range(3))
    )
    assert len({a.raw for a in answers}) == 1
    assert [v["status"] for v in await _visits_of(settlement, q.psn_no)] == ["open"]


async def test_a_registration_whose_msgid_another_process_answered_cancels_its_own_visit(
    gateway, settlement, eligibility
):
    """The log is the judge across processes: a retry that reaches a gateway not knowing the msgid registers once
    more, finds the msgid answered, cancels the visit it made and answers the stored bytes."""
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    msgid = his.msgid()
    first = await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZT"), msgid=msgid)
    _forget_answered(gateway)
    again = await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZT"), msgid=msgid)
    assert again.raw == first.raw
    visits = await _visits_of(settlement, p.psn_no)
    assert sorted(v["status"] for v in visits) == ["closed", "open"]
    assert [v["mdtrt_id"] for v in visits if v["status"] == "open"] == [first.output["data"]["mdtrt_id"]]
    _forget_answered(gateway)  # and a msgid of another message: refused, its visit cancelled too
    other = await his.refused("2201", register_2201(p, when=when, ipt_otp_no="MZU"), msgid=msgid)
    assert "报文ID重复" in other.err_msg
    assert sorted(v["status"] for v in await _visits_of(settlement, p.psn_no)) == ["closed", "closed", "open"]


async def test_fee_lines_under_a_msgid_taken_by_another_message_are_taken_back(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZV"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    items = numbered([Item("XGWA001", "12.00", "3"), Item("XGWB001", "55.00", "2")])
    msgid = his.msgid()
    first = await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"), msgid=msgid)
    app, gw = settlement._transport.app, gateway._transport.app

    async def lines() -> tuple[list, list]:
        at_settlement = await fetch(
            app, "SELECT feedetl_sn FROM settlement.fee_lines WHERE mdtrt_id = :m ORDER BY feedetl_sn", m=mdtrt_id
        )
        here = await fetch(
            gw,
            "SELECT feedetl_sn FROM gateway.fee_lines WHERE mdtrt_id = :m AND status = 'active' ORDER BY feedetl_sn",
            m=mdtrt_id,
        )
        return [r[0] for r in at_settlement], [r[0] for r in here]

    both = ([i.sn for i in items], [i.sn for i in items])
    assert await lines() == both
    more = items + numbered([Item("XGWC001", "9.50", "1")])
    # reused for another input, in this process: refused before anything is uploaded
    assert (
        "报文ID重复"
        in (await his.refused("2204", fees_2204(p, mdtrt_id, more, when=when, batch="B1"), msgid=msgid)).err_msg
    )
    assert await lines() == both
    # the same in a process that does not know the msgid: uploaded, then the new line taken back
    _forget_answered(gateway)
    assert (
        "报文ID重复"
        in (await his.refused("2204", fees_2204(p, mdtrt_id, more, when=when, batch="B1"), msgid=msgid)).err_msg
    )
    assert await lines() == both
    # a retry there: the stored answer, the lines stay
    _forget_answered(gateway)
    again = await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"), msgid=msgid)
    assert again.raw == first.raw
    assert await lines() == both
    total = sum((i.total for i in items), Decimal("0.00"))
    assert (
        amount((await his.call("2207", settle_data(p, mdtrt_id, total))).output["setlinfo"]["medfee_sumamt"]) == total
    )
