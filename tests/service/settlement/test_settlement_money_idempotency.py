"""The Idempotency-Key contract (tests/service/idempotency_contract.py) on the settlement routes of issue 13 that move
money: retail purchases, the monthly credit run, closure of an account."""

from __future__ import annotations

import random
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idempotency_contract import IdempotentCall, check_contract  # noqa: E402
from settlement_support import ADMIN, pharmacy  # noqa: E402

from services.eligibility.certno import make_certno  # noqa: E402
from shared.events.envelope import now  # noqa: E402
from shared.http import InternalClient  # noqa: E402

MONTHS = iter(f"2022-{m:02d}" for m in range(1, 13))  # months no other test credits


async def _credit(api, psn_no: str, amount: str = "50.00") -> None:
    done = await api.post(f"/v1/accounts/{psn_no}/credits", json={"amount": amount, "period": "2024-01"}, headers=ADMIN)
    assert done.status_code == 201, done.text


@pytest.fixture
def make(api, fake, db):
    async def purchase(caller: str) -> IdempotentCall:
        person = fake.add()
        await _credit(api, person.psn_no)
        body = {
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno,
            "fixmedins_code": caller,
            "items": [{"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "pric": "7.00", "cnt": "1"}],
        }
        return IdempotentCall(
            client=api,
            path="/v1/pharmacy/purchases",
            headers=pharmacy(caller),
            body=body,
            other_body={
                **body,
                "items": [{"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "pric": "6.00", "cnt": "1"}],
            },
            effects=lambda: db.settlements(person.psn_no),
        )

    async def closure(caller: str) -> IdempotentCall:
        person = fake.add()
        await _credit(api, person.psn_no)
        body = {"reason": "transfer_out", "closed_on": now().date().isoformat()}
        return IdempotentCall(
            client=api,
            path=f"/v1/accounts/{person.psn_no}/closure",
            headers=ADMIN,
            body=body,
            other_body={**body, "reason": "death"},
            effects=lambda: db.scalar(
                "SELECT count(*) FROM settlement.account_movements WHERE psn_no = :p AND kind = 'closure'",
                p=person.psn_no,
            ),
        )

    return {"purchase": purchase, "closure": closure}


@pytest.mark.parametrize("route", ["purchase", "closure"])
async def test_idempotency_contract(make, route):
    if route == "purchase":
        await check_contract(make[route], caller="P1", other_caller="P2")
    else:
        await check_contract(make[route], caller="admin", other_caller=None)


async def test_idempotency_contract_of_the_credit_run(api, eligibility, settlement_app, db):
    """Each call credits a month of its own; a marker employee at eligibility shows how often it took effect."""
    previous = settlement_app.state.eligibility
    settlement_app.state.eligibility = InternalClient(
        "http://eligibility.test", timeout=5.0, transport=httpx.ASGITransport(app=eligibility._transport.app)
    )
    marker = "MI" + uuid.uuid4().hex[:12].upper()
    brdy = date(1970, 1, 1) + timedelta(days=random.randrange(9000))
    created = await eligibility.post(
        "/v1/persons",
        headers=ADMIN,
        json={
            "psn_no": marker,
            "certno": make_certno(region="621002", brdy=brdy, serial=random.randrange(1000)),
            "psn_name": "孙八",
            "insutype": "310",
            "psn_type": "retired",
            "insuplc_admdvs": "621000",
        },
    )
    assert created.status_code == 201, created.text

    async def credit_run(caller: str) -> IdempotentCall:
        period, other = next(MONTHS), next(MONTHS)
        return IdempotentCall(
            client=api,
            path="/v1/accounts/credit-runs",
            headers=ADMIN,
            body={"period": period},
            other_body={"period": other},
            effects=lambda: db.scalar(
                "SELECT count(*) FROM settlement.account_movements "
                "WHERE psn_no = :p AND period = :m AND kind = 'credit'",
                p=marker,
                m=period,
            ),
        )

    try:
        await check_contract(credit_run, caller="admin", other_caller=None)
    finally:
        settlement_app.state.eligibility = previous
