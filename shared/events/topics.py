"""The topics of the contract and what keys them."""

CLAIM_SUBMITTED = "claim-submitted"
SETTLED = "settled"
SETTLEMENT_REVERSED = "settlement-reversed"
SUBSIDY_DUE = "subsidy-due"
PREPAYMENT_DISBURSED = "prepayment-disbursed"
PERSON_CHANGED = "person-changed"
INSTITUTION_CHANGED = "institution-changed"
COVID_CASE_REGISTERED = "covid-case-registered"
BUDGET_SET = "budget-set"

ALL_TOPICS: tuple[str, ...] = (
    CLAIM_SUBMITTED,
    SETTLED,
    SETTLEMENT_REVERSED,
    SUBSIDY_DUE,
    PREPAYMENT_DISBURSED,
    PERSON_CHANGED,
    INSTITUTION_CHANGED,
    COVID_CASE_REGISTERED,
    BUDGET_SET,
)
