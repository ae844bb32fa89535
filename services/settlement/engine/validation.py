"""Hard violations the service turns into errors (settlement rejected, nothing written)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .eligibility import has_any_chronic_qualification
from .model import Claim, EligibilitySnapshot, FeeLine, Violation
from .money import to_fen
from .policy import Policy

if TYPE_CHECKING:
    from .catalogue import Catalogue, CatalogueEntry

PRICE_ABOVE_CAP = "PRICE_ABOVE_CAP"
SUPPLY_DAYS_ABOVE_LIMIT = "SUPPLY_DAYS_ABOVE_LIMIT"
LINE_TOTAL_MISMATCH = "LINE_TOTAL_MISMATCH"
DUPLICATE_LINE = "DUPLICATE_LINE"
TOO_MANY_LINES = "TOO_MANY_LINES"
PRESCRIBER_REQUIRED = "PRESCRIBER_REQUIRED"
INSTITUTION_LEVEL_REQUIRED = "INSTITUTION_LEVEL_REQUIRED"


def line_violations(
    line: FeeLine, *, entry: CatalogueEntry | None, amount: Decimal, max_days_supply: int
) -> list[Violation]:
    """Violations of one line, given its catalogue entry and its amount (price × quantity to the fen)."""
    found = []
    sn, code = line.feedetl_sn, line.med_list_codg
    if entry is not None and entry.price_cap is not None and line.pric > entry.price_cap:
        found.append(Violation(PRICE_ABOVE_CAP, f"{code}: price {line.pric} above the cap {entry.price_cap}", sn))
    if line.days_supply is not None and line.days_supply > max_days_supply:
        detail = f"{code}: {line.days_supply} days of supply, at most {max_days_supply}"
        found.append(Violation(SUPPLY_DAYS_ABOVE_LIMIT, detail, sn))
    if line.det_item_fee_sumamt is not None and line.det_item_fee_sumamt != amount:
        detail = f"{code}: declared total {line.det_item_fee_sumamt}, price × quantity {amount}"
        found.append(Violation(LINE_TOTAL_MISMATCH, detail, sn))
    return found


def validate_line(line: FeeLine, *, catalogue: Catalogue, max_days_supply: int) -> tuple[str, ...]:
    """Codes of the hard violations of one line (empty when fine)."""
    found = line_violations(
        line,
        entry=catalogue.get(line.med_list_codg),
        amount=to_fen(line.pric * line.cnt),
        max_days_supply=max_days_supply,
    )
    return tuple(v.code for v in found)


def max_days_supply_for(*, claim: Claim, eligibility: EligibilitySnapshot, policy: Policy) -> int:
    """Long prescriptions (长处方): chronic / 两病 patients up to the chronic limit, others the general one."""
    if has_any_chronic_qualification(eligibility=eligibility, on=claim.begin_date):
        return policy.prescription.max_days_supply_chronic
    return policy.prescription.max_days_supply


def claim_violations(*, claim: Claim, policy: Policy) -> list[Violation]:
    """Claim-level violations: bounds, missing prescriber or level."""
    found = []
    if len(claim.lines) > policy.max_lines_per_claim:
        found.append(Violation(TOO_MANY_LINES, f"{len(claim.lines)} lines; at most {policy.max_lines_per_claim}"))
    if claim.med_type == "41":
        if claim.prescriber is None:
            found.append(Violation(PRESCRIBER_REQUIRED, "pharmacy claim (41) needs the prescribing hospital"))
    elif claim.institution.level is None and claim.med_type in ("11", "21"):
        found.append(Violation(INSTITUTION_LEVEL_REQUIRED, f"institution {claim.institution.code} has no level"))
    return found


def validate_claim(
    *, claim: Claim, eligibility: EligibilitySnapshot, policy: Policy, catalogue: Catalogue
) -> tuple[Violation, ...]:
    """All hard violations of a claim (the same list `adjudicate` reports in `violations`)."""
    found = claim_violations(claim=claim, policy=policy)
    limit = max_days_supply_for(claim=claim, eligibility=eligibility, policy=policy)
    seen: set[str] = set()
    for line in claim.lines:
        if line.feedetl_sn in seen:
            found.append(Violation(DUPLICATE_LINE, "the same feedetl_sn twice", line.feedetl_sn))
        seen.add(line.feedetl_sn)
        found.extend(
            line_violations(
                line,
                entry=catalogue.get(line.med_list_codg),
                amount=to_fen(line.pric * line.cnt),
                max_days_supply=limit,
            )
        )
    return tuple(found)
