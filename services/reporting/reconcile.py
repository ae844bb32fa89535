"""Reconciliation: reporting's totals of a business day against the settlement service's own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

import httpx

from services.reporting.daily import RECONCILED
from shared.http import InternalClient
from shared.money import fmt
from shared.problems import Problem

TIMEOUT_SECONDS = 3.0
FIELDS = ("count", *RECONCILED)
Client = InternalClient | httpx.AsyncClient


def make_client(base_url: str) -> InternalClient:
    """The process's client of the settlement service (bounded time for every call)."""
    return InternalClient(base_url, timeout=TIMEOUT_SECONDS)


def _unavailable(detail: str) -> Problem:
    return Problem(503, "SETTLEMENT_UNAVAILABLE", detail, headers={"Retry-After": "5"})


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


async def _day_of_settlement(client: Client, path: str, *, day: date, api_key: str) -> object:
    """GET {SETTLEMENT_URL}`path`?date= with the internal key: the JSON answer; 503 SETTLEMENT_UNAVAILABLE when the
    call fails, answers other than 200, or not JSON."""
    try:
        response = await client.get(path, params={"date": day.isoformat()}, headers={"X-Api-Key": api_key})
    except (httpx.HTTPError, TimeoutError) as exc:
        raise _unavailable(f"the settlement service did not answer ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise _unavailable(f"the settlement service answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise _unavailable("the settlement service answered unexpectedly (not JSON)") from None


async def settlement_totals(client: Client, *, day: date, api_key: str) -> dict:
    """GET {SETTLEMENT_URL}/v1/totals?date= with the internal key; 503 SETTLEMENT_UNAVAILABLE when it fails."""
    return _normalise(await _day_of_settlement(client, "/v1/totals", day=day, api_key=api_key))


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
    return _normalise_accounts(await _day_of_settlement(client, "/v1/account-totals", day=day, api_key=api_key))


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
