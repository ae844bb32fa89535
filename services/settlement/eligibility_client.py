"""The settlement service's view of eligibility: one snapshot call per decision, short timeout, clear 503.

Only an eligibility that cannot answer is a 503 (unreachable, too slow, a 5xx, nonsense, or a refusal of this
service's own key): the HIS may retry. A request that eligibility refuses as the caller's (a 4xx) is passed on as
that 4xx with eligibility's code: retrying it can never succeed.

`app.state.eligibility` is a `shared.http.InternalClient` built in the composition root (app.py); tests
may replace it with one on `httpx.ASGITransport` to an in-process eligibility app.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import httpx
import orjson

from services.settlement.engine import AidIdentity, ChronicQualification, EligibilitySnapshot, OffsiteRegistration
from services.settlement.engine.errors import ClaimError
from shared.http import InternalClient
from shared.problems import Problem

log = logging.getLogger("yibao.settlement.eligibility")

TIMEOUT_SECONDS = 2.0
# eligibility's 4xx that are not about the caller's request: its refusal of our own key, or a request to slow down
_OUR_FAULT = frozenset({401, 403, 407, 408, 429})
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_MAX_ERRORS = 20


class EligibilityUnavailable(Problem):
    """Eligibility is down, slow or answered nonsense: the settlement cannot be decided now."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "ELIGIBILITY_UNAVAILABLE", detail, headers={"Retry-After": "2"})


def make_client(base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> InternalClient:
    """The one client of the process (keep-alive, bounded time for every call)."""
    return InternalClient(base_url, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Person:
    """A snapshot as the settlement service uses it."""

    psn_no: str
    active: bool
    inactive_reason: str | None
    snapshot: EligibilitySnapshot
    family: frozenset[str]  # member psn_no of spouse / parents / children
    credential_matches: bool | None
    gend: str | None
    brdy: str | None

    @property
    def psn_type(self) -> str | None:
        return self.snapshot.psn_type

    @property
    def insuplc_admdvs(self) -> str:
        return self.snapshot.insuplc_admdvs


def _day(value: Any) -> date | None:
    return None if value in (None, "") else date.fromisoformat(str(value)[:10])


def parse_snapshot(data: dict) -> Person:
    """Turn eligibility's JSON into engine values; a malformed answer is an outage, not a user error."""
    try:
        snapshot = EligibilitySnapshot(
            psn_no=str(data["psn_no"]),
            insutype=str(data["insutype"]),
            insuplc_admdvs=str(data["insuplc_admdvs"]),
            psn_type=data.get("psn_type") or None,
            aid_identities=tuple(
                AidIdentity(str(a["category"]), _day(a["start_date"]), _day(a.get("lost_on")))
                for a in data.get("aid_identities") or ()
            ),
            chronic_qualifications=tuple(
                ChronicQualification(
                    str(c["disease"]), _day(c["start_date"]), _day(c.get("end_date")), c.get("two_disease_class")
                )
                for c in data.get("chronic_qualifications") or ()
            ),
            offsite_registrations=tuple(
                OffsiteRegistration(str(r["mdtrtarea_admdvs"]), _day(r["start_date"]), _day(r.get("end_date")))
                for r in data.get("offsite_registrations") or ()
            ),
        )
        family = frozenset(str(f["member_psn_no"]) for f in data.get("family") or ())
    except (KeyError, TypeError, ValueError, ClaimError) as exc:
        raise EligibilityUnavailable(f"eligibility answered an unexpected snapshot ({type(exc).__name__})") from None
    matches = data.get("credential_matches")
    return Person(
        psn_no=snapshot.psn_no,
        active=bool(data.get("active", True)),
        inactive_reason=data.get("inactive_reason"),
        snapshot=snapshot,
        family=family,
        credential_matches=None if matches is None else bool(matches),
        gend=data.get("gend"),
        brdy=data.get("brdy"),
    )


def _text(value: Any, limit: int = 300) -> str | None:
    return None if value is None else str(value)[:limit]


def refused(response: httpx.Response) -> Problem:
    """Eligibility's answer to a request it refused (a 4xx) as this service's problem: an answer that says the
    caller's input is wrong keeps its status and code; anything else means eligibility cannot answer now (503)."""
    status = response.status_code
    if not 400 <= status < 500 or status in _OUR_FAULT:
        if status in (401, 403):
            log.error("eligibility refused the settlement service's key (%s)", status)
        return EligibilityUnavailable(f"eligibility answered {status}")
    try:
        body = orjson.loads(response.content)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    code = code if isinstance(code, str) and _CODE.fullmatch(code) else "ELIGIBILITY_REFUSED"
    detail = _text(body.get("detail")) or f"eligibility answered {status}"
    errors = [
        {"field": _text(e.get("field"), 100), "code": _text(e.get("code"), 64), "detail": _text(e.get("detail"))}
        for e in (body.get("errors") if isinstance(body.get("errors"), list) else [])[:_MAX_ERRORS]
        if isinstance(e, dict)
    ]
    return Problem(status, code, f"eligibility refused the request: {detail}", errors=errors)


async def _get(client: InternalClient, path: str, *, api_key: str, params: dict) -> httpx.Response:
    try:
        return await client.get(path, params=params, headers={"X-Api-Key": api_key})
    except (TimeoutError, httpx.HTTPError, OSError) as exc:
        log.warning("eligibility unreachable: %s", type(exc).__name__)
        raise EligibilityUnavailable(f"eligibility did not answer ({type(exc).__name__}); retry later") from None


async def fetch_person(
    client: InternalClient,
    *,
    api_key: str,
    psn_no: str,
    on: date,
    cert_type: str | None = None,
    cert_no: str | None = None,
) -> Person:
    """GET /v1/persons/{psn_no}/snapshot?on=… (with the credential when given: one call checks both)."""
    params: dict[str, str] = {"on": on.isoformat()}
    if cert_type and cert_no:
        params.update(mdtrt_cert_type=cert_type, mdtrt_cert_no=cert_no)
    response = await _get(client, f"/v1/persons/{psn_no}/snapshot", api_key=api_key, params=params)
    if response.status_code == 404:
        raise Problem(
            422,
            "PERSON_NOT_FOUND",
            f"person {psn_no} is not known to eligibility",
            errors=[{"field": "psn_no", "code": "PERSON_NOT_FOUND", "detail": "unknown person"}],
        )
    if response.status_code != 200:
        raise refused(response)
    try:
        data = orjson.loads(response.content)
    except ValueError:
        raise EligibilityUnavailable("eligibility answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise EligibilityUnavailable("eligibility answered an unexpected snapshot")
    return parse_snapshot(data)


async def verify_credential(client: InternalClient, *, api_key: str, cert_type: str, cert_no: str) -> str | None:
    """GET /v1/verify: the psn_no a credential resolves to, or None."""
    response = await _get(
        client, "/v1/verify", api_key=api_key, params={"mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no}
    )
    if response.status_code in (404, 422):
        return None
    if response.status_code != 200:
        raise refused(response)
    try:
        return str(response.json()["psn_no"])
    except (ValueError, KeyError, TypeError):
        raise EligibilityUnavailable("eligibility answered an unexpected verification") from None


def require_active(person: Person) -> None:
    """422 PERSON_INACTIVE when benefits are suspended on the date."""
    if not person.active:
        raise Problem(
            422,
            "PERSON_INACTIVE",
            f"person {person.psn_no} has no benefits on this date ({person.inactive_reason or 'inactive'})",
        )


def require_credential(person: Person) -> None:
    """422 CREDENTIAL_MISMATCH unless the credential resolves to this person (人证相符)."""
    if person.credential_matches is False:
        raise Problem(
            422,
            "CREDENTIAL_MISMATCH",
            "the credential does not belong to this person",
            errors=[
                {"field": "mdtrt_cert_no", "code": "CREDENTIAL_MISMATCH", "detail": "credential and person differ"}
            ],
        )


def merge_aid_identities(first: Person, second: Person) -> Person:
    """An admission: identities covering the admission date or the discharge date (union)."""
    seen = {(a.category, a.start_date, a.lost_on) for a in first.snapshot.aid_identities}
    extra = tuple(a for a in second.snapshot.aid_identities if (a.category, a.start_date, a.lost_on) not in seen)
    if not extra:
        return first
    snapshot = replace(first.snapshot, aid_identities=first.snapshot.aid_identities + extra)
    return replace(first, snapshot=snapshot)
