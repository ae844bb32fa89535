"""The Idempotency-Key contract (tests/service/idempotency_contract.py) on POST /v1/subsidy-payments (issue 13)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import CODE_PREFIX  # noqa: E402
from idempotency_contract import IdempotentCall, check_contract  # noqa: E402
from prepayment_support import subsidy_payload  # noqa: E402

from shared.testing import ADMIN_KEY, fetchval  # noqa: E402


async def test_idempotency_contract_of_subsidy_payments(books):
    async def payment(caller: str) -> IdempotentCall:
        code = CODE_PREFIX + uuid.uuid4().hex[:10]
        await books.institution(code)
        await books.deliver(
            "subsidy-due",
            subsidy_payload(
                f"S-{uuid.uuid4().hex}",
                code,
                case_status="confirmed",
                amount="500.00",
                advance_payer="city",
                shares={"central": "300.00", "provincial": "200.00"},
            ),
        )
        body = {
            "payer": "city",
            "to_fixmedins_code": code,
            "amount": "100.00",
            "paid_on": "2024-03-10",
            "ref": f"R-{uuid.uuid4().hex}",
        }
        return IdempotentCall(
            client=books.client,
            path="/v1/subsidy-payments",
            headers={"X-Api-Key": ADMIN_KEY},
            body=body,
            other_body={**body, "amount": "101.00"},
            effects=lambda: fetchval(
                books.app, "SELECT count(*) FROM prepayment.subsidy_payments WHERE to_fixmedins_code = :c", c=code
            ),
        )

    await check_contract(payment, caller="admin", other_caller=None)
