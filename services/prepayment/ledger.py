"""A pure double-entry ledger: accounts, balanced journal entries, balances and the trial balance.

Sign convention (one for every account): an account's balance is Σ debits − Σ credits.
A **debit** balance means the party behind the account owes, or holds money it must account
for (a fund's expenditure, a finance level's advance, an institution's prepaid funds);
a **credit** balance means the party is owed (an institution's claim on the funds or on
finance, a finance level's claim on the other levels). Every entry balances, so the sum of
all balances is zero and the trial balance's debits equal its credits.

No I/O here: the store persists exactly these values and re-checks them in the database.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from shared.money import FEN, ZERO

FUNDS = ("hifp", "hifmi", "maf")  # basic fund, critical illness, medical aid (tilted aid included)
FINANCE_LEVELS = ("central", "provincial", "city", "county")
ADVANCE_PAYERS = ("city", "county")
FINANCE_POSITIONS = ("advanced", "recoverable", "share_due", "paid")
INSTITUTION_POSITIONS = ("prepaid", "fund_payable", "acct_payable", "subsidy_receivable")
FUND_BANK = "bank:fund"
# The personal-account fund is a book of its own (DOMAIN §7: pool and account are separate books): what it incurred
# at institutions (debit) and its payment account, which pays the institutions at clearing.
ACCOUNT_FUND = "account_fund:payments"
ACCOUNT_FUND_BANK = "bank:account_fund"
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
_CODE = re.compile(CODE_PATTERN)


class LedgerError(ValueError):
    """An entry that may not be posted (unbalanced, negative, malformed)."""


def fund_account(fund: str) -> str:
    """`fund:hifp` — what the fund spends on settlements (debit = it owes institutions)."""
    if fund not in FUNDS:
        raise LedgerError(f"unknown fund {fund!r}")
    return f"fund:{fund}"


def finance_account(level: str, position: str) -> str:
    """`finance:city:advanced` — a finance level's advances, recoverable advances, shares due, or what it paid."""
    if level not in FINANCE_LEVELS:
        raise LedgerError(f"unknown finance level {level!r}")
    if position not in FINANCE_POSITIONS:
        raise LedgerError(f"unknown finance position {position!r}")
    return f"finance:{level}:{position}"


def institution_account(code: str, position: str) -> str:
    """`institution:H1:prepaid` — an institution's prepaid funds and its claims."""
    if not _CODE.match(code or ""):
        raise LedgerError(f"bad institution code {code!r}")
    if position not in INSTITUTION_POSITIONS:
        raise LedgerError(f"unknown institution position {position!r}")
    return f"institution:{code}:{position}"


def _money(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LedgerError(f"amount {value!r} is not a finite Decimal")
    if value != value.quantize(FEN):
        raise LedgerError(f"amount {value} has more than two decimals")
    return value.quantize(FEN)


@dataclass(frozen=True, slots=True)
class Line:
    """One side of an entry: an account and a positive amount on the debit or the credit side."""

    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def signed(self) -> Decimal:
        """Debit positive, credit negative."""
        return self.debit - self.credit


def dr(account: str, amount: Decimal) -> Line:
    return Line(account, debit=amount)


def cr(account: str, amount: Decimal) -> Line:
    return Line(account, credit=amount)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced posting. `ref` names it uniquely, which makes posting it idempotent."""

    ref: str
    kind: str
    business_date: date
    lines: tuple[Line, ...]
    fixmedins_code: str | None = None
    setl_id: str | None = None
    memo: str = ""

    @property
    def total(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)


def entry(
    *,
    ref: str,
    kind: str,
    business_date: date,
    lines: Iterable[Line],
    fixmedins_code: str | None = None,
    setl_id: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """Build a checked entry: zero lines dropped, same-account lines kept apart, Σ debits = Σ credits."""
    if not ref or len(ref) > 120:
        raise LedgerError("an entry needs a ref of at most 120 characters")
    kept: list[Line] = []
    for line in lines:
        debit, credit = _money(line.debit), _money(line.credit)
        if debit < 0 or credit < 0:
            raise LedgerError(f"{line.account}: amounts are never negative (swap the side instead)")
        if debit and credit:
            raise LedgerError(f"{line.account}: a line is either a debit or a credit")
        if not line.account or len(line.account) > 96:
            raise LedgerError("bad account name")
        if debit or credit:
            kept.append(Line(line.account, debit, credit))
    if not kept:
        raise LedgerError(f"entry {ref} has no non-zero line")
    debits = sum((line.debit for line in kept), ZERO)
    credits = sum((line.credit for line in kept), ZERO)
    if debits != credits:
        raise LedgerError(f"entry {ref} does not balance: debits {debits} ≠ credits {credits}")
    return JournalEntry(
        ref=ref,
        kind=kind,
        business_date=business_date,
        lines=tuple(kept),
        fixmedins_code=fixmedins_code,
        setl_id=setl_id,
        memo=memo,
    )


def reversal_of(original: JournalEntry, *, ref: str, kind: str, business_date: date) -> JournalEntry:
    """The opposite entry: every debit becomes a credit and vice versa."""
    return entry(
        ref=ref,
        kind=kind,
        business_date=business_date,
        lines=[Line(line.account, debit=line.credit, credit=line.debit) for line in original.lines],
        fixmedins_code=original.fixmedins_code,
        setl_id=original.setl_id,
        memo=f"reversal of {original.ref}",
    )


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """Every account's balance; `debits` sums the debit balances, `credits` the credit balances."""

    debits: Decimal
    credits: Decimal
    accounts: tuple[tuple[str, Decimal], ...]

    @property
    def balanced(self) -> bool:
        return self.debits == self.credits


def trial_balance(balances: Mapping[str, Decimal]) -> TrialBalance:
    """The trial balance of a set of balances (accounts at zero are listed too)."""
    debits = sum((b for b in balances.values() if b > 0), ZERO)
    credits = sum((-b for b in balances.values() if b < 0), ZERO)
    return TrialBalance(debits=debits, credits=credits, accounts=tuple(sorted(balances.items())))


@dataclass
class Ledger:
    """An in-memory ledger with the same semantics as the stored one (used by the pure model)."""

    entries: dict[str, JournalEntry] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def post(self, posted: JournalEntry) -> bool:
        """Post once: an entry whose ref is already in the ledger is ignored. True if it was new."""
        if posted.ref in self.entries:
            return False
        if posted.total != sum((line.credit for line in posted.lines), ZERO):
            raise LedgerError(f"entry {posted.ref} does not balance")
        self.entries[posted.ref] = posted
        for line in posted.lines:
            self.balances[line.account] += line.signed
        return True

    def has(self, ref: str) -> bool:
        return ref in self.entries

    def balance(self, account: str) -> Decimal:
        return self.balances.get(account, ZERO)

    def trial_balance(self) -> TrialBalance:
        return trial_balance(self.balances)
