"""Prepayments over HTTP: disbursement and its event, schedules, Idempotency-Key, roles, problem codes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import asyncpg
import pytest
from prepayment_http import ADMIN, OPS, refused

from services.prepayment.store import business_today
from shared.db import Sql
from shared.testing import HIS_KEYS, OPS_KEY, fetch, fetchval


async def _outbox_payload(books, prepayment_id: str) -> dict:
    rows = await fetch(
        books.app,
        "SELECT key, envelope FROM outbox WHERE envelope -> 'payload' ->> 'prepayment_id' = :id",
        id=prepayment_id,
    )
    assert len(rows) == 1, rows
    assert rows[0].envelope["type"] == "prepayment-disbursed"
    assert rows[0].key == rows[0].envelope["payload"]["fixmedins_code"]
    return rows[0].envelope["payload"]


async def _count(books, table: str, *, fixmedins_code: str) -> int:
    return await fetchval(books.app, f"SELECT count(*) FROM {table} WHERE fixmedins_code = :code", code=fixmedins_code)


async def test_a_prepayment_is_disbursed_posted_and_announced(books, code):
    await books.institution(code, admdvs="650103")
    response = await books.prepay(code, "1000000.00", kind="covid_special", on="2024-01-05")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body | {"prepayment_id": None} == {
        "prepayment_id": None,
        "fixmedins_code": code,
        "kind": "covid_special",
        "amount": "1000000.00",
        "status": "disbursed",
        "scheduled_on": "2024-01-05",
        "disbursed_on": "2024-01-05",
        "plan_id": None,
    }
    assert await _outbox_payload(books, body["prepayment_id"]) == {
        "prepayment_id": body["prepayment_id"],
        "fixmedins_code": code,
        "kind": "covid_special",
        "amount": "1000000.00",
        "disbursed_on": "2024-01-05",
        "scheduled_on": "2024-01-05",
        "admdvs": "650103",
    }
    assert await books.position(code) == {
        "fixmedins_code": code,
        "prepaid": "1000000.00",
        "fund_payable": "0.00",
        "acct_payable": "0.00",
        "subsidy_receivable": "0.00",
        "net": "-1000000.00",
    }
    assert await books.trial(code) == {f"institution:{code}:prepaid": 1000000, "bank:fund": -1000000}
    got = await books.client.get(f"/v1/prepayments/{body['prepayment_id']}", headers=OPS)
    assert got.json() == body


async def test_idempotency_key_returns_the_first_answer_and_refuses_another_body(books, hospital):
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await books.prepay(hospital, "500.00", headers=ADMIN | key)
    again = await books.prepay(hospital, "500.00", headers=ADMIN | key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await books.prepay(hospital, "501.00", headers=ADMIN | key)
    refused(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert (await books.position(hospital))["prepaid"] == "500.00"
    assert await _count(books, "prepayments", fixmedins_code=hospital) == 1
    without = await books.prepay(hospital, "500.00")
    assert without.json()["prepayment_id"] != first.json()["prepayment_id"]


async def test_an_unknown_or_suspended_institution_is_refused_and_nothing_is_written(books, code):
    refused(await books.prepay(code, "10.00"), 422, "UNKNOWN_INSTITUTION")
    await books.institution(code, suspended=True)
    refused(await books.prepay(code, "10.00"), 422, "INSTITUTION_SUSPENDED")
    assert await _count(books, "prepayments", fixmedins_code=code) == 0
    assert await _count(books, "journal_entries", fixmedins_code=code) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "0.00"},
        {"amount": "-5.00"},
        {"amount": 12.5},
        {"amount": "1.234"},
        {"amount": "abc"},
        {"kind": "weekly"},
        {"disbursed_on": "2024-02-30"},
        {"disbursed_on": 20240105},
        {"disbursed_on": "1999-12-31"},
        {"fixmedins_code": "bad code"},
        {"extra": 1},
        {"amount": None},
    ],
)
async def test_bad_prepayment_bodies_are_422(books, hospital, change):
    body = {"fixmedins_code": hospital, "kind": "top_up", "amount": "10.00", "disbursed_on": "2024-01-05", **change}
    refused(await books.client.post("/v1/prepayments", json=body, headers=ADMIN), 422, "VALIDATION_FAILED")
    assert await _count(books, "prepayments", fixmedins_code=hospital) == 0


async def test_malformed_json_is_400(books):
    response = await books.client.post(
        "/v1/prepayments", content=b'{"amount": ', headers=ADMIN | {"Content-Type": "application/json"}
    )
    refused(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/prepayments", {}),
        ("POST", "/v1/clearings", {}),
        ("PUT", "/v1/budgets/H1", {}),
        ("GET", "/v1/ledger/trial-balance", None),
        ("GET", "/v1/subsidies?payer=city", None),
        ("GET", "/v1/institutions/H1/position", None),
        ("GET", "/v1/budgets/H1?year=2024", None),
    ],
)
async def test_no_key_is_401(books, method, path, body):
    refused(await books.client.request(method, path, json=body), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("key", [OPS_KEY, HIS_KEYS["H1"]])
@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/prepayments"),
        ("POST", "/v1/prepayments/schedule"),
        ("POST", "/v1/clearings"),
        ("PUT", "/v1/budgets/H1"),
    ],
)
async def test_writes_need_an_admin_key(books, key, method, path):
    refused(await books.client.request(method, path, json={}, headers={"X-Api-Key": key}), 403, "FORBIDDEN")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/ledger/trial-balance",
        "/v1/subsidies?payer=city",
        "/v1/budgets/H1?year=2024",
        "/v1/prepayments",
        "/v1/clearings",
    ],
)
async def test_institution_keys_may_not_read_the_books(books, path):
    refused(await books.client.get(path, headers={"X-Api-Key": HIS_KEYS["H1"]}), 403, "FORBIDDEN")


async def test_an_institution_key_reads_its_own_position_only(books):
    await books.institution("H4")
    own = await books.client.get("/v1/institutions/H4/position", headers={"X-Api-Key": HIS_KEYS["H4"]})
    assert own.status_code == 200 and set(own.json()) >= {"prepaid", "fund_payable", "subsidy_receivable", "net"}
    other = await books.client.get("/v1/institutions/H4/position", headers={"X-Api-Key": HIS_KEYS["H1"]})
    refused(other, 403, "INSTITUTION_FORBIDDEN")


async def test_unknown_position_and_bad_queries(books, code):
    refused(await books.client.get(f"/v1/institutions/{code}/position", headers=OPS), 404, "INSTITUTION_NOT_FOUND")
    refused(await books.client.get("/v1/subsidies?payer=town", headers=OPS), 422, "VALIDATION_FAILED")
    refused(await books.client.get("/v1/subsidies", headers=OPS), 422, "VALIDATION_FAILED")
    refused(await books.client.get("/v1/prepayments/not-an-id!", headers=OPS), 422, "VALIDATION_FAILED")
    refused(await books.client.get(f"/v1/prepayments/{uuid.uuid4()}", headers=OPS), 404, "PREPAYMENT_NOT_FOUND")


async def test_a_monthly_plan_is_disbursed_when_due_or_advanced(books, hospital):
    plan = await books.client.post(
        "/v1/prepayments/schedule",
        headers=ADMIN,
        json={
            "fixmedins_code": hospital,
            "amount": "30000.00",
            "first_month": "2090-11",
            "months": 3,
            "day_of_month": 8,
        },
    )
    assert plan.status_code == 201, plan.text
    items = plan.json()["prepayments"]
    assert [(p["scheduled_on"], p["status"], p["kind"]) for p in items] == [
        ("2090-11-08", "scheduled", "monthly"),
        ("2090-12-08", "scheduled", "monthly"),
        ("2091-01-08", "scheduled", "monthly"),
    ]
    assert (await books.position(hospital))["prepaid"] == "0.00"

    # the December payment moved a week earlier
    moved = await books.client.post(
        f"/v1/prepayments/{items[1]['prepayment_id']}/advance", headers=ADMIN, json={"disbursed_on": "2090-12-01"}
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.json()["disbursed_on"], moved.json()["scheduled_on"]) == (
        "disbursed",
        "2090-12-01",
        "2090-12-08",
    )
    payload = await _outbox_payload(books, items[1]["prepayment_id"])
    assert (payload["kind"], payload["disbursed_on"], payload["scheduled_on"]) == (
        "monthly",
        "2090-12-01",
        "2090-12-08",
    )
    again = await books.client.post(
        f"/v1/prepayments/{items[1]['prepayment_id']}/advance", headers=ADMIN, json={"disbursed_on": "2090-11-30"}
    )
    refused(again, 409, "PREPAYMENT_ALREADY_DISBURSED")
    later = await books.client.post(
        f"/v1/prepayments/{items[2]['prepayment_id']}/advance", headers=ADMIN, json={"disbursed_on": "2091-01-08"}
    )
    refused(later, 422, "NOT_EARLIER")
    refused(
        await books.client.post(
            f"/v1/prepayments/{uuid.uuid4()}/advance", headers=ADMIN, json={"disbursed_on": "2091-01-01"}
        ),
        404,
        "PREPAYMENT_NOT_FOUND",
    )

    due = await books.client.post("/v1/prepayments/run-due", headers=ADMIN, json={"on": "2090-11-30"})
    assert due.status_code == 200, due.text
    mine = [p for p in due.json()["disbursed"] if p["fixmedins_code"] == hospital]
    assert [(p["prepayment_id"], p["disbursed_on"]) for p in mine] == [(items[0]["prepayment_id"], "2090-11-08")]
    assert (await books.position(hospital))["prepaid"] == "60000.00"
    listed = await books.client.get(
        "/v1/prepayments", params={"fixmedins_code": hospital, "status": "scheduled"}, headers=OPS
    )
    assert [p["prepayment_id"] for p in listed.json()] == [items[2]["prepayment_id"]]


@pytest.mark.parametrize(
    "change", [{"months": 0}, {"months": 25}, {"first_month": "2090-13"}, {"day_of_month": 31}, {"amount": "0.00"}]
)
async def test_bad_plans_are_422(books, hospital, change):
    body = {"fixmedins_code": hospital, "amount": "1.00", "first_month": "2090-01", "months": 2, **change}
    refused(await books.client.post("/v1/prepayments/schedule", json=body, headers=ADMIN), 422, "VALIDATION_FAILED")


ADD_ENTRY = Sql("""
INSERT INTO journal_entries (ref, kind, business_date, fixmedins_code) VALUES (:ref, 'test', :day, :code)
RETURNING entry_id""")
ADD_LINE = Sql("""
INSERT INTO journal_lines (entry_id, account, debit, credit) VALUES (:entry_id, :account, :debit, :credit)""")


async def test_the_database_refuses_an_unbalanced_entry_and_any_change_to_a_line(books, hospital):
    db = books.app.state.db
    with pytest.raises(asyncpg.PostgresError, match="does not balance"):
        async with db.begin() as unit:
            entry_id = await unit.fetchval(ADD_ENTRY, ref=f"bad:{uuid.uuid4()}", day=date(2024, 1, 1), code=hospital)
            await unit.execute(ADD_LINE, entry_id=entry_id, account="x", debit=1, credit=0)
            await unit.execute(ADD_LINE, entry_id=entry_id, account="y", debit=0, credit=2)
    assert (await books.prepay(hospital, "10.00")).status_code == 201
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        async with db.begin() as unit:
            await unit.execute(
                Sql("UPDATE journal_lines SET debit = 11 WHERE account = :account"),
                account=f"institution:{hospital}:prepaid",
            )
    with pytest.raises(asyncpg.PostgresError, match="one_positive_side"):
        async with db.begin() as unit:
            entry_id = await unit.fetchval(ADD_ENTRY, ref=f"bad:{uuid.uuid4()}", day=date(2024, 1, 1), code=None)
            await unit.execute(ADD_LINE, entry_id=entry_id, account="x", debit=-1, credit=0)
    assert (await books.position(hospital))["prepaid"] == "10.00"


async def test_the_openapi_document_describes_the_routes(books):
    response = await books.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/v1/prepayments",
        "/v1/prepayments/schedule",
        "/v1/prepayments/{prepayment_id}/advance",
        "/v1/institutions/{code}/position",
        "/v1/ledger/trial-balance",
        "/v1/subsidies",
        "/v1/clearings",
        "/v1/budgets/{code}",
    ):
        assert path in paths, path


async def test_run_due_without_a_body_uses_today(books):
    response = await books.client.post("/v1/prepayments/run-due", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["on"] == business_today().isoformat()


async def test_concurrent_requests_with_one_idempotency_key_disburse_once(books, hospital):
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    answers = await asyncio.gather(*(books.prepay(hospital, "77.00", headers=ADMIN | key) for _ in range(5)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["prepayment_id"] for a in answers}) == 1
    assert (await books.position(hospital))["prepaid"] == "77.00"
