"""Turning stored visits and request bodies into engine inputs; the checks every settlement path shares."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from services.settlement.eligibility_client import (
    Person,
    fetch_person,
    merge_aid_identities,
    require_active,
    require_credential,
    verify_credential,
)
from services.settlement.engine import (
    Accumulators,
    Adjudication,
    Claim,
    EngineError,
    FeeLine,
    Institution,
    Policy,
    adjudicate,
)
from services.settlement.runtime import Ctx, engine_problem
from shared.problems import Problem


def institution_of(row, *, code: str) -> Institution:
    """The local copy's institution as the engine sees it; 422 unless designated and not suspended."""
    if row is None or row.kind is None:
        raise Problem(
            422,
            "INSTITUTION_NOT_DESIGNATED",
            f"institution {code} is not a designated institution",
            errors=[{"field": "fixmedins_code", "code": "INSTITUTION_NOT_DESIGNATED", "detail": code}],
        )
    if row.suspended:
        raise Problem(
            422,
            "INSTITUTION_SUSPENDED",
            f"institution {code} is suspended",
            errors=[{"field": "fixmedins_code", "code": "INSTITUTION_SUSPENDED", "detail": code}],
        )
    try:
        return Institution(code, row.kind, row.level, row.affiliation, row.admdvs)
    except EngineError as exc:
        raise engine_problem(exc) from None


def fee_line(item, *, prefix: str = "") -> FeeLine:
    """An engine fee line from a request item (pydantic) or a stored row. Its time (a temporary catalogue entry is
    judged by the day the line occurred) comes as a datetime from a request, as ISO text from a stored row."""

    def dec(value) -> Decimal | None:
        return None if value is None else Decimal(value)

    occurred = getattr(item, "fee_ocur_time", None)
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)

    try:
        return FeeLine(
            feedetl_sn=prefix + item.feedetl_sn,
            med_list_codg=item.med_list_codg,
            med_list_name=item.med_list_name or "",
            item_class=item.item_class,
            pric=Decimal(item.pric),
            cnt=Decimal(item.cnt),
            det_item_fee_sumamt=dec(item.det_item_fee_sumamt),
            preselfpay_prop=dec(item.preselfpay_prop),
            days_supply=item.days_supply,
            fee_ocur_time=occurred,
        )
    except EngineError as exc:
        raise engine_problem(exc) from None


async def checked_person(
    ctx: Ctx, *, psn_no: str, on: date, cert_type: str | None = None, cert_no: str | None = None
) -> Person:
    """Snapshot on `on` (credential checked in the same call when given); 422 unless insured and 人证相符."""
    person = await fetch_person(
        ctx.eligibility, api_key=ctx.api_key, psn_no=psn_no, on=on, cert_type=cert_type, cert_no=cert_no
    )
    if cert_type and cert_no:
        if person.credential_matches is None:  # an eligibility without the combined check: ask separately
            resolved = await verify_credential(
                ctx.eligibility, api_key=ctx.api_key, cert_type=cert_type, cert_no=cert_no
            )
            person = replace(person, credential_matches=resolved == psn_no)
        require_credential(person)
    require_active(person)
    return person


async def person_for_claim(ctx: Ctx, claim: Claim, *, psn_no: str) -> Person:
    """The snapshot a settlement uses: an admission unions the identities of admission and discharge dates."""
    if claim.med_type == "21" and claim.end_date is not None and claim.end_date != claim.begin_date:
        first, second = await asyncio.gather(
            fetch_person(ctx.eligibility, api_key=ctx.api_key, psn_no=psn_no, on=claim.begin_date),
            fetch_person(ctx.eligibility, api_key=ctx.api_key, psn_no=psn_no, on=claim.end_date),
        )
        person = merge_aid_identities(first, second)
    else:
        person = await fetch_person(ctx.eligibility, api_key=ctx.api_key, psn_no=psn_no, on=claim.begin_date)
    require_active(person)
    return person


def account_payer(person: Person, *, acct_used_flag: bool, acct_payer_psn_no: str | None) -> str:
    """Whose account pays: the person, or a spouse / parent / child (家庭共济) per the snapshot."""
    if not acct_used_flag or acct_payer_psn_no is None or acct_payer_psn_no == person.psn_no:
        return person.psn_no
    if acct_payer_psn_no not in person.family:
        raise Problem(
            422,
            "NOT_FAMILY",
            f"{acct_payer_psn_no} is not a family member of {person.psn_no}",
            errors=[
                {"field": "acct_payer_psn_no", "code": "NOT_FAMILY", "detail": "only a spouse, parent or child may pay"}
            ],
        )
    return acct_payer_psn_no


def run_engine(ctx: Ctx, *, claim: Claim, person: Person, accumulators: Accumulators, policy: Policy) -> Adjudication:
    """The pure engine; its refusals become 422 problems with the engine's codes."""
    try:
        return adjudicate(
            claim=claim, eligibility=person.snapshot, accumulators=accumulators, policy=policy, catalogue=ctx.catalogue
        )
    except EngineError as exc:
        raise engine_problem(exc) from None


def reject_violations(result: Adjudication) -> None:
    """Smart monitoring (DOMAIN §11): a hard violation rejects the settlement; nothing is written."""
    if not result.violations:
        return
    first = result.violations[0]
    raise Problem(
        422,
        first.code,
        "smart monitoring rejected the settlement: "
        + "; ".join(f"{v.code} {v.detail}" for v in result.violations[:10]),
        errors=[
            {"field": f"items[{v.feedetl_sn}]" if v.feedetl_sn else None, **v.to_dict()} for v in result.violations
        ],
    )


def with_violations_as_warnings(body: dict, result: Adjudication) -> dict:
    """Presettle: what settle would reject is announced as warnings with the same codes."""
    body["warnings"] = body["warnings"] + [v.to_dict() for v in result.violations]
    return body
