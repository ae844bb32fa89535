"""COVID-19 special policy: case status, finance subsidy and who owes it (DOMAIN §6)."""

from __future__ import annotations

from decimal import Decimal

from .eligibility import same_city
from .errors import InvariantViolation
from .model import Institution, Subsidy, TraceStep
from .money import ZERO, to_fen
from .policy import CovidRule, SubsidySplit
from .trace import trace_step

CONFIRMED = "confirmed"
SUSPECTED = "suspected"


def covid_status(diagnoses: tuple[str, ...], rule: CovidRule) -> str | None:
    """Confirmed (U07.1…) wins over suspected (U07.2…); None for other visits. Extensions such as U07.100 match."""
    status = None
    for raw in diagnoses:
        code = raw.strip().upper()
        if any(code.startswith(prefix) for prefix in rule.confirmed_diagnoses):
            return CONFIRMED
        if any(code.startswith(prefix) for prefix in rule.suspected_diagnoses):
            status = SUSPECTED
    return status


def split_amount(amount: Decimal, shares: tuple[tuple[str, Decimal], ...]) -> tuple[tuple[str, Decimal], ...]:
    """Split to the fen: each share rounded half-up, the last takes the remainder (sum is exact)."""
    parts = []
    allotted = ZERO
    for index, (payer, share) in enumerate(shares):
        if index == len(shares) - 1:
            part = amount - allotted
        else:
            part = min(to_fen(amount * share), amount - allotted)
        allotted += part
        parts.append((payer, part))
    return tuple(parts)


def _split_for(
    *, status: str, institution: Institution, insuplc_admdvs: str, rule: CovidRule
) -> tuple[SubsidySplit, str, str]:
    """(split, policy key, case) — "the city" is the city of the treating institution."""
    if status == CONFIRMED:
        return rule.confirmed, "confirmed", "confirmed"
    if insuplc_admdvs == institution.admdvs[:4] + "00":
        return rule.suspected_city, "suspected_city", "suspected, insured at city level"
    if not same_city(insuplc_admdvs, institution.admdvs):
        if institution.affiliation == "city":
            return rule.suspected_city, "suspected_city", "suspected, from outside the city, city-managed hospital"
        return rule.suspected_shared, "suspected_shared", "suspected, from outside the city, county hospital"
    return rule.suspected_shared, "suspected_shared", "suspected, county-insured"


def covid_subsidy(
    *, status: str, amount: Decimal, institution: Institution, insuplc_admdvs: str, rule: CovidRule
) -> tuple[Subsidy, TraceStep]:
    """The whole remaining personal burden, advanced and finally shared as seed 001 says."""
    split, key, case = _split_for(status=status, institution=institution, insuplc_admdvs=insuplc_admdvs, rule=rule)
    advance = institution.affiliation if split.advance_payer == "affiliation" else split.advance_payer
    shares = split_amount(amount, split.shares)
    if sum(part for _, part in shares) != amount or any(part < 0 for _, part in shares):
        raise InvariantViolation(f"subsidy split {shares} does not add up to {amount}")
    subsidy = Subsidy(case_status=status, amount=amount, advance_payer=advance, shares=shares)
    step = trace_step(
        "covid.fin_subsidy_pay",
        "DOMAIN §6 finance pays the whole remaining personal burden (medfee − hifp − hifmi − maf − tilt)",
        amount=amount,
        case=case,
        parameter=f"covid.subsidy.{key}",
        hospital_affiliation=institution.affiliation,
        hospital_admdvs=institution.admdvs,
        insuplc_admdvs=insuplc_admdvs,
        advance_payer=advance,
        shares=", ".join(f"{payer} {share}" for payer, share in split.shares),
        amounts=", ".join(f"{payer} {part}" for payer, part in shares),
    )
    return subsidy, step
