"""Setting a budget announces it: `budget-set` in the outbox, in the budget's transaction, with a growing version;
budgets stored before the event existed are announced by migration 0003."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from services.prepayment import budgets
from shared.db import Database, Sql
from shared.events.envelope import Envelope
from shared.events.topics import BUDGET_SET
from shared.migrate import migrate
from shared.testing import ADMIN_KEY, OPS_KEY, fetch
from tests.integration.conftest import create_database

ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}
MIGRATIONS = Path(budgets.__file__).parent / "migrations"


async def _announced(books, code: str) -> list[dict]:
    """The `budget-set` envelopes of an institution in the outbox, oldest first (key checked)."""
    rows = await fetch(
        books.app,
        "SELECT key, type, envelope FROM outbox WHERE topic = :topic AND key = :code ORDER BY id",
        topic=BUDGET_SET,
        code=code,
    )
    assert all(row.key == code and row.type == BUDGET_SET for row in rows)
    return [row.envelope for row in rows]


async def _put(books, code: str, body: dict, headers: dict = ADMIN):
    return await books.client.put(f"/v1/budgets/{code}", json=body, headers=headers)


async def test_a_budget_put_writes_budget_set_to_the_outbox(books, hospital):
    response = await _put(books, hospital, {"year": 2024, "amount": "1000000.00"})
    assert response.status_code == 200, response.text
    assert response.json()["budget"] == "1000000.00"
    [first] = await _announced(books, hospital)
    assert first["type"] == BUDGET_SET and first["producer"] == "prepayment" and first["key"] == hospital
    assert first["payload"] == {"fixmedins_code": hospital, "year": 2024, "amount": "1000000.00", "version": 1}
    Envelope.from_json(json.dumps(first).encode())  # a readable envelope of the contract

    assert (await _put(books, hospital, {"year": 2024, "amount": "1234567.89"})).status_code == 200
    assert (await _put(books, hospital, {"year": 2025, "amount": "0.01"})).status_code == 200
    assert (await _put(books, hospital, {"year": 2024, "amount": "1234567.89"})).status_code == 200  # said again
    assert [e["payload"] for e in await _announced(books, hospital)] == [
        {"fixmedins_code": hospital, "year": 2024, "amount": "1000000.00", "version": 1},
        {"fixmedins_code": hospital, "year": 2024, "amount": "1234567.89", "version": 2},
        {"fixmedins_code": hospital, "year": 2025, "amount": "0.01", "version": 1},
        {"fixmedins_code": hospital, "year": 2024, "amount": "1234567.89", "version": 3},
    ]
    assert len({e["event_id"] for e in await _announced(books, hospital)}) == 4


async def test_a_refused_or_rolled_back_budget_announces_nothing(books, hospital):
    assert (await _put(books, hospital, {"year": 2024, "amount": "1.00"}, headers=OPS)).status_code == 403
    assert (await _put(books, hospital, {"year": 2024, "amount": "0.00"})).status_code == 422
    unknown = "Tunknown" + hospital[1:]
    assert (await _put(books, unknown, {"year": 2024, "amount": "1.00"})).status_code == 422
    with pytest.raises(RuntimeError):
        async with books.app.state.db.begin() as unit:
            await budgets.put_budget(
                unit, hospital, year=2024, amount=Decimal("5.00"), thresholds=books.app.state.budget_thresholds
            )
            raise RuntimeError("the transaction fails after the budget was written")
    assert await _announced(books, hospital) == [] and await _announced(books, unknown) == []
    missing = await books.client.get(f"/v1/budgets/{hospital}", params={"year": 2024}, headers=OPS)
    assert missing.status_code == 404


async def test_concurrent_puts_get_one_version_each_and_the_newest_is_the_stored_amount(books, hospital):
    amounts = [f"{1000 + n}.{n:02d}" for n in range(8)]
    answers = await asyncio.gather(*(_put(books, hospital, {"year": 2024, "amount": a}) for a in amounts))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    payloads = [e["payload"] for e in await _announced(books, hospital)]
    assert sorted(p["version"] for p in payloads) == list(range(1, 9))
    assert sorted(p["amount"] for p in payloads) == sorted(amounts)
    newest = max(payloads, key=lambda p: p["version"])
    stored = (await books.client.get(f"/v1/budgets/{hospital}", params={"year": 2024}, headers=OPS)).json()
    assert stored["budget"] == newest["amount"]  # what a consumer keeping the highest version ends with


async def test_budgets_stored_before_the_event_existed_are_announced_once_by_the_migration(pg):
    url = await create_database(pg, "budgets")
    await migrate(url, schema="prepayment", migrations_dir=MIGRATIONS, revision="0002")
    db = await Database.open(url, schema="prepayment", size=1)
    try:
        async with db.connect() as unit:
            await unit.execute(
                Sql(
                    "insert into budgets (fixmedins_code, year, amount) values "
                    "('H1', 2023, 2500000.00), ('H1', 2024, 3000000.50)"
                )
            )
        await migrate(url, schema="prepayment", migrations_dir=MIGRATIONS)
        async with db.connect() as unit:
            rows = await unit.fetch(Sql("SELECT event_id, topic, key, envelope FROM outbox ORDER BY id"))
            versions = [tuple(row) for row in await unit.fetch(Sql("SELECT year, version FROM budgets"))]
    finally:
        await db.close()
    assert sorted(versions) == [(2023, 1), (2024, 1)]
    assert [(row.topic, row.key) for row in rows] == [(BUDGET_SET, "H1"), (BUDGET_SET, "H1")]
    events_ = [Envelope.from_json(json.dumps(row.envelope).encode()) for row in rows]
    assert [e.event_id for e in events_] == [str(row.event_id) for row in rows]
    assert len({e.event_id for e in events_}) == 2
    assert all(e.type == BUDGET_SET and e.producer == "prepayment" and e.key == "H1" for e in events_)
    assert all(e.occurred_at.endswith("+08:00") for e in events_)
    assert sorted((e.payload["year"], e.payload["amount"], e.payload["version"]) for e in events_) == [
        (2023, "2500000.00", 1),
        (2024, "3000000.50", 1),
    ]
