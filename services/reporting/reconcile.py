"""Reconciliation: reporting's totals of a business day against the settlement service's own, and reporting's finance
payments of a day (`subsidy-paid`) against the prepayment service's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

import httpx

from services.reporting.daily import RECONCILED
from services.reporting.domain import FINANCE_LEVELS
from shared.http import InternalClient
from shared.money import fmt
from shared.problems import Problem

TIMEOUT_SECONDS = 3.0
FIELDS = ("count", *RECONCILED)
Client = InternalClient | httpx.AsyncClient


def make_client(base_url: str) -> InternalClient:
    """The process's client of the settlement (or prepayment) service (bounded time for every call)."""
    return InternalClient(base_url, timeout=TIMEOUT_SECONDS)


def _unavailable(detail: str, service: str = "settlement") -> Problem:
    return Problem(503, f"{service.upper()}_UNAVAILABLE", detail, headers={"Retry-After": "5"})


def _normalise(body: object) -> dict:
    """Settlement's answer as {count: int, money fields: "0.00"}, or 503 when it is not that shape."""
    if not isinstance(body, dict):
        raise _unavailable("the settlement service answered unexpectedly (not a JSON object)")
    try:
        out = {"count": int(body["count"])}
        for name in RECONCILED:
            out[name] = fmt(Decimal(str(body[name])))
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise _unavailable(
            f"the settlement service answered unexpectedly: fields {', '.join(FIELDS)} expected"
        ) from None
    return out


async def _day_of(client: Client, path: str, *, day: date, api_key: str, service: str = "settlement") -> object:
    """GET {SETTLEMENT_URL}`path`?date= (or another `service`'s) with the internal key: the JSON answer; 503
    SETTLEMENT_UNAVAILABLE (PREPAYMENT_UNAVAILABLE …) when the call fails, answers other than 200, or not JSON."""
    try:
        response = await client.get(path, params={"date": day.isoformat()}, headers={"X-Api-Key": api_key})
    except (httpx.HTTPError, TimeoutError) as exc:
        raise _unavailable(f"the {service} service did not answer ({type(exc).__name__})", service) from None
    if response.status_code != 200:
        raise _unavailable(f"the {service} service answered {response.status_code}", service)
    try:
        return response.json()
    except ValueError:
        raise _unavailable(f"the {service} service answered unexpectedly (not JSON)", service) from None


async def settlement_totals(client: Client, *, day: date, api_key: str) -> dict:
    """GET {SETTLEMENT_URL}/v1/totals?date= with the internal key; 503 SETTLEMENT_UNAVAILABLE when it fails."""
    return _normalise(await _day_of(client, "/v1/totals", day=day, api_key=api_key))


def compare(*, day: date, settlement: dict, reporting: dict) -> dict:
    """{date, settlement, reporting, differences: [{field, settlement, reporting}]}."""
    differences = [
        {"field": name, "settlement": settlement[name], "reporting": reporting[name]}
        for name in FIELDS
        if settlement[name] != reporting[name]
    ]
    return {"date": day.isoformat(), "settlement": settlement, "reporting": reporting, "differences": differences}


ACCOUNT_FIELDS = ("acct_pay", "family_acct_pay")
PURCHASE_FIELDS = ("count", "medfee_sumamt", "acct_pay", "psn_cash_pay")


def _normalise_accounts(body: object) -> dict:
    """Settlement's /v1/account-totals as {acct_pay, family_acct_pay, purchases: {…}}, or 503."""
    if not isinstance(body, dict) or not isinstance(body.get("purchases"), dict):
        raise _unavailable("the settlement service answered unexpectedly: account totals expected")
    try:
        out: dict = {name: fmt(Decimal(str(body[name]))) for name in ACCOUNT_FIELDS}
        purchases = body["purchases"]
        out["purchases"] = {"count": int(purchases["count"])}
        for name in PURCHASE_FIELDS[1:]:
            out["purchases"][name] = fmt(Decimal(str(purchases[name])))
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise _unavailable("the settlement service answered unexpectedly: account totals expected") from None
    return out


async def settlement_account_totals(client: Client, *, day: date, api_key: str) -> dict:
    """GET {SETTLEMENT_URL}/v1/account-totals?date= with the internal key; 503 SETTLEMENT_UNAVAILABLE when it fails."""
    return _normalise_accounts(await _day_of(client, "/v1/account-totals", day=day, api_key=api_key))


def compare_accounts(*, day: date, settlement: dict, reporting: dict) -> dict:
    """{date, settlement, reporting, differences: [{field, settlement, reporting}]} of the account side."""
    flat = [(name, settlement[name], reporting[name]) for name in ACCOUNT_FIELDS]
    flat += [
        (f"purchases.{name}", settlement["purchases"][name], reporting["purchases"][name]) for name in PURCHASE_FIELDS
    ]
    differences = [
        {"field": name, "settlement": theirs, "reporting": ours} for name, theirs, ours in flat if theirs != ours
    ]
    return {"date": day.isoformat(), "settlement": settlement, "reporting": reporting, "differences": differences}


def _normalise_finance(body: object) -> dict:
    """Prepayment's /v1/subsidy-payments as {count, amount, payers: [{payer, count, amount}]} (every level, in
    order), or 503 PREPAYMENT_UNAVAILABLE when it is not that shape."""
    expected = "the prepayment service answered unexpectedly: the day's payments per payer level expected"
    if not isinstance(body, dict) or not isinstance(body.get("payers"), list):
        raise _unavailable(expected, "prepayment")
    try:
        by_payer = {str(p["payer"]): p for p in body["payers"]}
        payers = [
            {
                "payer": level,
                "count": int(by_payer[level]["count"]),
                "amount": fmt(Decimal(str(by_payer[level]["amount"]))),
            }
            for level in FINANCE_LEVELS
        ]
        return {"count": int(body["count"]), "amount": fmt(Decimal(str(body["amount"]))), "payers": payers}
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise _unavailable(expected, "prepayment") from None


async def prepayment_finance_payments(client: Client, *, day: date, api_key: str) -> dict:
    """GET {PREPAYMENT_URL}/v1/subsidy-payments?date= with the internal key; 503 PREPAYMENT_UNAVAILABLE when it
    fails."""
    body = await _day_of(client, "/v1/subsidy-payments", day=day, api_key=api_key, service="prepayment")
    return _normalise_finance(body)


def compare_finance(*, day: date, prepayment: dict, reporting: dict) -> dict:
    """{date, prepayment, reporting, differences: [{field, prepayment, reporting}]}; fields `count`, `amount` and
    `<payer>.count`, `<payer>.amount`."""
    flat = [(name, prepayment[name], reporting[name]) for name in ("count", "amount")]
    for theirs, ours in zip(prepayment["payers"], reporting["payers"], strict=True):
        flat += [(f"{theirs['payer']}.{name}", theirs[name], ours[name]) for name in ("count", "amount")]
    differences = [
        {"field": name, "prepayment": theirs, "reporting": ours} for name, theirs, ours in flat if theirs != ours
    ]
    return {"date": day.isoformat(), "prepayment": prepayment, "reporting": reporting, "differences": differences}
