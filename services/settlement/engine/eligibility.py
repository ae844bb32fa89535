"""Which identities, qualifications and registrations apply to a visit (the engine applies the windows)."""

from __future__ import annotations

from datetime import date, timedelta

from .model import AidIdentity, ChronicQualification, EligibilitySnapshot, OffsiteRegistration


def end_of_month(day: date) -> date:
    """Last day of the month of `day`."""
    first_of_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_of_next - timedelta(days=1)


def aid_window_end(identity: AidIdentity) -> date | None:
    """Last covered day: the end of the month in which the identity was lost (次月起不再享受)."""
    return None if identity.lost_on is None else end_of_month(identity.lost_on)


def aid_identity_covers(identity: AidIdentity, *, on: date) -> bool:
    end = aid_window_end(identity)
    return identity.start_date <= on and (end is None or on <= end)


def aid_identities_for(*, eligibility: EligibilitySnapshot, dates: tuple[date, ...]) -> tuple[AidIdentity, ...]:
    """Identities whose window covers any of `dates` (an admission: its admission or discharge date)."""
    return tuple(
        identity
        for identity in eligibility.aid_identities
        if any(aid_identity_covers(identity, on=day) for day in dates)
    )


def chronic_qualification_on(
    *, eligibility: EligibilitySnapshot, disease: str | None, on: date
) -> ChronicQualification | None:
    """The qualification for `disease` valid on `on`, if any."""
    if disease is None:
        return None
    for qualification in eligibility.chronic_qualifications:
        if (
            qualification.disease == disease
            and qualification.start_date <= on
            and (qualification.end_date is None or on <= qualification.end_date)
        ):
            return qualification
    return None


def has_any_chronic_qualification(*, eligibility: EligibilitySnapshot, on: date) -> bool:
    """True when some chronic / 两病 qualification is valid on `on` (long prescriptions allowed)."""
    return any(
        q.start_date <= on and (q.end_date is None or on <= q.end_date) for q in eligibility.chronic_qualifications
    )


def same_city(a: str, b: str) -> bool:
    return a[:4] == b[:4]


def same_province(a: str, b: str) -> bool:
    return a[:2] == b[:2]


def registration_covers(registration: OffsiteRegistration, *, institution_admdvs: str, on: date) -> bool:
    """A registration covers its city (first 4 digits), or the whole province when it ends in 0000."""
    if on < registration.start_date or (registration.end_date is not None and on > registration.end_date):
        return False
    area = registration.mdtrtarea_admdvs
    if area.endswith("0000"):
        return same_province(area, institution_admdvs)
    return same_city(area, institution_admdvs)


def offsite_registration(
    *, eligibility: EligibilitySnapshot, institution_admdvs: str, on: date
) -> OffsiteRegistration | None:
    """The registration covering a visit to `institution_admdvs` on `on`, if any."""
    for registration in eligibility.offsite_registrations:
        if registration_covers(registration, institution_admdvs=institution_admdvs, on=on):
            return registration
    return None
