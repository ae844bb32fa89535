"""The money after the settlement in reporting (issue 13): the day's personal-account payments (own and family) and
retail purchases in the daily report and their own reconciliation, `yibao replay` rebuilding them from the topic,
and the case ledger (附件3) showing the real admission date of the case's inpatient stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from reporting_support import (
    ADMIN,
    OPS,
    at,
    case,
    envelope,
    fake_settlement,
    feed,
    fresh_day,
    reverse,
    settle,
    settle_ordinary,
    settled,
    uid,
)

from services.reporting import replay
from shared.events.kafka import make_producer
from shared.events.topics import COVID_CASE_REGISTERED, SETTLED, SETTLEMENT_REVERSED
from shared.testing import fetch

D = Decimal


def purchase(*, day, medfee: str, acct: str, payer: str | None = None, code: str = "P1") -> dict:
    """A retail purchase's `settled` payload (med_type 41, no fund, the account and cash)."""
    payload = settled(
        day=day,
        covid=None,
        medfee=medfee,
        hifp="0.00",
        hifmi="0.00",
        maf="0.00",
        acct=acct,
        fixmedins_code=code,
        med_type="41",
    )
    payload.update(
        fixmedins_kind="pharmacy", fixmedins_level=None, retail_purchase=True, acct_payer_psn_no=payer, enddate=None
    )
    return payload


def with_family(payload: dict, payer: str) -> dict:
    return {**payload, "acct_payer_psn_no": payer}


async def _accounts(reporting, day, *, cumulative: bool = False) -> dict:
    response = await reporting.get(
        "/v1/reports/daily", params={"date": day.isoformat(), "cumulative": str(cumulative).lower()}, headers=OPS
    )
    assert response.status_code == 200, response.text
    return response.json()["accounts"]


async def test_the_daily_report_shows_account_payments_and_purchases_net_of_reversals(reporting):
    day = fresh_day(span=2)
    bought = purchase(day=day, medfee="35.00", acct="30.00")
    await feed(reporting, SETTLED, bought)
    await feed(reporting, SETTLED, purchase(day=day, medfee="12.40", acct="12.40", payer=uid("P")))
    await feed(
        reporting,
        SETTLED,
        with_family(
            settled(day=day, covid=None, medfee="300.00", hifp="200.00", hifmi="0.00", maf="0.00", acct="80.00"),
            uid("P"),
        ),
    )
    await settle_ordinary(reporting, day=day, medfee="100.00", hifp="60.00", acct="25.55")
    await settle(reporting, day=day, covid="confirmed", medfee="999.00", hifp="600.00", hifmi="0.00", maf="0.00")
    assert await _accounts(reporting, day) == {
        "acct_pay": "147.95",
        "family_acct_pay": "92.40",
        "purchases": {"count": 2, "medfee_sumamt": "47.40", "acct_pay": "42.40", "psn_cash_pay": "5.00"},
    }
    nxt = day + timedelta(days=1)
    await reverse(reporting, bought, day=nxt)
    assert await _accounts(reporting, nxt) == {
        "acct_pay": "-30.00",
        "family_acct_pay": "0.00",
        "purchases": {"count": -1, "medfee_sumamt": "-35.00", "acct_pay": "-30.00", "psn_cash_pay": "-5.00"},
    }
    up_to = await _accounts(reporting, nxt, cumulative=True)
    before = await _accounts(reporting, day - timedelta(days=1), cumulative=True)
    assert D(up_to["acct_pay"]) - D(before["acct_pay"]) == D("117.95")
    assert up_to["purchases"]["count"] - before["purchases"]["count"] == 1


async def test_the_account_side_is_reconciled_with_the_settlement_service(reporting, swap_settlement):
    day = fresh_day()
    await feed(reporting, SETTLED, purchase(day=day, medfee="20.00", acct="15.00"))
    await feed(
        reporting,
        SETTLED,
        with_family(
            settled(day=day, covid=None, medfee="50.00", hifp="30.00", hifmi="0.00", maf="0.00", acct="20.00"), uid("P")
        ),
    )
    mine = {
        "acct_pay": "35.00",
        "family_acct_pay": "20.00",
        "purchases": {"count": 1, "medfee_sumamt": "20.00", "acct_pay": "15.00", "psn_cash_pay": "5.00"},
    }
    swap_settlement(fake_settlement("/v1/account-totals", mine))
    response = await reporting.get("/v1/reconciliation/accounts", params={"date": day.isoformat()}, headers=OPS)
    assert response.status_code == 200, response.text
    assert response.json() == {"date": day.isoformat(), "settlement": mine, "reporting": mine, "differences": []}
    theirs = {**mine, "acct_pay": "35.01", "purchases": {**mine["purchases"], "count": 2}}
    swap_settlement(fake_settlement("/v1/account-totals", theirs))
    differences = (
        await reporting.get("/v1/reconciliation/accounts", params={"date": day.isoformat()}, headers=OPS)
    ).json()["differences"]
    assert differences == [
        {"field": "acct_pay", "settlement": "35.01", "reporting": "35.00"},
        {"field": "purchases.count", "settlement": 2, "reporting": 1},
    ]
    swap_settlement(fake_settlement("/v1/account-totals", {"acct_pay": "x"}))
    broken = await reporting.get("/v1/reconciliation/accounts", params={"date": day.isoformat()}, headers=OPS)
    assert broken.status_code == 503 and broken.json()["code"] == "SETTLEMENT_UNAVAILABLE"
    swap_settlement(httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=1))
    down = await reporting.get("/v1/reconciliation/accounts", params={"date": day.isoformat()}, headers=OPS)
    assert down.status_code == 503
    his = await reporting.get(
        "/v1/reconciliation/accounts",
        params={"date": day.isoformat()},
        headers={"X-Api-Key": "test-his-H1-key-0000000"},
    )
    assert his.status_code == 403


async def test_a_rebuild_from_the_topics_equals_the_live_purchases_and_payments(reporting, broker):
    """`yibao replay` covers purchases and account payments: rebuilt from offset 0 into a scratch schema, the rows
    (retail_purchase, acct_payer_psn_no and the money included) equal the live ones."""
    day = fresh_day(span=2)
    bought = purchase(day=day, medfee="18.00", acct="18.00", payer=uid("P"))
    family = with_family(
        settled(day=day, covid=None, medfee="77.00", hifp="40.00", hifmi="0.00", maf="0.00", acct="37.00"), uid("P")
    )
    rev = {
        "setl_id": bought["setl_id"],
        "mdtrt_id": bought["mdtrt_id"],
        "psn_no": bought["psn_no"],
        "fixmedins_code": bought["fixmedins_code"],
        "reversed_at": at(day + timedelta(days=1)).isoformat(),
        "rev_date": (day + timedelta(days=1)).isoformat(),
        "original": bought,
    }
    sent = [
        (SETTLED, bought),
        (SETTLED, family),
        (SETTLEMENT_REVERSED, rev),
        (SETTLED, {**bought, "reannounced": True}),
    ]
    producer = make_producer(broker.bootstrap)
    await producer.start()
    try:
        for topic, payload in sent:
            event = envelope(topic, payload)
            await producer.send_and_wait(topic, event.to_json(), key=event.key.encode())
    finally:
        await producer.stop()
    ids = [bought["setl_id"], family["setl_id"]]
    query = (
        "SELECT setl_id, kind, retail_purchase, acct_payer_psn_no, acct_pay FROM settlement_moves "
        "WHERE setl_id = ANY(CAST(:ids AS text[])) ORDER BY setl_id, kind"
    )
    for _ in range(300):  # the live consumer (group `reporting`) applies them
        rows = [tuple(r) for r in await fetch(reporting._transport.app, query, ids=ids)]
        if len(rows) == 3:
            break
        await asyncio.sleep(0.1)
    assert sorted(rows) == sorted(
        [
            (bought["setl_id"], "reverse", True, bought["acct_payer_psn_no"], D("-18.00")),
            (bought["setl_id"], "settle", True, bought["acct_payer_psn_no"], D("18.00")),
            (family["setl_id"], "settle", False, family["acct_payer_psn_no"], D("37.00")),
        ]
    )
    url = reporting._transport.app.state.settings.database_url
    scratch = f"reporting_replay_{uuid.uuid4().hex[:8]}"
    topics = (SETTLED, SETTLEMENT_REVERSED)
    try:
        rebuilt = await replay.rebuild(url, bootstrap=broker.bootstrap, topics=topics, schema=scratch, timeout=60)
        assert rebuilt.read[SETTLED] >= 3 and rebuilt.read[SETTLEMENT_REVERSED] >= 1
        differences = await replay.compare(
            url, topics=topics, schema=scratch, where="setl_id = ANY(CAST(:ids AS text[]))", params={"ids": ids}
        )
        assert differences == []
    finally:
        await replay.drop_scratch(url, scratch)


async def _ledger(reporting, filing) -> dict[str, dict]:
    response = await reporting.get("/v1/reports/covid-ledger", params={"date": filing.isoformat()}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return {item["case_id"]: item for item in response.json()["items"]}


async def test_the_case_ledger_shows_the_admission_date_of_the_inpatient_stay(reporting):
    filing = fresh_day(span=12)
    diagnosed = filing - timedelta(days=1)
    admitted, other, without, reversed_stay = uid("P"), uid("P"), uid("P"), uid("P")
    cases = {
        psn: case(psn_no=psn, diagnosed_at=at(diagnosed, 9), fixmedins_code="H1")
        for psn in (admitted, other, without, reversed_stay)
    }
    for payload in cases.values():
        await feed(reporting, COVID_CASE_REGISTERED, payload)

    def stay(psn: str, begin, end, code: str = "H1", covid: str | None = "confirmed") -> dict:
        payload = settled(day=end, psn_no=psn, fixmedins_code=code, covid=covid)
        return {**payload, "begndate": begin.isoformat(), "enddate": end.isoformat()}

    # admitted two days before the diagnosis, discharged later; an older stay elsewhere does not count
    await feed(reporting, SETTLED, stay(admitted, diagnosed - timedelta(days=2), diagnosed + timedelta(days=9)))
    await feed(
        reporting,
        SETTLED,
        stay(admitted, diagnosed - timedelta(days=90), diagnosed - timedelta(days=80), code="H2", covid=None),
    )
    # diagnosed at the fever clinic, admitted the next day at another hospital
    await feed(reporting, SETTLED, stay(other, diagnosed + timedelta(days=1), diagnosed + timedelta(days=6), code="H2"))
    # a stay whose settlement was reversed is no stay
    undone = stay(reversed_stay, diagnosed - timedelta(days=1), diagnosed + timedelta(days=3))
    await feed(reporting, SETTLED, undone)
    await reverse(reporting, undone, day=diagnosed + timedelta(days=4))

    ledger = await _ledger(reporting, filing)
    shown = {
        psn: (ledger[c["case_id"]]["admission_date"], ledger[c["case_id"]]["admission_date_from"])
        for psn, c in cases.items()
    }
    assert shown == {
        admitted: ((diagnosed - timedelta(days=2)).isoformat(), "inpatient_stay"),
        other: ((diagnosed + timedelta(days=1)).isoformat(), "inpatient_stay"),
        without: (diagnosed.isoformat(), "diagnosis"),
        reversed_stay: (diagnosed.isoformat(), "diagnosis"),
    }
