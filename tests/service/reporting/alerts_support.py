"""Factories for the supervision tests: `settled` payloads with lines and identities (docs/events.md), fed to the
reporting service's consumer, and reads of its alerts and outbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from reporting_support import ADMIN, OPS, at, feed, reversed_, uid

from shared.events.envelope import BUSINESS_TZ
from shared.events.topics import SETTLED, SETTLEMENT_REVERSED
from shared.testing import fetch

REFERENCE = "supervision/2022-01-01"


def line(
    codg: str,
    pric: str,
    cnt: str = "1",
    *,
    day: date | None = None,
    category: str | None = None,
    essential: bool = False,
    watched: bool = False,
    item_class: str = "A",
    days_supply: int | None = None,
    name: str | None = None,
    timed: bool = True,
) -> dict[str, Any]:
    """A line of the `settled` event as settlement writes it."""
    amount = (Decimal(pric) * Decimal(cnt)).quantize(Decimal("0.01"))
    moment = datetime(day.year, day.month, day.day, 10, tzinfo=BUSINESS_TZ) if day and timed else None
    return {
        "feedetl_sn": "L" + uuid.uuid4().hex[:8],
        "med_list_codg": codg,
        "med_list_name": name or codg,
        "item_class": item_class,
        "category": category,
        "essential": essential,
        "watched": watched,
        "pric": pric,
        "cnt": cnt,
        "amount": f"{amount:.2f}",
        "days_supply": days_supply,
        "fee_ocur_time": moment.isoformat() if moment else None,
    }


def settlement(
    *,
    day: date,
    psn_no: str | None = None,
    fixmedins_code: str = "H1",
    fixmedins_admdvs: str = "621000",
    insuplc_admdvs: str = "621002",
    med_type: str = "11",
    lines: list[dict] | None = None,
    psn_pay: str = "0.00",
    aid_categories: list[str] | None = None,
    aid_category: str | None = None,
    begndate: date | None = None,
    enddate: date | None = None,
    level: int = 3,
    affiliation: str = "city",
    kind: str = "hospital",
    medfee: str | None = None,
    fulamt_ownpay: str = "0.00",
    hifp: str | None = None,
    retail_purchase: bool = False,
) -> dict[str, Any]:
    """A consistent non-COVID `settled` payload: medfee = Σ lines (or `medfee`); the person pays `psn_pay` in cash;
    the basic fund the rest (or `hifp`, then aid 0 and the person the remainder)."""
    lines = lines if lines is not None else [line("TA001", psn_pay if Decimal(psn_pay) > 0 else "100.00", day=day)]
    total = Decimal(medfee) if medfee is not None else sum((Decimal(x["amount"]) for x in lines), Decimal("0.00"))
    pay = Decimal(psn_pay)
    fund = total - pay if hifp is None else Decimal(hifp)
    assert fund >= 0, (total, pay)
    return {
        "setl_id": uid("S"),
        "mdtrt_id": uid("M"),
        "psn_no": psn_no or uid("P"),
        "insutype": "390",
        "psn_type": None,
        "insuplc_admdvs": insuplc_admdvs,
        "origin": "local",
        "fixmedins_code": fixmedins_code,
        "fixmedins_kind": kind,
        "fixmedins_level": level if kind == "hospital" else None,
        "fixmedins_affiliation": affiliation,
        "fixmedins_admdvs": fixmedins_admdvs,
        "med_type": med_type,
        "chronic_disease": None,
        "two_disease": None,
        "aid_category": aid_category,
        "aid_categories": aid_categories or [],
        "setl_time": at(day, 11).isoformat(),
        "setl_date": day.isoformat(),
        "begndate": (begndate or day).isoformat(),
        "enddate": (enddate or day).isoformat() if med_type == "21" else None,
        "covid_status": None,
        "offsite": False,
        "declared": False,
        "retail_purchase": retail_purchase,
        "acct_payer_psn_no": None,
        "medfee_sumamt": f"{total:.2f}",
        "fulamt_ownpay_amt": fulamt_ownpay,
        "preselfpay_amt": "0.00",
        "inscp_scp_amt": f"{total - Decimal(fulamt_ownpay):.2f}",
        "act_pay_dedc": "0.00",
        "hifp_pay": f"{fund:.2f}",
        "hifmi_pay": "0.00",
        "maf_pay": "0.00",
        "tilt_aid_pay": "0.00",
        "fin_subsidy_pay": "0.00",
        "fund_pay_sumamt": f"{fund:.2f}",
        "psn_pay": f"{total - fund:.2f}",
        "acct_pay": "0.00",
        "psn_cash_pay": f"{total - fund:.2f}",
        "lines": lines,
    }


async def settle(client, **kwargs) -> dict[str, Any]:
    payload = settlement(**kwargs)
    await feed(client, SETTLED, payload)
    return payload


async def reverse(client, original: dict, *, day: date | None = None) -> dict[str, Any]:
    payload = reversed_(original, day=day or date.fromisoformat(original["setl_date"]))
    await feed(client, SETTLEMENT_REVERSED, payload)
    return payload


async def alerts_of(client, **params: str) -> list[dict[str, Any]]:
    """GET /v1/alerts (ops) with the filters given, every page."""
    response = await client.get("/v1/alerts", params={"limit": "1000", **params}, headers=OPS)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def rule_alerts(client, rule: str, subject_part: str) -> list[dict[str, Any]]:
    """The alerts of a rule whose subject names `subject_part` (a test's own person, code or institution)."""
    return await alerts_about(client, subject_part, rule=rule)


async def outbox(client, alert_id: str) -> list[dict[str, Any]]:
    """The alert's events in reporting's outbox, oldest first: [(topic, payload)]."""
    rows = await fetch(
        client._transport.app,
        "SELECT topic, envelope FROM outbox WHERE envelope->'payload'->>'alert_id' = :id ORDER BY id",
        id=alert_id,
    )
    return [{"topic": row.topic, **row.envelope["payload"]} for row in rows]


async def resolve(client, alert_id: str, body: dict, *, headers: dict = ADMIN):
    return await client.post(f"/v1/alerts/{alert_id}/resolve", json=body, headers=headers)


def days(first: date, *offsets: int) -> list[date]:
    return [first + timedelta(days=n) for n in offsets]


async def alerts_about(
    client, subject_part: str, *, kind: str | None = None, rule: str | None = None
) -> list[dict[str, Any]]:
    """Every alert (of a kind, of a rule) whose subject names `subject_part`, oldest first, as GET /v1/alerts/{id}
    answers it."""
    rows = await fetch(
        client._transport.app,
        "SELECT alert_id FROM alerts WHERE position(:part in subject) > 0"
        " AND (CAST(:kind AS text) IS NULL OR kind = :kind) AND (CAST(:rule AS text) IS NULL OR rule = :rule)"
        " ORDER BY raised_at, alert_id",
        part=subject_part,
        kind=kind,
        rule=rule,
    )
    found = []
    for row in rows:
        response = await client.get(f"/v1/alerts/{row.alert_id}", headers=OPS)
        assert response.status_code == 200, response.text
        found.append(response.json())
    return found
