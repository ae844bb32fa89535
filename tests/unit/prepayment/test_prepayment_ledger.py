"""The pure double-entry model: entries balance, amounts are positive fen, posting is idempotent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.prepayment.ledger import (
    Ledger,
    LedgerError,
    Line,
    cr,
    dr,
    entry,
    finance_account,
    fund_account,
    institution_account,
    reversal_of,
    trial_balance,
)

D = Decimal
DAY = date(2024, 3, 1)


def test_a_balanced_entry_is_accepted_and_zero_lines_dropped():
    posted = entry(
        ref="e1", kind="test", business_date=DAY, lines=[dr("a", D("10.00")), dr("b", D("0.00")), cr("c", D("10.00"))]
    )
    assert [line.account for line in posted.lines] == ["a", "c"]
    assert posted.total == D("10.00")


@pytest.mark.parametrize(
    "lines, message",
    [
        ([dr("a", D("10.00")), cr("b", D("9.99"))], "does not balance"),
        ([dr("a", D("-1.00")), cr("b", D("-1.00"))], "never negative"),
        ([Line("a", debit=D("1.00"), credit=D("1.00")), cr("b", D("0.00"))], "either a debit or a credit"),
        ([dr("a", D("1.001")), cr("b", D("1.001"))], "more than two decimals"),
        ([dr("a", D("0.00")), cr("b", D("0.00"))], "no non-zero line"),
        ([dr("a", 1), cr("b", 1)], "not a finite Decimal"),
        ([dr("a", D("NaN")), cr("b", D("NaN"))], "not a finite Decimal"),
    ],
)
def test_a_bad_entry_is_refused(lines, message):
    with pytest.raises(LedgerError, match=message):
        entry(ref="bad", kind="test", business_date=DAY, lines=lines)


def test_reversal_swaps_every_side():
    original = entry(
        ref="e1", kind="test", business_date=DAY, lines=[dr("a", D("7.00")), dr("b", D("3.00")), cr("c", D("10.00"))]
    )
    opposite = reversal_of(original, ref="e1-rev", kind="rev", business_date=date(2024, 3, 2))
    ledger = Ledger()
    assert ledger.post(original) and ledger.post(opposite)
    assert all(balance == 0 for balance in ledger.balances.values())
    assert opposite.business_date == date(2024, 3, 2)


def test_posting_the_same_ref_twice_changes_nothing():
    ledger = Ledger()
    posted = entry(ref="e1", kind="test", business_date=DAY, lines=[dr("a", D("5.00")), cr("b", D("5.00"))])
    assert ledger.post(posted) is True
    assert ledger.post(posted) is False
    assert ledger.balance("a") == D("5.00") and ledger.balance("b") == D("-5.00")


def test_trial_balance_sums_debit_and_credit_balances():
    result = trial_balance({"a": D("12.00"), "b": D("-2.00"), "c": D("-10.00"), "d": D("0.00")})
    assert result.debits == result.credits == D("12.00")
    assert result.balanced
    assert [name for name, _ in result.accounts] == ["a", "b", "c", "d"]


def test_account_names():
    assert fund_account("hifp") == "fund:hifp"
    assert finance_account("county", "recoverable") == "finance:county:recoverable"
    assert institution_account("H-1_a", "prepaid") == "institution:H-1_a:prepaid"
    for bad in (
        lambda: fund_account("cash"),
        lambda: finance_account("town", "advanced"),
        lambda: finance_account("city", "owes"),
        lambda: institution_account("H:1", "prepaid"),
        lambda: institution_account("H1", "cash"),
    ):
        with pytest.raises(LedgerError):
            bad()
