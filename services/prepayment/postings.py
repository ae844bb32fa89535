"""Which journal entries each fact makes (pure).

The books are a function of what is known per settlement: the settlement's facts (from
`settled`, or from the `original` inside `settlement-reversed`), whether it was reversed, and
its COVID subsidy (from `subsidy-due`) and whether that was reversed. Every entry has a
deterministic `ref`, and posting a ref twice is a no-op, so applying an event means: merge it
into the per-`setl_id` state, then post every entry the state implies. Duplicates and any
arrival order (a reversal before its settlement, a subsidy reversal before the subsidy) end
in the same books.

Entries (Dr = debit, Cr = credit; see `ledger` for the sign convention):

- settlement `settlement:{setl_id}` — Dr fund:hifp hifp_pay, Dr fund:hifmi hifmi_pay,
  Dr fund:maf maf_pay + tilt_aid_pay; Cr institution:{code}:fund_payable fund_pay_sumamt.
- reversal `settlement-reversal:{setl_id}` — the same lines on the opposite sides.
- account payment `account-payment:{setl_id}` (the personal account's part, own and family, DOMAIN §7: its own
  book) — Dr account_fund:payments acct_pay / Cr institution:{code}:acct_payable; its reversal
  `account-payment-reversal:{setl_id}` the opposite. A settlement stored before account payments were booked
  (acct_pay unknown) gets them when any later event of it carries its acct_pay (the re-announcement of
  settlement's migration 0006).
- subsidy `subsidy:{setl_id}` (amount S, advance payer A, final shares s_P) —
  Cr institution:{code}:subsidy_receivable S (the hospital is owed S);
  Dr finance:{A}:advanced S (A advances it); Cr finance:{A}:recoverable S − s_A (the other
  levels owe A their shares); Dr finance:{P}:share_due s_P for every P ≠ A.
  A level's net (advanced − recoverable + share_due) is its final share.
- subsidy reversal `subsidy-reversal:{setl_id}` — the opposite.
- prepayment `prepayment:{id}` — Dr institution:{code}:prepaid / Cr bank:fund.
- clearing `clearing:{id}:offset` — Dr institution:{code}:fund_payable / Cr institution:{code}:prepaid;
  `clearing:{id}:payment` — Dr institution:{code}:fund_payable / Cr bank:fund;
  `clearing:{id}:acct-payment` — Dr institution:{code}:acct_payable / Cr bank:account_fund.
- finance payment `subsidy-payment:{ref}` — to a hospital by the level that advanced its subsidy:
  Dr institution:{code}:subsidy_receivable / Cr finance:{payer}:paid; a level's share to the level that advanced
  it: Dr finance:{advancer}:recoverable / Cr finance:{payer}:paid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.prepayment.facts import ReversalFacts, SettlementFacts, SubsidyFacts
from services.prepayment.ledger import (
    ACCOUNT_FUND,
    ACCOUNT_FUND_BANK,
    FUND_BANK,
    JournalEntry,
    cr,
    dr,
    entry,
    finance_account,
    fund_account,
    institution_account,
    reversal_of,
)
from shared.money import ZERO


@dataclass(frozen=True, slots=True)
class SettlementState:
    """Everything known about one settlement; `facts` may be missing while only a bare reversal arrived."""

    setl_id: str
    fixmedins_code: str
    facts: SettlementFacts | None = None
    reversed_on: date | None = None


@dataclass(frozen=True, slots=True)
class SubsidyState:
    """Everything known about one settlement's COVID subsidy."""

    setl_id: str
    fixmedins_code: str
    facts: SubsidyFacts | None = None
    reversed_on: date | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The new states and every entry they imply (posting is idempotent by ref)."""

    settlement: SettlementState | None
    subsidy: SubsidyState | None
    entries: tuple[JournalEntry, ...]


def _outcome(settlement: SettlementState | None, subsidy: SubsidyState | None) -> Outcome:
    entries = (settlement_entries(settlement) if settlement else []) + (subsidy_entries(subsidy) if subsidy else [])
    return Outcome(settlement=settlement, subsidy=subsidy, entries=tuple(entries))


def _has_subsidy(facts: SettlementFacts | None) -> bool:
    return facts is not None and facts.fin_subsidy_pay > 0


def _reverse_subsidy(subsidy: SubsidyState | None, state: SettlementState) -> SubsidyState:
    on = state.reversed_on
    current = subsidy or SubsidyState(setl_id=state.setl_id, fixmedins_code=state.fixmedins_code)
    return current if current.reversed_on else replace(current, reversed_on=on)


def _learn(known: SettlementFacts | None, new: SettlementFacts | None) -> SettlementFacts | None:
    """The first facts win; the account part is learnt from a later event when the stored facts lack it."""
    if known is None:
        return new
    if known.acct_pay is None and new is not None and new.acct_pay is not None:
        return replace(known, acct_pay=new.acct_pay)
    return known


def apply_settled(facts: SettlementFacts, settlement: SettlementState | None, subsidy: SubsidyState | None) -> Outcome:
    """`settled`: remember the facts (the first ones win); a reversal seen earlier now posts too."""
    state = settlement or SettlementState(setl_id=facts.setl_id, fixmedins_code=facts.fixmedins_code)
    if state.facts != (learnt := _learn(state.facts, facts)):
        state = replace(state, facts=learnt)
    if state.reversed_on and _has_subsidy(state.facts):
        subsidy = _reverse_subsidy(subsidy, state)
    return _outcome(state, subsidy)


def apply_settlement_reversed(
    rev: ReversalFacts, settlement: SettlementState | None, subsidy: SubsidyState | None
) -> Outcome:
    """`settlement-reversed`: mark reversed; the original it carries stands in for a late `settled`.

    A reversed COVID settlement also nets out its subsidy (at most once, whichever of this
    event and the `subsidy-due` reversal comes first).
    """
    state = settlement or SettlementState(setl_id=rev.setl_id, fixmedins_code=rev.fixmedins_code)
    if state.facts != (learnt := _learn(state.facts, rev.original)):
        state = replace(state, facts=learnt)
    if state.reversed_on is None:
        state = replace(state, reversed_on=rev.rev_date)
    if subsidy is not None or _has_subsidy(state.facts):
        subsidy = _reverse_subsidy(subsidy, state)
    return _outcome(state, subsidy)


def apply_subsidy_due(
    facts: SubsidyFacts, *, reversal_day: date, settlement: SettlementState | None, subsidy: SubsidyState | None
) -> Outcome:
    """`subsidy-due`: remember the split; with `reversal: true` (same amounts), or when the settlement
    was already reversed, it also nets it out."""
    state = subsidy or SubsidyState(setl_id=facts.setl_id, fixmedins_code=facts.fixmedins_code)
    if state.facts is None:
        state = replace(state, facts=replace(facts, reversal=False))
    if facts.reversal and state.reversed_on is None:
        state = replace(state, reversed_on=reversal_day)
    if settlement is not None and settlement.reversed_on and state.reversed_on is None:
        state = replace(state, reversed_on=settlement.reversed_on)
    return _outcome(settlement, state)


def settlement_entry(facts: SettlementFacts) -> JournalEntry | None:
    """What the funds owe the institution for one settlement (None when the funds paid nothing)."""
    if facts.fund_pay_sumamt == 0:
        return None
    return entry(
        ref=f"settlement:{facts.setl_id}",
        kind="settlement",
        business_date=facts.setl_date,
        fixmedins_code=facts.fixmedins_code,
        setl_id=facts.setl_id,
        lines=[
            dr(fund_account("hifp"), facts.hifp_pay),
            dr(fund_account("hifmi"), facts.hifmi_pay),
            dr(fund_account("maf"), facts.aid_pay),
            cr(institution_account(facts.fixmedins_code, "fund_payable"), facts.fund_pay_sumamt),
        ],
    )


def account_entry(facts: SettlementFacts) -> JournalEntry | None:
    """What the personal-account fund owes the institution for one settlement (None when the account paid nothing)."""
    if not facts.acct_pay:
        return None
    return entry(
        ref=f"account-payment:{facts.setl_id}",
        kind="account-payment",
        business_date=facts.setl_date,
        fixmedins_code=facts.fixmedins_code,
        setl_id=facts.setl_id,
        memo="personal account (own and family payments)",
        lines=[
            dr(ACCOUNT_FUND, facts.acct_pay),
            cr(institution_account(facts.fixmedins_code, "acct_payable"), facts.acct_pay),
        ],
    )


def _posted(
    made: tuple[tuple[JournalEntry | None, str], ...], *, setl_id: str, reversed_on: date | None
) -> list[JournalEntry]:
    """The entries made (None: nothing to post) and, once reversed, the reversal of each (`{kind}-reversal`)."""
    entries = []
    for posted, kind in made:
        if posted is None:
            continue
        entries.append(posted)
        if reversed_on is not None:
            entries.append(
                reversal_of(
                    posted, ref=f"{kind}-reversal:{setl_id}", kind=f"{kind}-reversal", business_date=reversed_on
                )
            )
    return entries


def settlement_entries(state: SettlementState) -> list[JournalEntry]:
    """The settlement's entries (the funds', the account's) once its facts are known, and their reversals once
    reversed."""
    if state.facts is None:
        return []
    made = ((settlement_entry(state.facts), "settlement"), (account_entry(state.facts), "account-payment"))
    return _posted(made, setl_id=state.setl_id, reversed_on=state.reversed_on)


def subsidy_entry(facts: SubsidyFacts) -> JournalEntry | None:
    """The hospital's claim on finance, the advance and who finally owes which share."""
    if facts.amount == 0:
        return None
    advance = facts.advance_payer
    lines = [
        cr(institution_account(facts.fixmedins_code, "subsidy_receivable"), facts.amount),
        dr(finance_account(advance, "advanced"), facts.amount),
        cr(finance_account(advance, "recoverable"), facts.amount - facts.share_of(advance)),
    ]
    lines += [dr(finance_account(payer, "share_due"), amount) for payer, amount in facts.shares if payer != advance]
    return entry(
        ref=f"subsidy:{facts.setl_id}",
        kind="subsidy",
        business_date=facts.setl_date,
        fixmedins_code=facts.fixmedins_code,
        setl_id=facts.setl_id,
        lines=lines,
        memo=f"{facts.case_status}, advanced by {advance}",
    )


def subsidy_entries(state: SubsidyState) -> list[JournalEntry]:
    """The subsidy's entry once its facts are known, and its reversal once reversed."""
    if state.facts is None:
        return []
    return _posted(((subsidy_entry(state.facts), "subsidy"),), setl_id=state.setl_id, reversed_on=state.reversed_on)


def prepayment_entry(
    *, prepayment_id: str, fixmedins_code: str, amount: Decimal, disbursed_on: date, kind: str
) -> JournalEntry:
    """Money paid ahead to an institution out of the fund's payment account."""
    return entry(
        ref=f"prepayment:{prepayment_id}",
        kind="prepayment",
        business_date=disbursed_on,
        fixmedins_code=fixmedins_code,
        memo=kind,
        lines=[dr(institution_account(fixmedins_code, "prepaid"), amount), cr(FUND_BANK, amount)],
    )


@dataclass(frozen=True, slots=True)
class Clearing:
    """One institution's clearing of a period (amounts from the institution's point of view).

    `net_due` = carried_in + fund_payable − prepaid. A positive net due is paid to the
    institution (`paid`); a negative one (prepayments above what the funds owe) is carried
    into the next period (`carried_out`, ≤ 0).

    The personal-account fund's part is its own book (prepayments are the pool's money and never offset it):
    `acct_due` = acct_carried_in + acct_payable is paid when positive (`acct_paid`), carried when negative (a
    reversal of a settlement cleared before).
    """

    carried_in: Decimal
    prepaid: Decimal
    fund_payable: Decimal
    net_due: Decimal
    paid: Decimal
    carried_out: Decimal
    offset: Decimal
    acct_carried_in: Decimal = ZERO
    acct_payable: Decimal = ZERO
    acct_due: Decimal = ZERO
    acct_paid: Decimal = ZERO
    acct_carried_out: Decimal = ZERO

    @property
    def total_paid(self) -> Decimal:
        """What the institution receives: the funds' payment and the account fund's."""
        return self.paid + self.acct_paid


def clear(
    *,
    carried_in: Decimal,
    prepaid: Decimal,
    fund_payable: Decimal,
    prepaid_balance: Decimal,
    payable_balance: Decimal,
    acct_carried_in: Decimal = ZERO,
    acct_payable: Decimal = ZERO,
    acct_balance: Decimal | None = None,
) -> Clearing:
    """Clear a period: offset prepaid funds against the funds' debt, pay what is left, carry the rest; pay the
    account fund's part on its own.

    `prepaid`, `fund_payable`, `acct_payable`: the period's movements; `prepaid_balance` (debit),
    `payable_balance` and `acct_balance` (credit): the institution's balances over everything cleared so far plus
    this period, which must agree with the carried balances.
    """
    net_due = carried_in + fund_payable - prepaid
    if payable_balance - prepaid_balance != net_due:
        raise AssertionError(
            f"clearing: balances ({payable_balance} − {prepaid_balance}) disagree with carried + period ({net_due})"
        )
    acct_due = acct_carried_in + acct_payable
    if acct_balance is not None and acct_balance != acct_due:
        raise AssertionError(f"clearing: account balance {acct_balance} disagrees with carried + period ({acct_due})")
    offset = min(prepaid_balance, payable_balance) if prepaid_balance > 0 and payable_balance > 0 else ZERO
    paid = max(net_due, ZERO)
    return Clearing(
        carried_in=carried_in,
        prepaid=prepaid,
        fund_payable=fund_payable,
        net_due=net_due,
        paid=paid,
        carried_out=min(net_due, ZERO),
        offset=offset,
        acct_carried_in=acct_carried_in,
        acct_payable=acct_payable,
        acct_due=acct_due,
        acct_paid=max(acct_due, ZERO),
        acct_carried_out=min(acct_due, ZERO),
    )


def clearing_entries(
    result: Clearing, *, clearing_id: str, fixmedins_code: str, period_end: date
) -> list[JournalEntry]:
    """The offset of prepaid funds, the payment of the net due and the account fund's payment (each when not 0)."""
    payable = institution_account(fixmedins_code, "fund_payable")
    moves = (  # (ref suffix, amount, debit, credit, memo)
        (
            "offset",
            result.offset,
            payable,
            institution_account(fixmedins_code, "prepaid"),
            "prepaid funds offset against the funds' debt",
        ),
        ("payment", result.paid, payable, FUND_BANK, "net due paid"),
        (
            "acct-payment",
            result.acct_paid,
            institution_account(fixmedins_code, "acct_payable"),
            ACCOUNT_FUND_BANK,
            "personal account payments paid by the account fund",
        ),
    )
    return [
        entry(
            ref=f"clearing:{clearing_id}:{suffix}",
            kind="clearing",
            business_date=period_end,
            fixmedins_code=fixmedins_code,
            memo=memo,
            lines=[dr(debit, amount), cr(credit, amount)],
        )
        for suffix, amount, debit, credit, memo in moves
        if amount
    ]


@dataclass(frozen=True, slots=True)
class Position:
    """An institution's position; net = fund_payable + acct_payable + subsidy_receivable − prepaid (> 0: it is
    owed)."""

    prepaid: Decimal
    fund_payable: Decimal
    subsidy_receivable: Decimal
    acct_payable: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.fund_payable + self.acct_payable + self.subsidy_receivable - self.prepaid


def position(balances: dict[str, Decimal], fixmedins_code: str) -> Position:
    """Read an institution's position off its accounts' balances (credits are what it is owed)."""

    def balance(name: str) -> Decimal:
        return balances.get(institution_account(fixmedins_code, name), ZERO)

    return Position(
        prepaid=balance("prepaid"),
        fund_payable=-balance("fund_payable"),
        subsidy_receivable=-balance("subsidy_receivable"),
        acct_payable=-balance("acct_payable"),
    )


def subsidy_payment_entry(
    *, ref: str, payer: str, amount: Decimal, paid_on: date, to_fixmedins_code: str | None, to_level: str | None
) -> JournalEntry:
    """Finance pays its share: a hospital its subsidy (by the level that advanced it), or a level its share to the
    level that advanced it. The payer's `paid` grows; the hospital's receivable, or the advancer's recoverable,
    falls."""
    if (to_fixmedins_code is None) == (to_level is None):
        raise ValueError("a payment goes to a hospital or to a level")
    if to_fixmedins_code is not None:
        receiver = institution_account(to_fixmedins_code, "subsidy_receivable")
        memo = f"{payer} pays hospital {to_fixmedins_code} its COVID subsidy"
    else:
        receiver = finance_account(str(to_level), "recoverable")
        memo = f"{payer} pays its share to {to_level}"
    return entry(
        ref=f"subsidy-payment:{ref}",
        kind="subsidy-payment",
        business_date=paid_on,
        fixmedins_code=to_fixmedins_code,
        memo=memo,
        lines=[dr(receiver, amount), cr(finance_account(payer, "paid"), amount)],
    )
