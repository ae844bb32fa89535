"""The pure policy engine of the settlement service (DOMAIN §2–§8, §12).

    book = PolicyBook.load(Path("deploy/policy"))
    policy = book.policy_for(admdvs=snapshot.insuplc_admdvs, on=rule_date(claim))
    catalogue = Catalogue.load(Path("deploy/policy/catalogue/reference.toml"))
    result = adjudicate(claim=..., eligibility=..., accumulators=..., policy=policy, catalogue=catalogue)

No I/O here except reading policy and catalogue files at start-up.
"""

from .account import monthly_account_credit
from .accumulators import Accumulators
from .adjudicate import AID_CATEGORY_UNKNOWN, CHRONIC_NOT_QUALIFIED, OUTPATIENT_DURING_ADMISSION, adjudicate
from .catalogue import (
    CATALOGUE_ENTRY_NOT_IN_FORCE,
    CLASS_NOT_DECLARED,
    CLASS_OVERRIDDEN_BY_CATALOGUE,
    COVID_DRUG_RESTRICTED,
    Catalogue,
    CatalogueEntry,
)
from .covid import covid_status, split_amount
from .errors import ClaimError, EngineError, InvariantViolation, PolicyError, PolicyNotFound
from .model import (
    MONEY_FIELDS,
    Adjudication,
    AidIdentity,
    ChronicQualification,
    Claim,
    EligibilitySnapshot,
    FeeLine,
    Institution,
    LineResult,
    OffsiteRegistration,
    SettlementWarning,
    Subsidy,
    TraceStep,
    Violation,
)
from .policy import Policy
from .policy_book import PolicyBook, parse_policy_file
from .purchase import ACCOUNT_EXCLUDED, NOT_IN_CATALOGUE, RETAIL, adjudicate_purchase
from .validation import (
    DUPLICATE_LINE,
    INSTITUTION_LEVEL_REQUIRED,
    LINE_TOTAL_MISMATCH,
    PRESCRIBER_REQUIRED,
    PRICE_ABOVE_CAP,
    SUPPLY_DAYS_ABOVE_LIMIT,
    TOO_MANY_LINES,
    max_days_supply_for,
    validate_claim,
    validate_line,
)
from .visits import (
    PendingVisit,
    accumulator_year,
    admission_covering,
    prescription_is_valid,
    prescription_valid_until,
    rule_date,
    visits_to_merge,
)

__all__ = [
    "MONEY_FIELDS",
    "ACCOUNT_EXCLUDED",
    "AID_CATEGORY_UNKNOWN",
    "CATALOGUE_ENTRY_NOT_IN_FORCE",
    "CHRONIC_NOT_QUALIFIED",
    "CLASS_NOT_DECLARED",
    "CLASS_OVERRIDDEN_BY_CATALOGUE",
    "COVID_DRUG_RESTRICTED",
    "DUPLICATE_LINE",
    "INSTITUTION_LEVEL_REQUIRED",
    "LINE_TOTAL_MISMATCH",
    "NOT_IN_CATALOGUE",
    "OUTPATIENT_DURING_ADMISSION",
    "PRESCRIBER_REQUIRED",
    "PRICE_ABOVE_CAP",
    "RETAIL",
    "SUPPLY_DAYS_ABOVE_LIMIT",
    "TOO_MANY_LINES",
    "Accumulators",
    "Adjudication",
    "AidIdentity",
    "Catalogue",
    "CatalogueEntry",
    "ChronicQualification",
    "Claim",
    "ClaimError",
    "EligibilitySnapshot",
    "EngineError",
    "FeeLine",
    "Institution",
    "InvariantViolation",
    "LineResult",
    "OffsiteRegistration",
    "PendingVisit",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "PolicyNotFound",
    "SettlementWarning",
    "Subsidy",
    "TraceStep",
    "Violation",
    "accumulator_year",
    "adjudicate",
    "adjudicate_purchase",
    "admission_covering",
    "covid_status",
    "max_days_supply_for",
    "monthly_account_credit",
    "parse_policy_file",
    "prescription_is_valid",
    "prescription_valid_until",
    "rule_date",
    "split_amount",
    "validate_claim",
    "validate_line",
    "visits_to_merge",
]
