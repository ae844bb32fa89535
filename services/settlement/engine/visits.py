"""Dates of a visit: accumulator year, admissions, the 3-day pre-admission merge, prescription validity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from .model import Claim
from .policy import Policy


def rule_date(claim: Claim) -> date:
    """Date that picks the policy and the year: inpatient discharge (admission until discharged), else the visit."""
    if claim.med_type == "21" and claim.end_date is not None:
        return claim.end_date
    return claim.begin_date


def accumulator_year(claim: Claim) -> int:
    """Year of the accumulators a claim counts toward (DOMAIN §3)."""
    return rule_date(claim).year


def admission_covering(
    visit_date: date, admissions: Iterable[tuple[date, date | None]]
) -> tuple[date, date | None] | None:
    """The admission with admission ≤ visit ≤ discharge (or not yet discharged), if any."""
    for begin, end in admissions:
        if begin <= visit_date and (end is None or visit_date <= end):
            return (begin, end)
    return None


@dataclass(frozen=True, slots=True)
class PendingVisit:
    """An outpatient visit the service may merge into an admission."""

    mdtrt_id: str
    fixmedins_code: str
    med_type: str
    visit_date: date
    settled: bool = False


def visits_to_merge(
    *, admission_date: date, fixmedins_code: str, outpatient_visits: Iterable[PendingVisit], policy: Policy
) -> tuple[PendingVisit, ...]:
    """Unsettled general-outpatient visits at the same institution, admission − N days … admission (inclusive)."""
    first = admission_date - timedelta(days=policy.pre_admission_merge_days)
    return tuple(
        visit
        for visit in outpatient_visits
        if not visit.settled
        and visit.med_type == "11"
        and visit.fixmedins_code == fixmedins_code
        and first <= visit.visit_date <= admission_date
    )


def prescription_valid_until(*, issued_on: date, policy: Policy, valid_days: int | None = None) -> date:
    """Last day a prescription may be dispensed: issue day counts as day 1 (3 days → issued_on + 2)."""
    days = policy.prescription.validity_days if valid_days is None else valid_days
    return issued_on + timedelta(days=days - 1)


def prescription_is_valid(*, issued_on: date, used_on: date, policy: Policy, valid_days: int | None = None) -> bool:
    return issued_on <= used_on <= prescription_valid_until(issued_on=issued_on, policy=policy, valid_days=valid_days)
