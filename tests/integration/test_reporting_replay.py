"""Read models rebuilt from the topics from offset 0 equal the live ones (real broker, own database).

The broker is this test's own (`own_broker`), so the reporting app runs exactly as deployed (consumer
group `reporting`) without sharing partitions with the session's reporting app, and the topics hold
only this test's events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import date, timedelta
from pathlib import Path

from typer.testing import CliRunner

from deploy import cli
from services.reporting import daily, replay
from services.reporting.app import spec
from services.reporting.models import SCHEMA
from shared.db import Database, Sql
from shared.events.kafka import make_producer
from shared.events.topics import (
    CLAIM_SUBMITTED,
    COVID_CASE_REGISTERED,
    INSTITUTION_CHANGED,
    PERSON_CHANGED,
    PREPAYMENT_DISBURSED,
    SETTLED,
    SETTLEMENT_REVERSED,
    SUBSIDY_DUE,
    SUBSIDY_PAID,
)
from shared.service import create_app
from shared.testing import make_settings, running_app
from tests.integration.conftest import create_database, eventually

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "reporting"))
from reporting_support import (  # noqa: E402
    at,
    case,
    envelope,
    finance_payment,
    prepayment,
    reversed_,
    settled,
    subsidy,
    uid,
)


def _events(day: date) -> list[tuple[str, object]]:
    """A bit of everything, in an awkward order: duplicates, late versions, a reversal before its settlement."""
    out = []
    code = uid("HR")
    for version, suspended in ((1, False), (2, True)):  # registered, then suspended
        institution = {
            "fixmedins_code": code,
            "fixmedins_name": "重放测试医院",
            "kind": "hospital",
            "level": 2,
            "affiliation": "county",
            "admdvs": "621022",
            "suspended": suspended,
            "version": version,
        }
        out.append((INSTITUTION_CHANGED, envelope(INSTITUTION_CHANGED, institution)))
    settlements = []
    for i in range(30):
        p = settled(
            day=day + timedelta(days=i % 3),
            covid=("confirmed", "suspected", None)[i % 3],
            origin=("local", "province", "other_province")[i % 3],
            insutype=("310", "390")[i % 2],
            medfee=f"{100 + i}.{i:02d}",
            hifp=f"{50 + i}.00",
            hifmi="0.00",
            maf="1.00",
            hour=i % 24,
            fixmedins_code=code,
            two_disease="diabetes" if i % 5 == 0 else None,
        )
        settlements.append(p)
        out.append((SETTLED, envelope(SETTLED, p)))
        if p["covid_status"]:
            out.append((SUBSIDY_DUE, envelope(SUBSIDY_DUE, subsidy(p))))
    for p in settlements[:5]:
        out.append((SETTLEMENT_REVERSED, envelope(SETTLEMENT_REVERSED, reversed_(p, day=day + timedelta(days=3)))))
    early = settled(day=day, covid="confirmed", fixmedins_code=code)
    out.insert(0, (SETTLEMENT_REVERSED, envelope(SETTLEMENT_REVERSED, reversed_(early, day=day + timedelta(days=1)))))
    out.append((SETTLED, envelope(SETTLED, early)))
    out.append((SETTLED, envelope(SETTLED, early)))  # the same settlement under a new event id
    cases = case(psn_no=uid("P"), diagnosed_at=at(day, 9), status="suspected")
    out.append((COVID_CASE_REGISTERED, envelope(COVID_CASE_REGISTERED, {**cases, "status": "confirmed", "version": 2})))
    out.append((COVID_CASE_REGISTERED, envelope(COVID_CASE_REGISTERED, cases)))  # older version, later
    for amount in ("1000000.00", "30000000.00"):
        out.append(
            (
                PREPAYMENT_DISBURSED,
                envelope(
                    PREPAYMENT_DISBURSED,
                    prepayment(admdvs="621022", amount=amount, disbursed_on=day, fixmedins_code=code),
                    key=code,
                    occurred_at=at(day, 10),
                ),
            )
        )
    psn = uid("P")
    for version in (1, 3, 2):
        out.append(
            (
                PERSON_CHANGED,
                envelope(
                    PERSON_CHANGED,
                    {
                        "psn_no": psn,
                        "version": version,
                        "change": "registered",
                        "insutype": "390",
                        "psn_type": None,
                        "insuplc_admdvs": "621000",
                        "gend": "2",
                        "brdy": "1970-05-06",
                        "emp_no": None,
                    },
                ),
            )
        )
    out.append(
        (
            CLAIM_SUBMITTED,
            envelope(
                CLAIM_SUBMITTED,
                {
                    "claim_id": uid("C"),
                    "psn_no": psn,
                    "fixmedins_code": code,
                    "visit": {},
                    "items": [],
                    "submitted_at": at(day, 11).isoformat(),
                },
            ),
        )
    )
    paid = finance_payment(paid_on=day, amount="1234.56", to_fixmedins_code=code, admdvs="621022")
    for payload in (paid, finance_payment(paid_on=day, amount="0.01", payer="central", to_level="city"), paid):
        out.append((SUBSIDY_PAID, envelope(SUBSIDY_PAID, payload, key=payload["ref"])))  # the same ref twice
    out.append(out[5])  # an exact redelivery (same event id)
    return out


async def test_rebuilt_read_models_equal_the_live_ones(pg, own_broker):
    url = await create_database(pg, "replay")
    live = await Database.open(url, schema=SCHEMA, size=4)
    day = date(2020, 2, 3)
    sent = _events(day)
    app = create_app(spec, make_settings("reporting", database_url=url, bootstrap=own_broker.bootstrap))
    try:
        async with running_app(app):
            producer = make_producer(own_broker.bootstrap)
            await producer.start()
            try:
                # sent without waiting, so the producer packs several records per batch (as the relay does):
                # the embedded broker then reports end offsets short of the real end
                acks = [await producer.send(topic, event.to_json(), key=event.key.encode()) for topic, event in sent]
                await asyncio.gather(*acks)
            finally:
                await producer.stop()
            distinct = len({event.event_id for _, event in sent})

            async def all_applied():
                async with live.connect() as unit:
                    return await unit.fetchval(Sql("SELECT count(*) FROM inbox")) == distinct

            await eventually(all_applied, timeout=60, what="the live consumer applying every event")

        rebuilt = await replay.rebuild(url, bootstrap=own_broker.bootstrap, timeout=60)
        assert sum(rebuilt.read.values()) == len(sent)
        assert sum(rebuilt.applied.values()) == distinct
        assert await replay.compare(url) == []

        async def report(schema):
            db = await Database.open(url, schema=schema, size=1)
            try:
                async with db.connect() as unit:
                    return [
                        await daily.daily_figures(unit, day=day + timedelta(days=i), cumulative=False) for i in range(5)
                    ]
            finally:
                await db.close()

        async def paid(schema):
            db = await Database.open(url, schema=schema, size=1)
            try:
                async with db.connect() as unit:
                    return await daily.finance_payments(unit, day=day)
            finally:
                await db.close()

        assert await report("reporting") == await report(replay.SCRATCH)
        assert (
            await paid("reporting")
            == await paid(replay.SCRATCH)
            == {
                "count": 2,
                "amount": "1234.57",
                "payers": [
                    {"payer": "central", "count": 1, "amount": "0.01"},
                    {"payer": "provincial", "count": 0, "amount": "0.00"},
                    {"payer": "city", "count": 1, "amount": "1234.56"},
                    {"payer": "county", "count": 0, "amount": "0.00"},
                ],
            }
        )
        assert any(f.persons < 0 for figures in await report("reporting") for f in figures.values())

        # a live model that drifted is caught, and replacing it from the rebuild repairs it
        async with live.connect() as unit:
            await unit.execute(Sql("DELETE FROM settlement_moves WHERE kind = 'reverse'"))
        drift = await replay.compare(url, topics=(SETTLED, SETTLEMENT_REVERSED))
        assert [(d.topic, d.table, d.only_live, d.only_rebuilt) for d in drift] == [
            (SETTLEMENT_REVERSED, "settlement_moves", 0, 6)
        ]
        await replay.replace_live(url, topics=(SETTLEMENT_REVERSED,))
        assert await replay.compare(url) == []
        await replay.drop_scratch(url)

        # the same through the command line: `yibao replay --topic settled --topic settlement-reversed`
        runner = CliRunner()
        result = await asyncio.to_thread(
            runner.invoke,
            cli.app,
            ["replay", "--topic", SETTLED, "--topic", SETTLEMENT_REVERSED, "--timeout", "60"],
            env={"DATABASE_URL": url, "KAFKA_BOOTSTRAP": own_broker.bootstrap},
        )
        assert result.exit_code == 0, result.output
        assert "the live read models equal the rebuilt ones" in result.output
        assert f"{SETTLED:<24} read" in result.output
    finally:
        await live.close()


def test_unknown_topics_and_schemas_are_refused():
    import pytest

    with pytest.raises(ValueError):
        replay.check_topics(["no-such-topic"])
    with pytest.raises(ValueError):
        replay.check_schema("reporting")
    with pytest.raises(ValueError):
        replay.check_schema('x"; drop schema reporting; --')
    assert dataclasses.is_dataclass(replay.Rebuilt)
