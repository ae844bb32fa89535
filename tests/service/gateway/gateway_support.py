"""The world the gateway tests play in: institutions, persons, catalogue entries, NHSA credentials, and the same
visit over the REST API (to compare amounts to the fen)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from his_client import His, Item, Patient

from shared.testing import ADMIN_KEY, HIS_KEYS, PHARMACY_KEYS, fetch

ADMIN = {"X-Api-Key": ADMIN_KEY}
# The terms the settlement tests register these codes on (tests/fixtures/settlements.json): the same here.
INSTITUTIONS = {
    "H1": {"kind": "hospital", "level": 3, "affiliation": "city", "admdvs": "621000"},
    "H2": {"kind": "hospital", "level": 2, "affiliation": "county", "admdvs": "621022"},
    "P1": {"kind": "pharmacy", "level": None, "affiliation": "county", "admdvs": "621022"},
}
NHSA = {
    "ak-his-h1-0001": {"secret": "sk-h1-secret-000000000001", "fixmedins_code": "H1", "infcode_type": "number"},
    "ak-his-h2-0002": {"secret": "sk-h2-secret-000000000002", "fixmedins_code": "H2", "infcode_type": "string"},
    "ak-pharmacy-p1": {"secret": "sk-p1-secret-000000000003", "fixmedins_code": "P1", "infcode_type": "number"},
}
NHSA_CLIENTS = json.dumps(NHSA)
ACCESS = {spec["fixmedins_code"]: (key, spec["secret"]) for key, spec in NHSA.items()}
CATALOGUE = {
    "XGWA001": {"med_list_name": "阿莫西林胶囊", "item_class": "A"},
    "XGWB001": {"med_list_name": "头孢克洛缓释片", "item_class": "B", "preselfpay_prop": "0.20", "price_cap": "60.00"},
    "ZGWB002": {"med_list_name": "连花清瘟胶囊", "item_class": "B"},
    "XGWC001": {"med_list_name": "进口营养剂", "item_class": "C"},
    "XGWE001": {"med_list_name": "保健品", "item_class": "C", "account_excluded": True},
}


def his(http: httpx.AsyncClient, code: str = "H1", *, scheme: str = "api") -> His:
    key, secret = ACCESS[code]
    return His(http, access_key=key, secret=secret, fixmedins_code=code, scheme=scheme)


def fresh_certno(region: str = "621022") -> str:
    brdy = date(1950, 1, 1) + timedelta(days=random.randrange(365 * 50))
    body = f"{region}{brdy:%Y%m%d}{random.randrange(1, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


async def register_institutions(eligibility: httpx.AsyncClient, settlement_app: Any) -> None:
    for code, spec in INSTITUTIONS.items():
        response = await eligibility.post(
            "/v1/institutions", headers=ADMIN, json={"fixmedins_code": code, "fixmedins_name": f"测试{code}", **spec}
        )
        assert response.status_code in (200, 201, 409), response.text
    for _ in range(400):
        rows = {r[0] for r in await fetch(settlement_app, "SELECT fixmedins_code FROM settlement.institutions")}
        if set(INSTITUTIONS) <= rows:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("institutions never reached the settlement service")


async def stock_catalogue(settlement: httpx.AsyncClient) -> None:
    for code, entry in CATALOGUE.items():
        response = await settlement.put(f"/v1/catalog/{code}", headers=ADMIN, json=entry)
        assert response.status_code in (200, 201), response.text


async def new_patient(
    eligibility: httpx.AsyncClient, *, insutype: str = "310", psn_type: str = "in_service", name: str = "张三"
) -> Patient:
    body: dict[str, Any] = {
        "certno": fresh_certno(),
        "psn_name": name,
        "insutype": insutype,
        "insuplc_admdvs": "621000",
    }
    if insutype == "310":
        body["psn_type"] = psn_type
    created = await eligibility.post("/v1/persons", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    found = created.json()
    national = {"in_service": "11", "retired": "12"}.get(psn_type, "1701") if insutype == "310" else "1701"
    return Patient(psn_no=found["psn_no"], certno=found["certno"], psn_name=name, insutype=insutype, psn_type=national)


async def twins(eligibility: httpx.AsyncClient, **kwargs: Any) -> tuple[Patient, Patient]:
    """Two persons alike: one settles through the gateway, the other over REST."""
    return await new_patient(eligibility, **kwargs), await new_patient(eligibility, **kwargs)


async def credit(settlement: httpx.AsyncClient, psn_no: str, amount: str) -> None:
    response = await settlement.post(
        f"/v1/accounts/{psn_no}/credits", headers=ADMIN, json={"amount": amount, "period": f"GW-{uuid.uuid4().hex[:8]}"}
    )
    assert response.status_code in (200, 201), response.text


def rest_items(items: list[Item], *, when: str) -> list[dict]:
    return [
        {
            "feedetl_sn": f"R{item.sn or uuid.uuid4().hex[:8]}",
            "med_list_codg": item.codg,
            "med_list_name": "",
            "pric": f"{Decimal(item.pric):.2f}",
            "cnt": item.cnt,
            "det_item_fee_sumamt": str(item.total),
            "fee_ocur_time": when,
        }
        for item in items
    ]


async def rest_visit(
    settlement: httpx.AsyncClient,
    p: Patient,
    items: list[Item],
    *,
    code: str = "H1",
    med_type: str = "11",
    begntime: str,
    endtime: str | None = None,
    diagnoses: list[str] | None = None,
    acct: bool = False,
    chronic: str | None = None,
) -> dict:
    """The same visit over the REST API (CONTRACT.md): visit, lines, [discharge], settle → the breakdown."""
    key = {"X-Api-Key": HIS_KEYS[code]}
    created = await settlement.post(
        "/v1/visits",
        headers=key,
        json={
            "psn_no": p.psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": p.certno,
            "fixmedins_code": code,
            "med_type": med_type,
            "begntime": begntime,
            "diagnoses": diagnoses or [],
            "chronic_disease": chronic,
        },
    )
    assert created.status_code == 201, created.text
    mdtrt_id = created.json()["mdtrt_id"]
    fees = await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees", headers=key, json={"items": rest_items(items, when=begntime)}
    )
    assert fees.status_code == 201, fees.text
    if endtime:
        left = await settlement.post(f"/v1/visits/{mdtrt_id}/discharge", headers=key, json={"endtime": endtime})
        assert left.status_code == 200, left.text
    done = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=key, json={"acct_used_flag": acct})
    assert done.status_code == 201, done.text
    return done.json()


def pharmacy_key(code: str = "P1") -> dict[str, str]:
    return {"X-Api-Key": PHARMACY_KEYS[code]}
