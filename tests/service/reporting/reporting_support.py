"""Factories for the reporting tests: envelopes of docs/events.md, fed straight to the consumer."""

from __future__ import annotations

import dataclasses
import io
import random
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI

from shared.events.envelope import BUSINESS_TZ, Envelope, new_event
from shared.events.topics import COVID_CASE_REGISTERED, PREPAYMENT_DISBURSED, SETTLED, SETTLEMENT_REVERSED, SUBSIDY_DUE
from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY, fetch

ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}
HIS = {"X-Api-Key": HIS_KEYS["H1"]}
_used_days: set[date] = set()
FIRST_DAY = date(1992, 1, 1)  # the first year after the last summer time of Asia/Shanghai (1991-09-14)
_used_areas: set[str] = set()
TEST_AREAS = "64"  # pooling areas outside the reference province: no fixture or demo data lives there


def fresh_day(span: int = 1) -> date:
    """A business day (and the `span` - 1 after it) that no other test uses: the reports of it are ours alone.

    From 1992 on: Asia/Shanghai kept summer time (UTC+09:00) in 1986-1991, and a day of it printed its
    17:00 cutoff as +09:00 where the tests expect the business offset +08:00.
    """
    while True:
        day = FIRST_DAY + timedelta(days=random.randrange(0, 9000))
        days = {day + timedelta(days=i) for i in range(-1, span + 1)}
        if not days & _used_days:
            _used_days.update(days)
            return day


async def fresh_area(client) -> str:
    """A pooling area that no institution or prepayment in the database has, and no other test of this run got.

    The first free code in order (640000, 640001, …), not a random one: reports per area (附件4) then hold
    this test's data only, whatever other tests, or earlier runs on the same database, left behind.
    """
    pattern = TEST_AREAS + "%"
    rows = await fetch(
        client._transport.app,
        "SELECT admdvs FROM institutions WHERE admdvs LIKE :pattern "
        "UNION SELECT admdvs FROM prepayments WHERE admdvs LIKE :pattern",
        pattern=pattern,
    )
    taken = {row.admdvs for row in rows}
    area = next(
        code
        for code in (f"{TEST_AREAS}{n:04d}" for n in range(10_000))
        if code not in taken and code not in _used_areas
    )
    _used_areas.add(area)
    return area


def uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BUSINESS_TZ)


def settled(
    *,
    day: date,
    covid: str | None = "confirmed",
    origin: str = "local",
    insutype: str = "310",
    medfee: str = "1000.00",
    hifp: str = "600.00",
    hifmi: str = "100.00",
    maf: str = "50.00",
    tilt: str = "0.00",
    acct: str = "0.00",
    hour: int = 10,
    psn_no: str | None = None,
    fixmedins_code: str = "H1",
    med_type: str = "21",
    two_disease: str | None = None,
    aid_category: str | None = None,
    affiliation: str = "city",
    inscp: str | None = None,
    ownpay: str = "0.00",
) -> dict:
    """A consistent `settled` payload: COVID settlements have the whole rest paid by finance."""
    medfee_d = Decimal(medfee)
    funds = Decimal(hifp) + Decimal(hifmi) + Decimal(maf) + Decimal(tilt)
    rest = medfee_d - funds
    fin = rest if covid else Decimal("0.00")
    cash = Decimal("0.00") if covid else rest - Decimal(acct)
    setl_time = at(day, hour)
    return {
        "setl_id": uid("S"),
        "mdtrt_id": uid("M"),
        "psn_no": psn_no or uid("P"),
        "insutype": insutype,
        "psn_type": "in_service" if insutype == "310" else None,
        "insuplc_admdvs": "621000",
        "origin": origin,
        "fixmedins_code": fixmedins_code,
        "fixmedins_kind": "hospital",
        "fixmedins_level": 3,
        "fixmedins_affiliation": affiliation,
        "fixmedins_admdvs": "621000",
        "med_type": med_type,
        "chronic_disease": two_disease,
        "two_disease": two_disease,
        "aid_category": aid_category,
        "setl_time": setl_time.isoformat(),
        "setl_date": day.isoformat(),
        "begndate": day.isoformat(),
        "enddate": day.isoformat(),
        "covid_status": covid,
        "offsite": False,
        "declared": False,
        "medfee_sumamt": medfee,
        "fulamt_ownpay_amt": ownpay,
        "preselfpay_amt": "0.00",
        "inscp_scp_amt": inscp or medfee,
        "act_pay_dedc": "0.00",
        "hifp_pay": hifp,
        "hifmi_pay": hifmi,
        "maf_pay": maf,
        "tilt_aid_pay": tilt,
        "fin_subsidy_pay": f"{fin:.2f}",
        "fund_pay_sumamt": f"{funds:.2f}",
        "psn_pay": f"{Decimal(acct) + cash if not covid else Decimal('0.00'):.2f}",
        "acct_pay": acct if not covid else "0.00",
        "psn_cash_pay": f"{cash:.2f}",
    }


def reversed_(original: dict, *, day: date, hour: int = 15) -> dict:
    return {
        "setl_id": original["setl_id"],
        "mdtrt_id": original["mdtrt_id"],
        "psn_no": original["psn_no"],
        "fixmedins_code": original["fixmedins_code"],
        "reversed_at": at(day, hour).isoformat(),
        "rev_date": day.isoformat(),
        "original": original,
    }


def envelope(topic: str, payload: dict, *, key: str | None = None, occurred_at: datetime | None = None) -> Envelope:
    event = new_event(
        type=topic,
        key=key or payload.get("psn_no") or payload.get("fixmedins_code") or "k",
        payload=payload,
        producer="test",
    )
    if occurred_at is not None:
        event = dataclasses.replace(event, occurred_at=occurred_at.isoformat())
    return event


async def feed(client, topic: str, payload: dict, **kwargs) -> Envelope:
    """Apply one event through the service's consumer (inbox, handler, after-commit), as the broker would."""
    event = envelope(topic, payload, **kwargs)
    applied = await client._transport.app.state.consumer.apply(topic, event.to_json())
    assert applied, f"{topic} event not applied"
    return event


async def settle(client, **kwargs) -> dict:
    payload = settled(**kwargs)
    await feed(client, SETTLED, payload)
    return payload


async def settle_ordinary(client, **kwargs) -> dict:
    """`settle` of an ordinary settlement: no COVID case, the basic fund alone (no 大病, no aid) unless told."""
    return await settle(client, **{"covid": None, "hifmi": "0.00", "maf": "0.00", **kwargs})


async def reverse(client, original: dict, *, day: date, hour: int = 15) -> dict:
    payload = reversed_(original, day=day, hour=hour)
    await feed(client, SETTLEMENT_REVERSED, payload)
    return payload


def case(
    *,
    psn_no: str,
    status: str = "confirmed",
    published: bool = True,
    diagnosed_at: datetime,
    version: int = 1,
    case_id: str | None = None,
    name: str = "张三丰",
    certno: str = "621002198001011234",
    fixmedins_code: str = "H1",
) -> dict:
    return {
        "case_id": case_id or str(uuid.uuid4()),
        "psn_no": psn_no,
        "status": status,
        "diagnosed_at": diagnosed_at.isoformat(),
        "fixmedins_code": fixmedins_code,
        "diagnosis": "U07.1 新冠肺炎",
        "published": published,
        "version": version,
        "psn_name": name,
        "gend": "1",
        "brdy": "1980-01-01",
        "certno": certno,
        "insutype": "310",
        "insuplc_admdvs": "621000",
    }


def prepayment(
    *, admdvs: str, amount: str, disbursed_on: date, kind: str = "covid_special", fixmedins_code: str = "H1"
) -> dict:
    return {
        "prepayment_id": str(uuid.uuid4()),
        "fixmedins_code": fixmedins_code,
        "kind": kind,
        "amount": amount,
        "disbursed_on": disbursed_on.isoformat(),
        "scheduled_on": disbursed_on.isoformat(),
        "admdvs": admdvs,
    }


def subsidy(original: dict, *, reversal: bool = False) -> dict:
    amount = Decimal(original["fin_subsidy_pay"])
    central = (amount * Decimal("0.6")).quantize(Decimal("0.01"))
    return {
        "setl_id": original["setl_id"],
        "fixmedins_code": original["fixmedins_code"],
        "case_status": original["covid_status"],
        "amount": f"{amount:.2f}",
        "advance_payer": "city",
        "shares": [
            {"payer": "central", "amount": f"{central:.2f}"},
            {"payer": "provincial", "amount": f"{amount - central:.2f}"},
        ],
        "psn_no": original["psn_no"],
        "setl_date": original["setl_date"],
        "reversal": reversal,
    }


def finance_payment(
    *,
    paid_on: date,
    amount: str,
    payer: str = "city",
    to_fixmedins_code: str | None = "H1",
    to_level: str | None = None,
    admdvs: str | None = "621000",
    ref: str | None = None,
) -> dict:
    """A `subsidy-paid` payload: finance pays a hospital its COVID subsidy, or (`to_level`) a level its share."""
    if to_level is not None:
        to_fixmedins_code, admdvs = None, None
    return {
        "ref": ref or uid("R-"),
        "payer": payer,
        "to_fixmedins_code": to_fixmedins_code,
        "to_level": to_level,
        "amount": amount,
        "paid_on": paid_on.isoformat(),
        "admdvs": admdvs,
    }


async def daily(client, day: date, *, cumulative: bool = False, headers: dict = OPS) -> dict:
    response = await client.get(
        "/v1/reports/daily", params={"date": day.isoformat(), "cumulative": str(cumulative).lower()}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def row(report: dict, case_status: str, origin: str, insutype: str) -> dict:
    return next(
        r for r in report["rows"] if (r["case_status"], r["origin"], r["insutype"]) == (case_status, origin, insutype)
    )


def fake_settlement(path: str, answer: dict) -> httpx.AsyncClient:
    """A client of a stand-in settlement service whose GET `path`?date= answers {date, **answer}."""
    fake = FastAPI()

    @fake.get(path)
    async def _day(date: str) -> dict:
        return {"date": date, **answer}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://settlement")


def workbook(content: bytes):
    from openpyxl import load_workbook

    return load_workbook(io.BytesIO(content))


__all__ = ["ADMIN", "OPS", "HIS", "COVID_CASE_REGISTERED", "PREPAYMENT_DISBURSED", "SUBSIDY_DUE"]
