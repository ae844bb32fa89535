"""Eligibility's changes reach other services through the real broker, once.

The apps run in-process against the session's PostgreSQL and broker; the fixtures are local to
this module (and uniquely named) so that no shared conftest is needed.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import time
import uuid
from datetime import date

import pytest

from services.eligibility.certno import make_certno
from shared.events.kafka import make_consumer
from shared.events.topics import PERSON_CHANGED
from shared.service import create_app
from shared.testing import ADMIN_KEY, fetch, make_settings, running_app

ADMIN = {"X-Api-Key": ADMIN_KEY}
TIMEOUT = 30.0


def _app(service: str, pg, broker):
    module = importlib.import_module(f"services.{service}.app")
    return running_app(create_app(module.spec, make_settings(service, database_url=pg.url, bootstrap=broker.bootstrap)))


@pytest.fixture(scope="module")
async def events_eligibility(pg, broker):
    async with _app("eligibility", pg, broker) as client:
        yield client


@pytest.fixture(scope="module")
async def events_settlement(pg, broker):
    async with _app("settlement", pg, broker) as client:
        yield client


async def _settlement_copy(settlement, code: str):
    """Settlement's copy of an institution (read on the in-process app's database), or None."""
    rows = await fetch(
        settlement._transport.app,
        "select suspended, applied, version from institutions where fixmedins_code = :c",
        c=code,
    )
    return rows[0] if rows else None


async def test_suspending_an_institution_reaches_settlement_once(events_eligibility, events_settlement):
    code = f"EV{uuid.uuid4().hex[:8].upper()}"
    body = {
        "fixmedins_code": code,
        "fixmedins_name": "事件测试医院",
        "kind": "hospital",
        "level": 3,
        "affiliation": "city",
        "admdvs": "621000",
    }
    assert (await events_eligibility.post("/v1/institutions", json=body, headers=ADMIN)).status_code == 201
    assert (await events_eligibility.post(f"/v1/institutions/{code}/suspend", headers=ADMIN)).status_code == 200
    deadline = time.monotonic() + TIMEOUT
    row = None
    while time.monotonic() < deadline:
        row = await _settlement_copy(events_settlement, code)
        if row is not None and row.applied >= 2:
            break
        await asyncio.sleep(0.1)
    assert row is not None, "settlement never saw the institution"
    assert (row.suspended, row.applied, row.version) == (True, 2, 2)
    await asyncio.sleep(1.0)  # a duplicate delivery would show up as a third application
    assert (await _settlement_copy(events_settlement, code)).applied == 2


async def test_registering_a_person_is_published_once_without_personal_data(events_eligibility, broker):
    certno = make_certno(region="621021", brdy=date(1971, 5, 17), serial=random.randrange(1000))
    response = await events_eligibility.post(
        "/v1/persons",
        headers=ADMIN,
        json={"certno": certno, "psn_name": "事件测试", "insutype": "390", "insuplc_admdvs": "621000"},
    )
    assert response.status_code == 201, response.text
    psn_no = response.json()["psn_no"]
    consumer = make_consumer(broker.bootstrap, PERSON_CHANGED, group_id=None)
    await consumer.start()
    seen: list[dict] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        quiet_until = None
        while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    if message.key == psn_no.encode():
                        seen.append(json.loads(message.value))
            if seen and quiet_until is None:
                quiet_until = time.monotonic() + 1.0  # keep reading a moment for duplicates
    finally:
        await consumer.stop()
    assert len({e["event_id"] for e in seen}) == 1, seen  # one event (a relay may repeat it: same event_id)
    event = seen[0]
    assert event["type"] == PERSON_CHANGED and event["payload"]["change"] == "registered"
    assert event["payload"]["brdy"] == "1971-05-17" and event["payload"]["insutype"] == "390"
    raw = json.dumps(event, ensure_ascii=False)
    assert certno not in raw and "事件测试" not in raw
