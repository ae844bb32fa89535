"""The Idempotency-Key contract (tests/service/idempotency_contract.py) on the prepayment routes that move money."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import CODE_PREFIX  # noqa: E402
from idempotency_contract import IdempotentCall, check_contract  # noqa: E402

from shared.testing import ADMIN_KEY, fetchval  # noqa: E402

ADMINS = {"admin": {"X-Api-Key": ADMIN_KEY}}


@pytest.fixture
def make(books):
    """route name → (caller → a fresh IdempotentCall on a fresh institution)."""

    async def institution() -> str:
        code = CODE_PREFIX + uuid.uuid4().hex[:10]
        await books.institution(code)
        return code

    def count(table: str, code: str):
        return lambda: fetchval(books.app, f"SELECT count(*) FROM {table} WHERE fixmedins_code = :c", c=code)

    async def prepayment(caller: str) -> IdempotentCall:
        code = await institution()
        body = {"fixmedins_code": code, "kind": "top_up", "amount": "100.00", "disbursed_on": "2024-01-05"}
        return IdempotentCall(
            client=books.client,
            path="/v1/prepayments",
            headers=ADMINS[caller],
            body=body,
            other_body={**body, "amount": "101.00"},
            effects=count("prepayments", code),
        )

    async def schedule(caller: str) -> IdempotentCall:
        code = await institution()
        body = {"fixmedins_code": code, "amount": "50.00", "first_month": "2024-02", "months": 1}
        return IdempotentCall(
            client=books.client,
            path="/v1/prepayments/schedule",
            headers=ADMINS[caller],
            body=body,
            other_body={**body, "amount": "51.00"},
            effects=count("prepayments", code),
        )

    async def clearing(caller: str) -> IdempotentCall:
        code = await institution()
        body = {"period_start": "2024-01-01", "period_end": "2024-01-31", "fixmedins_code": code}
        return IdempotentCall(
            client=books.client,
            path="/v1/clearings",
            headers=ADMINS[caller],
            body=body,
            other_body={**body, "period_end": "2024-01-30"},
            effects=count("clearings", code),
        )

    return {"prepayment": prepayment, "schedule": schedule, "clearing": clearing}


@pytest.mark.parametrize("route", ["prepayment", "schedule", "clearing"])
async def test_idempotency_contract(make, route):
    await check_contract(make[route], caller="admin", other_caller=None)  # only the bureau moves prepaid money
