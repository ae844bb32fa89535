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
SUBSIDY_PAID = "subsidy-paid"  # prepayment: finance paid a COVID subsidy (to a hospital) or its share (to a level)
ALERT_RAISED = "alert-raised"  # reporting: a supervision alert (DOMAIN §13), raised or raised again
ALERT_RESOLVED = "alert-resolved"  # reporting: resolved by a person, or withdrawn / closed by the service

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
    SUBSIDY_PAID,
    ALERT_RAISED,
    ALERT_RESOLVED,
)

# Who consumes each topic (each service's consumer group is its name). The relay asks these groups' inboxes what
# they have applied (docs/events.md, "Delivery"); tests/unit/test_shared.py keeps this in step with the services'
# handlers.
CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    CLAIM_SUBMITTED: ("settlement", "reporting"),
    SETTLED: ("prepayment", "reporting"),
    SETTLEMENT_REVERSED: ("prepayment", "reporting"),
    SUBSIDY_DUE: ("prepayment", "reporting"),
    PREPAYMENT_DISBURSED: ("reporting",),
    PERSON_CHANGED: ("reporting",),
    INSTITUTION_CHANGED: ("settlement", "prepayment", "reporting"),
    COVID_CASE_REGISTERED: ("reporting",),
    BUDGET_SET: ("reporting",),
    SUBSIDY_PAID: ("reporting",),
    ALERT_RAISED: (),  # for the offices that act on them (civil affairs, audit); no service consumes them yet
    ALERT_RESOLVED: (),
}
