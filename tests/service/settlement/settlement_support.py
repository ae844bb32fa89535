"""Factories and probes for the settlement service tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from shared.db import Sql
from shared.testing import ADMIN_KEY, HIS_KEYS, PHARMACY_KEYS

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "settlements.json").read_text(encoding="utf-8")
)
INSTITUTIONS = {code: {"kind": "hospital", **spec} for code, spec in EXAMPLES["institutions"].items()}
INSTITUTIONS.update(
    {
        "P1": {"kind": "pharmacy", "level": None, "affiliation": "county", "admdvs": "621022"},
        "P2": {"kind": "pharmacy", "level": None, "affiliation": "city", "admdvs": "621000"},
        "HSUS": {"kind": "hospital", "level": 2, "affiliation": "city", "admdvs": "621000"},
    }
)
ADMIN = {"X-Api-Key": ADMIN_KEY}
_serial = itertools.count(1)


def his(code: str = "H1") -> dict:
    return {"X-Api-Key": HIS_KEYS[code]}


def pharmacy(code: str = "P1") -> dict:
    return {"X-Api-Key": PHARMACY_KEYS[code]}


def item(codg: str, pric: str, cnt: str = "1", item_class: str | None = "A", **extra) -> dict:
    line = {
        "feedetl_sn": f"F{next(_serial)}",
        "med_list_codg": codg,
        "med_list_name": codg,
        "pric": pric,
        "cnt": cnt,
        "fee_ocur_time": "2024-01-01T10:00:00+08:00",
        **extra,
    }
    if item_class is not None:
        line["item_class"] = item_class
    return line


def visit_body(person, *, code: str = "H1", med_type: str = "11", day: str = "2024-03-01", **extra) -> dict:
    return {
        "psn_no": person.psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
        "fixmedins_code": code,
        "med_type": med_type,
        "begntime": f"{day}T09:00:00+08:00",
        "diagnoses": [],
        **extra,
    }


async def open_visit(api, person, *, code: str = "H1", items: list[dict] | None = None, **kwargs) -> str:
    """A visit with its fee lines uploaded; returns mdtrt_id."""
    created = await api.post("/v1/visits", json=visit_body(person, code=code, **kwargs), headers=his(code))
    assert created.status_code == 201, created.text
    mdtrt_id = created.json()["mdtrt_id"]
    if items:
        uploaded = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": items}, headers=his(code))
        assert uploaded.status_code in (200, 201), uploaded.text
    return mdtrt_id


async def settle(api, mdtrt_id: str, *, code: str = "H1", body: dict | None = None, key: str | None = None):
    headers = his(code) | ({"Idempotency-Key": key} if key else {})
    return await api.post(f"/v1/visits/{mdtrt_id}/settle", json=body or {}, headers=headers)


def purchase_body(person, items: list[dict], *, code: str = "P1", payer: str | None = None) -> dict:
    """A retail purchase (定点药店购药) by the person's credential; `payer`: a family member's account pays."""
    body = {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "fixmedins_code": code, "items": items}
    if payer is not None:
        body["acct_payer_psn_no"] = payer
    return body


async def buy(api, person, items, *, code: str = "P1", payer: str | None = None, key: str | None = None):
    headers = pharmacy(code) | ({"Idempotency-Key": key} if key else {})
    return await api.post(
        "/v1/pharmacy/purchases", json=purchase_body(person, items, code=code, payer=payer), headers=headers
    )


async def credit(api, psn_no: str, amount: str, period: str = "2024-01") -> None:
    """The month's credit to the person's account (201)."""
    done = await api.post(f"/v1/accounts/{psn_no}/credits", json={"amount": amount, "period": period}, headers=ADMIN)
    assert done.status_code == 201, done.text


def as_decided(answer: dict) -> dict:
    """A breakdown without what only a written settlement has (its ids, time and status): what a presettle answers
    must equal what the settlement that follows it answers."""
    return {k: v for k, v in answer.items() if k not in ("setl_id", "mdtrt_id", "setl_time", "setl_date", "status")}


class Counter:
    """Row counts and accumulators straight from the settlement schema (to prove nothing was written)."""

    def __init__(self, db) -> None:
        self.db = db

    async def scalar(self, sql: str, **params):
        async with self.db.connect() as unit:
            return await unit.fetchval(Sql(sql), **params)

    async def settlements(self, psn_no: str, status: str | None = None) -> int:
        sql = "SELECT count(*) FROM settlement.settlements WHERE psn_no = :p"
        if status:
            sql += " AND status = :s"
        return await self.scalar(sql, p=psn_no, s=status)

    async def outbox(self, psn_no: str) -> int:
        return await self.scalar("SELECT count(*) FROM settlement.outbox WHERE key = :p", p=psn_no)

    async def accumulators(self, psn_no: str, year: int = 2024) -> dict:
        return (
            await self.scalar(
                "SELECT amounts FROM settlement.accumulators WHERE psn_no = :p AND year = :y", p=psn_no, y=year
            )
            or {}
        )

    async def written(self, psn_no: str) -> tuple:
        """Everything a settlement writes for a person: settlements, outbox rows, accumulators, movements."""
        return (
            await self.settlements(psn_no),
            await self.outbox(psn_no),
            await self.accumulators(psn_no),
            await self.scalar(
                "SELECT count(*) FROM settlement.account_movements WHERE psn_no = :p OR for_psn_no = :p", p=psn_no
            ),
        )
