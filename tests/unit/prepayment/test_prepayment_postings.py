"""Which entries each event makes: funds' shares, the COVID split of DOMAIN §6, order tolerance, clearing."""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from decimal import Decimal

import pytest
from prepayment_support import reversal_payload, settled_payload, subsidy_payload

from services.prepayment import postings
from services.prepayment.books import MemoryBooks
from services.prepayment.budgets import budget_use
from services.prepayment.facts import FactsError, settlement_facts, subsidy_facts
from services.prepayment.ledger import FINANCE_LEVELS, Ledger
from shared.budget import BudgetPolicyError, BudgetThresholds, load_thresholds, parse_thresholds

D = Decimal
DAY = date(2024, 3, 2)


def test_settlement_splits_what_the_funds_owe_by_fund_with_tilted_aid_in_medical_aid():
    facts = settlement_facts(settled_payload("S1", "H1", hifp="700.00", hifmi="120.50", maf="30.25", tilt="9.25"))
    posted = postings.settlement_entry(facts)
    lines = {(line.account, line.debit, line.credit) for line in posted.lines}
    assert lines == {
        ("fund:hifp", D("700.00"), D("0")),
        ("fund:hifmi", D("120.50"), D("0")),
        ("fund:maf", D("39.50"), D("0")),
        ("institution:H1:fund_payable", D("0"), D("860.00")),
    }
    assert posted.ref == "settlement:S1" and posted.business_date == date(2024, 3, 1)


def test_a_settlement_the_funds_paid_nothing_for_posts_nothing():
    facts = settlement_facts(settled_payload("S0", "H1"))
    assert postings.settlement_entry(facts) is None
    assert postings.settlement_entries(postings.SettlementState("S0", "H1", facts, DAY)) == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fund_pay_sumamt": "1.00"}, "fund_pay_sumamt"),
        ({"hifp_pay": "-1.00"}, "between 0"),
        ({"hifp_pay": 1.5}, "decimal string"),
        ({"hifp_pay": "1.005"}, "between 0"),
        ({"covid_status": "maybe"}, "covid_status"),
        ({"fixmedins_code": "H:1"}, "institution code"),
        ({"setl_date": "2024-13-01"}, "not a date"),
        ({"setl_id": None}, "setl_id"),
    ],
)
def test_a_settled_payload_against_the_document_is_refused(change, message):
    payload = {**settled_payload("S1", "H1", hifp="10.00"), **change}
    with pytest.raises(FactsError, match=message):
        settlement_facts(payload)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"shares": [{"payer": "central", "amount": "1.00"}]}, "do not add up"),
        ({"shares": [{"payer": "city", "amount": "5.00"}, {"payer": "city", "amount": "5.00"}]}, "twice"),
        ({"shares": [{"payer": "town", "amount": "10.00"}]}, "does not name"),
        ({"shares": []}, "list of 1 to 4"),
        ({"advance_payer": "central"}, "advance_payer"),
        ({"case_status": "excluded"}, "case_status"),
        ({"reversal": "yes"}, "reversal"),
    ],
)
def test_a_subsidy_payload_against_the_document_is_refused(change, message):
    payload = {
        **subsidy_payload(
            "S1", "H1", case_status="suspected", amount="10.00", advance_payer="city", shares={"city": "10.00"}
        ),
        **change,
    }
    with pytest.raises(FactsError, match=message):
        subsidy_facts(payload, occurred_on=DAY)


# The four cases of DOMAIN §6, shares computed by hand: first share = amount × ratio rounded
# half-up to the fen, the last share the remainder (the settlement engine's rule; we only book it).
COVID_CASES = [
    # (case, amount, advance payer = the hospital's affiliation, final shares)
    ("confirmed in a city hospital", "1234.57", "city", {"central": "740.74", "provincial": "493.83"}),
    ("confirmed in a county hospital", "2000.03", "county", {"central": "1200.02", "provincial": "800.01"}),
    ("suspected, city-level patient in a city hospital", "850.35", "city", {"city": "850.35"}),
    ("suspected, city-level patient in a county hospital", "850.35", "county", {"city": "850.35"}),
    ("suspected, county-level patient", "1000.01", "county", {"city": "600.01", "county": "400.00"}),
]


@pytest.mark.parametrize("case, amount, advance, shares", COVID_CASES, ids=[c[0] for c in COVID_CASES])
def test_covid_subsidy_books_the_advance_and_the_final_shares_to_the_fen(case, amount, advance, shares):
    status = "confirmed" if case.startswith("confirmed") else "suspected"
    facts = subsidy_facts(
        subsidy_payload("S1", "H1", case_status=status, amount=amount, advance_payer=advance, shares=shares),
        occurred_on=DAY,
    )
    ledger = Ledger()
    ledger.post(postings.subsidy_entry(facts))
    assert ledger.balance("institution:H1:subsidy_receivable") == -D(amount)
    assert ledger.balance(f"finance:{advance}:advanced") == D(amount)
    own = D(shares.get(advance, "0.00"))
    assert ledger.balance(f"finance:{advance}:recoverable") == -(D(amount) - own)
    for level in FINANCE_LEVELS:
        net = sum(ledger.balance(f"finance:{level}:{p}") for p in ("advanced", "recoverable", "share_due"))
        assert net == D(shares.get(level, "0.00")), level
    assert ledger.trial_balance().balanced


def _events_of_one_covid_settlement() -> list[tuple[str, dict]]:
    settled = settled_payload("S9", "H1", hifp="500.00", hifmi="20.00", fin_subsidy="1000.01", covid_status="suspected")
    subsidy = dict(
        case_status="suspected", amount="1000.01", advance_payer="city", shares={"city": "600.01", "county": "400.00"}
    )
    return [
        ("settled", settled),
        ("settlement-reversed", reversal_payload(settled)),
        ("subsidy-due", subsidy_payload("S9", "H1", **subsidy)),
        ("subsidy-due", subsidy_payload("S9", "H1", reversal=True, **subsidy)),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_order_of_one_settlements_events_ends_in_the_same_books(order):
    events = _events_of_one_covid_settlement()
    books = MemoryBooks()
    for index in order:
        topic, payload = events[index]
        books.apply(topic, payload, event_id=str(uuid.uuid4()), occurred_on=DAY)
    assert set(books.ledger.entries) == {"settlement:S9", "settlement-reversal:S9", "subsidy:S9", "subsidy-reversal:S9"}
    assert all(balance == 0 for balance in books.ledger.balances.values())


@pytest.mark.parametrize("subset", [(0, 1), (1, 0), (1,), (2, 1), (1, 2), (2, 3), (3, 2), (3,), (0, 2, 3)])
def test_any_reversal_nets_the_subsidy_out_once(subset):
    events = _events_of_one_covid_settlement()
    books = MemoryBooks()
    for index in subset:
        books.apply(events[index][0], events[index][1], event_id=str(uuid.uuid4()), occurred_on=DAY)
    assert books.position("H1").subsidy_receivable == 0
    assert books.position("H1").fund_payable == (D("520.00") if 0 in subset and 1 not in subset else 0)


def test_a_bare_reversal_waits_for_its_settlement():
    settled = settled_payload("S2", "H1", hifp="80.00")
    books = MemoryBooks()
    books.apply("settlement-reversed", reversal_payload(settled, with_original=False), event_id="e1", occurred_on=DAY)
    assert not books.ledger.entries
    books.apply("settled", settled, event_id="e2", occurred_on=DAY)
    assert set(books.ledger.entries) == {"settlement:S2", "settlement-reversal:S2"}
    assert books.position("H1").fund_payable == 0


CLEARINGS = [
    # carried_in, prepaid, payable, prepaid_balance, payable_balance → net_due, paid, carried_out, offset
    ("0", "1000", "300", "1000", "300", "-700", "0", "-700", "300"),
    ("-700", "0", "900", "700", "900", "200", "200", "0", "700"),
    ("0", "0", "250", "0", "250", "250", "250", "0", "0"),
    ("0", "100", "-40", "100", "-40", "-140", "0", "-140", "0"),
    ("-140", "0", "0", "100", "-40", "-140", "0", "-140", "0"),
    ("0", "0", "0", "0", "0", "0", "0", "0", "0"),
]


@pytest.mark.parametrize("row", CLEARINGS)
def test_clearing_pays_a_positive_net_due_and_carries_a_negative_one(row):
    carried_in, prepaid, payable, p_bal, f_bal, net_due, paid, carried_out, offset = (D(x) for x in row)
    result = postings.clear(
        carried_in=carried_in, prepaid=prepaid, fund_payable=payable, prepaid_balance=p_bal, payable_balance=f_bal
    )
    assert (result.net_due, result.paid, result.carried_out, result.offset) == (net_due, paid, carried_out, offset)
    ledger = Ledger()
    ledger.balances["institution:H1:prepaid"] = p_bal
    ledger.balances["institution:H1:fund_payable"] = -f_bal
    for posted in postings.clearing_entries(result, clearing_id="c1", fixmedins_code="H1", period_end=DAY):
        ledger.post(posted)
    after = postings.position(dict(ledger.balances), "H1")
    assert after.fund_payable - after.prepaid == carried_out


def test_clearing_refuses_balances_that_disagree_with_the_carried_balance():
    with pytest.raises(AssertionError):
        postings.clear(
            carried_in=D("0"), prepaid=D("10"), fund_payable=D("0"), prepaid_balance=D("0"), payable_balance=D("0")
        )


REFERENCE_THRESHOLDS = load_thresholds(None)  # deploy/policy/budget.toml


@pytest.mark.parametrize(
    "used, status",
    [
        ("0.00", "ok"),
        ("799.99", "ok"),
        ("800.00", "warning"),
        ("999.99", "warning"),
        ("1000.00", "exceeded"),
        ("1500.00", "exceeded"),
    ],
)
def test_budget_status_at_80_and_100_percent(used, status):
    """The reference policy file (deploy/policy/budget.toml): warning from 80 %, exceeded from 100 %."""
    ratio, got = budget_use(D("1000.00"), D(used), REFERENCE_THRESHOLDS)
    assert got == status
    assert ratio == (D(used) / D("1000.00")).quantize(D("0.0001"))


@pytest.mark.parametrize(
    "used, status", [("899.99", "ok"), ("900.00", "warning"), ("1099.99", "warning"), ("1100.00", "exceeded")]
)
def test_budget_status_follows_the_policy_not_the_code(used, status):
    thresholds = parse_thresholds({"status": {"warning": "0.90", "exceeded": "1.10"}}, source="test")
    assert thresholds == BudgetThresholds(warning=D("0.90"), exceeded=D("1.10"))
    assert budget_use(D("1000.00"), D(used), thresholds)[1] == status


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"status": {"warning": "0.80"}},
        {"status": {"warning": "0.80", "exceeded": "1.00", "other": "1"}},
        {"status": {"warning": 0.8, "exceeded": "1.00"}},
        {"status": {"warning": "x", "exceeded": "1.00"}},
        {"status": {"warning": "0", "exceeded": "1.00"}},
        {"status": {"warning": "1.00", "exceeded": "0.80"}},
        {"status": {"warning": "NaN", "exceeded": "1.00"}},
        {"status": {"warning": "0.80", "exceeded": "1.00"}, "x": {}},
    ],
)
def test_a_wrong_budget_policy_stops_start_up(doc):
    with pytest.raises(BudgetPolicyError):
        parse_thresholds(doc, source="budget.toml")


def test_a_missing_budget_policy_file_is_named(tmp_path):
    with pytest.raises(BudgetPolicyError, match="budget.toml"):
        load_thresholds(tmp_path)
