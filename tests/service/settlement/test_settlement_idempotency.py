"""The Idempotency-Key contract (tests/service/idempotency_contract.py) on every settlement route that takes it."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idempotency_contract import IdempotentCall, check_contract  # noqa: E402
from settlement_support import his, item, open_visit, pharmacy, visit_body  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
HIS = {"H1": "H2", "H2": "H1"}


def _caller_headers(caller: str) -> dict[str, str]:
    return pharmacy(caller) if caller.startswith("P") else his(caller)


@pytest.fixture
def make(api, fake, db):
    """route name → (caller → a fresh IdempotentCall)."""

    async def visit(caller: str) -> IdempotentCall:
        person = fake.add()
        return IdempotentCall(
            client=api,
            path="/v1/visits",
            headers=his(caller),
            body=visit_body(person, code=caller),
            other_body=visit_body(person, code=caller, day="2024-03-02"),
            effects=lambda: db.scalar("SELECT count(*) FROM settlement.visits WHERE psn_no = :p", p=person.psn_no),
        )

    async def settle(caller: str) -> IdempotentCall:
        person = fake.add()
        mdtrt_id = await open_visit(api, person, code=caller, items=[item("TA1", "100.00")])
        return IdempotentCall(
            client=api,
            path=f"/v1/visits/{mdtrt_id}/settle",
            headers=his(caller),
            body={},
            other_body={"acct_used_flag": True},
            effects=lambda: db.settlements(person.psn_no),
        )

    async def reverse(caller: str) -> IdempotentCall:
        person = fake.add()
        mdtrt_id = await open_visit(api, person, code=caller, items=[item("TA1", "100.00")])
        settled = await api.post(f"/v1/visits/{mdtrt_id}/settle", json={}, headers=his(caller))
        assert settled.status_code == 201, settled.text
        setl_id = settled.json()["setl_id"]
        other = await open_visit(api, person, code=caller, items=[item("TA1", "50.00")])
        other_id = (await api.post(f"/v1/visits/{other}/settle", json={}, headers=his(caller))).json()["setl_id"]
        return IdempotentCall(
            client=api,
            path=f"/v1/settlements/{setl_id}/reverse",
            headers=his(caller),
            body={},
            other_path=f"/v1/settlements/{other_id}/reverse",
            effects=lambda: db.settlements(person.psn_no, "reversed"),
        )

    def rx(person, caller: str, rx_no: str) -> dict:
        return {
            "rx_no": rx_no,
            "psn_no": person.psn_no,
            "fixmedins_code": caller,
            "issued_at": datetime.now(SH).isoformat(),
            "items": [
                {"med_list_codg": "TA-DRUG", "med_list_name": "药", "item_class": "A", "cnt": "2", "days_supply": 14}
            ],
        }

    async def prescription(caller: str) -> IdempotentCall:
        person = fake.add()
        rx_no = "RX" + uuid.uuid4().hex[:12].upper()
        return IdempotentCall(
            client=api,
            path="/v1/prescriptions",
            headers=his(caller),
            body=rx(person, caller, rx_no),
            other_body={**rx(person, caller, rx_no), "valid_days": 2},
            effects=lambda: db.scalar("SELECT count(*) FROM settlement.prescriptions WHERE rx_no = :r", r=rx_no),
        )

    async def dispense(caller: str) -> IdempotentCall:
        person = fake.add()
        rx_no = "RX" + uuid.uuid4().hex[:12].upper()
        issued = await api.post("/v1/prescriptions", json=rx(person, "H1", rx_no), headers=his("H1"))
        assert issued.status_code == 201, issued.text
        body = {
            "rx_no": rx_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno,
            "fixmedins_code": caller,
            "items": [item("TA-DRUG", "20.00", "2", None)],
        }
        return IdempotentCall(
            client=api,
            path="/v1/pharmacy/settlements",
            headers=pharmacy(caller),
            body=body,
            other_body={**body, "items": [item("TA-DRUG", "20.00", "1", None)]},
            effects=lambda: db.settlements(person.psn_no),
        )

    async def claim(caller: str) -> IdempotentCall:
        person = fake.add()
        visit = {
            "psn_no": person.psn_no,
            "fixmedins_code": caller,
            "med_type": "11",
            "begntime": "2024-03-01T09:00:00+08:00",
            "diagnoses": [],
        }
        return IdempotentCall(
            client=api,
            path="/v1/claims",
            headers=his(caller),
            body={"visit": visit, "items": [item("TA1", "10.00")]},
            other_body={"visit": visit, "items": [item("TA1", "11.00")]},
            effects=lambda: db.scalar("SELECT count(*) FROM settlement.claims WHERE psn_no = :p", p=person.psn_no),
        )

    return {
        "visit": visit,
        "settle": settle,
        "reverse": reverse,
        "prescription": prescription,
        "dispense": dispense,
        "claim": claim,
    }


@pytest.mark.parametrize("route", ["visit", "settle", "reverse", "prescription", "dispense", "claim"])
async def test_idempotency_contract(make, route):
    callers = ("P1", "P2") if route == "dispense" else ("H1", "H2")
    await check_contract(make[route], caller=callers[0], other_caller=callers[1])
