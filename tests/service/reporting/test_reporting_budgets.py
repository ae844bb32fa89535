"""Global budgets (budget-set): the read model keeps the newest version, the indicators show budget, use and status
in JSON, CSV and xlsx, and a rebuild from the topic equals the live model."""

from __future__ import annotations

import asyncio
import csv
import io
import tomllib
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from reporting_support import OPS, envelope, feed, fresh_day, reverse, settle, settle_ordinary, uid, workbook

from services.reporting import replay
from services.reporting.feed import public_view
from shared.budget import DEFAULT_POLICY_DIR, BudgetPolicyError, BudgetThresholds, parse_thresholds
from shared.events.kafka import make_producer
from shared.events.topics import BUDGET_SET, INSTITUTION_CHANGED
from shared.testing import fetch, fetchval

D = Decimal


def budget_set(code: str, *, year: int, amount: str, version: int) -> dict:
    """A `budget-set` payload as docs/events.md defines it."""
    return {"fixmedins_code": code, "year": year, "amount": amount, "version": version}


async def _stored(reporting, code: str) -> dict[int, tuple[Decimal, int]]:
    rows = await fetch(
        reporting._transport.app, "SELECT year, amount, version FROM budgets WHERE fixmedins_code = :code", code=code
    )
    return {row.year: (row.amount, row.version) for row in rows}


async def _apply(reporting, payload: dict, **kwargs):
    """Through the consumer and its inbox: (applied now, the event)."""
    event = envelope(BUDGET_SET, payload, key=payload.get("fixmedins_code"), **kwargs)
    return await reporting._transport.app.state.consumer.apply(BUDGET_SET, event.to_json()), event


async def test_a_later_version_replaces_the_amount_and_an_older_one_changes_nothing(reporting):
    code = uid("HB")
    await feed(reporting, BUDGET_SET, budget_set(code, year=2024, amount="1000000.00", version=1), key=code)
    assert await _stored(reporting, code) == {2024: (D("1000000.00"), 1)}
    await feed(reporting, BUDGET_SET, budget_set(code, year=2024, amount="1200000.05", version=3), key=code)
    assert await _stored(reporting, code) == {2024: (D("1200000.05"), 3)}
    # version 2 arrives after version 3 (another partition, a redelivery, a replay): it is older, it loses
    await feed(reporting, BUDGET_SET, budget_set(code, year=2024, amount="999.99", version=2), key=code)
    # the same version again under another event id changes nothing either
    await feed(reporting, BUDGET_SET, budget_set(code, year=2024, amount="1.00", version=3), key=code)
    assert await _stored(reporting, code) == {2024: (D("1200000.05"), 3)}
    # the exact event again is dropped by the inbox
    applied, event = await _apply(reporting, budget_set(code, year=2025, amount="50.10", version=1))
    assert applied
    assert not await reporting._transport.app.state.consumer.apply(BUDGET_SET, event.to_json())
    assert await _stored(reporting, code) == {2024: (D("1200000.05"), 3), 2025: (D("50.10"), 1)}


@pytest.mark.parametrize(
    "payload",
    [
        {"year": 2024, "amount": "1.00", "version": 1},
        {"fixmedins_code": "X", "year": 2024, "amount": "1.00"},
        {"fixmedins_code": "X", "year": "next", "amount": "1.00", "version": 1},
        {"fixmedins_code": "X", "year": 2024, "amount": "0.00", "version": 1},
    ],
)
async def test_a_budget_set_the_reports_cannot_use_is_dead_lettered(reporting, payload):
    code = uid("HX")
    payload = {**payload, "fixmedins_code": code} if "fixmedins_code" in payload else payload
    applied, event = await _apply(reporting, payload)
    assert not applied
    assert await _stored(reporting, code) == {}
    dead = await fetchval(
        reporting._transport.app, "SELECT error FROM dead_letter WHERE event_id = CAST(:id AS uuid)", id=event.event_id
    )
    assert dead and "BadPayload" in dead


async def _indicators(reporting, year: int, fmt: str = "json"):
    response = await reporting.get("/v1/reports/indicators", params={"year": year, "format": fmt}, headers=OPS)
    assert response.status_code == 200, response.text
    return response


async def _hospital(reporting, code: str, *, affiliation: str = "county") -> None:
    await feed(
        reporting,
        INSTITUTION_CHANGED,
        {
            "fixmedins_code": code,
            "fixmedins_name": f"预算测试医院{code[-4:]}",
            "kind": "hospital",
            "level": 2,
            "affiliation": affiliation,
            "admdvs": "621022",
            "suspended": False,
            "version": 1,
        },
    )


async def test_indicators_show_the_budget_its_use_and_status_to_the_fen(reporting):
    day = fresh_day(span=2)
    year = day.year
    warning, ok, exceeded, unused, none = (uid(p) for p in ("HW", "HO", "HE", "HU", "HN"))
    for code in (warning, ok, exceeded, unused, none):
        await _hospital(reporting, code)
    # warning: 8200.00 of 10250.00 is exactly 80 %; a COVID settlement is outside the budget; a reversal nets out
    await settle(
        reporting,
        day=day,
        covid=None,
        fixmedins_code=warning,
        affiliation="county",
        medfee="9000.00",
        hifp="6000.00",
        hifmi="1000.00",
        maf="1200.00",
    )
    await settle(
        reporting,
        day=day,
        covid="confirmed",
        fixmedins_code=warning,
        affiliation="county",
        medfee="5000.00",
        hifp="3000.00",
        hifmi="0.00",
        maf="0.00",
    )
    gone = await settle_ordinary(
        reporting, day=day, fixmedins_code=warning, affiliation="county", medfee="100.00", hifp="70.00"
    )
    await reverse(reporting, gone, day=day + timedelta(days=1))
    # ok: one fen short of 80 % (the ratio shown rounds to 0.8000, the status compares exactly)
    await settle_ordinary(reporting, day=day, fixmedins_code=ok, affiliation="county", medfee="9000.00", hifp="8199.99")
    # exceeded: all of it
    await settle(
        reporting,
        day=day,
        covid=None,
        fixmedins_code=exceeded,
        affiliation="county",
        medfee="11000.00",
        hifp="10000.00",
        hifmi="250.00",
        maf="0.00",
    )
    await settle_ordinary(reporting, day=day, fixmedins_code=none, affiliation="county", medfee="10.00", hifp="5.00")
    for code in (warning, ok, exceeded, unused):
        await feed(reporting, BUDGET_SET, budget_set(code, year=year, amount="10250.00", version=1), key=code)
    await feed(reporting, BUDGET_SET, budget_set(warning, year=year + 1, amount="1.00", version=1), key=warning)

    body = (await _indicators(reporting, year)).json()
    assert body["budget_thresholds"] == {"warning": "0.8000", "exceeded": "1.0000"}
    items = {item["fixmedins_code"]: item for item in body["items"]}
    budget = lambda code: tuple(items[code][k] for k in ("budget_used", "budget", "budget_ratio", "budget_status"))  # noqa: E731
    assert budget(warning) == ("8200.00", "10250.00", "0.8000", "warning")
    assert budget(ok) == ("8199.99", "10250.00", "0.8000", "ok")
    assert budget(exceeded) == ("10250.00", "10250.00", "1.0000", "exceeded")
    assert budget(unused) == ("0.00", "10250.00", "0.0000", "ok")  # a budget and no settlement: listed all the same
    assert (items[unused]["settlements"], items[unused]["fixmedins_name"]) == (0, f"预算测试医院{unused[-4:]}")
    assert budget(none) == ("5.00", None, None, None)

    # a new budget for the year (a later version) replaces the amount
    await feed(reporting, BUDGET_SET, budget_set(warning, year=year, amount="8199.99", version=2), key=warning)
    items = {item["fixmedins_code"]: item for item in (await _indicators(reporting, year)).json()["items"]}
    assert budget(warning) == ("8200.00", "8199.99", "1.0000", "exceeded")

    rows = list(csv.reader(io.StringIO((await _indicators(reporting, year, "csv")).content.decode("utf-8-sig"))))
    head = next(r for r in rows if r and r[0] == "机构编码")
    assert head[8:] == ["总额预算已用(非新冠)", "总额预算", "预算使用率", "预算状态"]
    lines = {r[0]: r for r in rows if r and r[0] in (warning, ok, exceeded, unused, none)}
    assert lines[ok][8:] == ["0.8200", "1.0250", "0.8000", "正常"]  # 万元, four decimals
    assert lines[warning][8:] == ["0.8200", "0.8200", "1.0000", "超支"]
    assert lines[none][8:] == ["0.0005", "", "", ""]
    assert any("≥ 80% 预警" in cell and "≥ 100% 超支" in cell for r in rows for cell in r)

    sheet = workbook((await _indicators(reporting, year, "xlsx")).content).active
    line = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(row=r, column=1).value == ok)
    values = [sheet.cell(row=line, column=c).value for c in (9, 10, 11, 12)]
    assert [D(str(v)) for v in values[:3]] == [D("0.82"), D("1.025"), D("0.8")] and values[3] == "正常"
    assert [sheet.cell(row=line, column=c).number_format for c in (10, 11)] == ["0.0000", "0.00%"]


async def test_budget_status_follows_the_policy_the_service_loaded(reporting):
    """The thresholds are data (deploy/policy/budget.toml), the same file the prepayment service reads."""
    state = reporting._transport.app.state
    reference = DEFAULT_POLICY_DIR / "budget.toml"
    assert state.budget_thresholds == BudgetThresholds(warning=D("0.80"), exceeded=D("1.00"))
    assert state.budget_thresholds == parse_thresholds(tomllib.loads(reference.read_text()), source="x")
    for wrong in (
        {},
        {"status": {"warning": "1.00", "exceeded": "0.80"}},
        {"status": {"warning": 0.8, "exceeded": "1"}},
    ):
        with pytest.raises(BudgetPolicyError):
            parse_thresholds(wrong, source="budget.toml")

    day = fresh_day()
    code = uid("HT")
    await settle_ordinary(reporting, day=day, fixmedins_code=code, medfee="700.00", hifp="600.00")
    await feed(reporting, BUDGET_SET, budget_set(code, year=day.year, amount="1000.00", version=1), key=code)
    original = state.budget_thresholds
    try:
        state.budget_thresholds = BudgetThresholds(warning=D("0.50"), exceeded=D("0.60"))
        body = (await _indicators(reporting, day.year)).json()
    finally:
        state.budget_thresholds = original
    item = next(i for i in body["items"] if i["fixmedins_code"] == code)
    assert (item["budget_ratio"], item["budget_status"]) == ("0.6000", "exceeded")
    assert body["budget_thresholds"] == {"warning": "0.5000", "exceeded": "0.6000"}
    item = next(i for i in (await _indicators(reporting, day.year)).json()["items"] if i["fixmedins_code"] == code)
    assert item["budget_status"] == "ok"


async def test_the_feed_shows_a_budget_set():
    event = envelope(BUDGET_SET, budget_set("H1", year=2024, amount="10.00", version=4), key="H1")
    assert public_view(event)["data"] == {"fixmedins_code": "H1", "year": 2024, "amount": "10.00", "version": 4}


async def test_a_rebuild_from_the_topic_equals_the_live_budgets(reporting, broker):
    """`yibao replay` covers budget-set: read from offset 0 into a scratch schema, the rows equal the live ones."""
    codes = [uid("HR"), uid("HR")]
    sent = [
        envelope(BUDGET_SET, budget_set(codes[0], year=2023, amount="500.00", version=2), key=codes[0]),
        envelope(BUDGET_SET, budget_set(codes[0], year=2023, amount="400.00", version=1), key=codes[0]),  # older
        envelope(BUDGET_SET, budget_set(codes[0], year=2024, amount="0.01", version=1), key=codes[0]),
        envelope(BUDGET_SET, budget_set(codes[1], year=2023, amount="123456789.99", version=7), key=codes[1]),
    ]
    producer = make_producer(broker.bootstrap)
    await producer.start()
    try:
        for event in sent + sent[:1]:  # and one redelivery
            await producer.send_and_wait(BUDGET_SET, event.to_json(), key=event.key.encode())
    finally:
        await producer.stop()
    expected = {codes[0]: {2023: (D("500.00"), 2), 2024: (D("0.01"), 1)}, codes[1]: {2023: (D("123456789.99"), 7)}}
    for _ in range(300):  # the live consumer (group `reporting`) applies them
        if {code: await _stored(reporting, code) for code in codes} == expected:
            break
        await asyncio.sleep(0.1)
    assert {code: await _stored(reporting, code) for code in codes} == expected

    url = reporting._transport.app.state.settings.database_url
    scratch = f"reporting_replay_{uuid.uuid4().hex[:8]}"
    try:
        rebuilt = await replay.rebuild(
            url, bootstrap=broker.bootstrap, topics=(BUDGET_SET,), schema=scratch, timeout=60
        )
        assert rebuilt.read[BUDGET_SET] >= len(sent) + 1
        assert (
            await replay.compare(
                url,
                topics=(BUDGET_SET,),
                schema=scratch,
                where="fixmedins_code = ANY(CAST(:codes AS text[]))",
                params={"codes": codes},
            )
            == []
        )
    finally:
        await replay.drop_scratch(url, scratch)
    assert BUDGET_SET in replay.check_topics(None)  # `yibao replay` without --topic includes it
