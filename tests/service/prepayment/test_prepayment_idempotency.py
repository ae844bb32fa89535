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
# route → (path, its body for an institution, what another request with the same key changes, the table it writes)
ROUTES = {
    "prepayment": (
        "/v1/prepayments",
        lambda code: {"fixmedins_code": code, "kind": "top_up", "amount": "100.00", "disbursed_on": "2024-01-05"},
        {"amount": "101.00"},
        "prepayments",
    ),
    "schedule": (
        "/v1/prepayments/schedule",
        lambda code: {"fixmedins_code": code, "amount": "50.00", "first_month": "2024-02", "months": 1},
        {"amount": "51.00"},
        "prepayments",
    ),
    "clearing": (
        "/v1/clearings",
        lambda code: {"period_start": "2024-01-01", "period_end": "2024-01-31", "fixmedins_code": code},
        {"period_end": "2024-01-30"},
        "clearings",
    ),
}


@pytest.fixture
def make(books):
    """route name → (caller → a fresh IdempotentCall on a fresh institution)."""

    def maker(route: str):
        path, body_for, other, table = ROUTES[route]

        async def call(caller: str) -> IdempotentCall:
            code = CODE_PREFIX + uuid.uuid4().hex[:10]
            await books.institution(code)
            body = body_for(code)
            return IdempotentCall(
                client=books.client,
                path=path,
                headers=ADMINS[caller],
                body=body,
                other_body={**body, **other},
                effects=lambda: fetchval(books.app, f"SELECT count(*) FROM {table} WHERE fixmedins_code = :c", c=code),
            )

        return call

    return {route: maker(route) for route in ROUTES}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_idempotency_contract(make, route):
    await check_contract(make[route], caller="admin", other_caller=None)  # only the bureau moves prepaid money
