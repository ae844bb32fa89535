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
- subsidy `subsidy:{setl_id}` (amount S, advance payer A, final shares s_P) —
  Cr institution:{code}:subsidy_receivable S (the hospital is owed S);
  Dr finance:{A}:advanced S (A advances it); Cr finance:{A}:recoverable S − s_A (the other
  levels owe A their shares); Dr finance:{P}:share_due s_P for every P ≠ A.
  A level's net (advanced − recoverable + share_due) is its final share.
- subsidy reversal `subsidy-reversal:{setl_id}` — the opposite.
- prepayment `prepayment:{id}` — Dr institution:{code}:prepaid / Cr bank:fund.
- clearing `clearing:{id}:offset` — Dr institution:{code}:fund_payable / Cr institution:{code}:prepaid;
  `clearing:{id}:payment` — Dr institution:{code}:fund_payable / Cr bank:fund.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.prepayment.facts import ReversalFacts, SettlementFacts, SubsidyFacts
from services.prepayment.ledger import (
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


def apply_settled(facts: SettlementFacts, settlement: SettlementState | None, subsidy: SubsidyState | None) -> Outcome:
    """`settled`: remember the facts (the first ones win); a reversal seen earlier now posts too."""
    state = settlement or SettlementState(setl_id=facts.setl_id, fixmedins_code=facts.fixmedins_code)
    if state.facts is None:
        state = replace(state, facts=facts)
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
    if state.facts is None and rev.original is not None:
        state = replace(state, facts=rev.original)
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


def settlement_entries(state: SettlementState) -> list[JournalEntry]:
    """The settlement entry once its facts are known, and its reversal once reversed."""
    if state.facts is None:
        return []
    settled = settlement_entry(state.facts)
    if settled is None:
        return []
    entries = [settled]
    if state.reversed_on is not None:
        entries.append(
            reversal_of(
                settled,
                ref=f"settlement-reversal:{state.setl_id}",
                kind="settlement-reversal",
                business_date=state.reversed_on,
            )
        )
    return entries


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
    if state.facts is None:
        return []
    due = subsidy_entry(state.facts)
    if due is None:
        return []
    entries = [due]
    if state.reversed_on is not None:
        entries.append(
            reversal_of(
                due, ref=f"subsidy-reversal:{state.setl_id}", kind="subsidy-reversal", business_date=state.reversed_on
            )
        )
    return entries


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
    """

    carried_in: Decimal
    prepaid: Decimal
    fund_payable: Decimal
    net_due: Decimal
    paid: Decimal
    carried_out: Decimal
    offset: Decimal


def clear(
    *, carried_in: Decimal, prepaid: Decimal, fund_payable: Decimal, prepaid_balance: Decimal, payable_balance: Decimal
) -> Clearing:
    """Clear a period: offset prepaid funds against the funds' debt, pay what is left, carry the rest.

    `prepaid`, `fund_payable`: the period's movements; `prepaid_balance` (debit) and
    `payable_balance` (credit): the institution's balances over everything cleared so far plus
    this period, which must agree with the carried balance.
    """
    net_due = carried_in + fund_payable - prepaid
    if payable_balance - prepaid_balance != net_due:
        raise AssertionError(
            f"clearing: balances ({payable_balance} − {prepaid_balance}) disagree with carried + period ({net_due})"
        )
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
    )


def clearing_entries(
    result: Clearing, *, clearing_id: str, fixmedins_code: str, period_end: date
) -> list[JournalEntry]:
    """The offset of prepaid funds and the payment of the net due."""
    payable = institution_account(fixmedins_code, "fund_payable")
    entries = []
    if result.offset:
        entries.append(
            entry(
                ref=f"clearing:{clearing_id}:offset",
                kind="clearing",
                business_date=period_end,
                fixmedins_code=fixmedins_code,
                memo="prepaid funds offset against the funds' debt",
                lines=[dr(payable, result.offset), cr(institution_account(fixmedins_code, "prepaid"), result.offset)],
            )
        )
    if result.paid:
        entries.append(
            entry(
                ref=f"clearing:{clearing_id}:payment",
                kind="clearing",
                business_date=period_end,
                fixmedins_code=fixmedins_code,
                memo="net due paid",
                lines=[dr(payable, result.paid), cr(FUND_BANK, result.paid)],
            )
        )
    return entries


@dataclass(frozen=True, slots=True)
class Position:
    """An institution's position; net = fund_payable + subsidy_receivable − prepaid (> 0: it is owed)."""

    prepaid: Decimal
    fund_payable: Decimal
    subsidy_receivable: Decimal

    @property
    def net(self) -> Decimal:
        return self.fund_payable + self.subsidy_receivable - self.prepaid


def position(balances: dict[str, Decimal], fixmedins_code: str) -> Position:
    """Read an institution's position off its accounts' balances (credits are what it is owed)."""

    def balance(name: str) -> Decimal:
        return balances.get(institution_account(fixmedins_code, name), ZERO)

    return Position(
        prepaid=balance("prepaid"),
        fund_payable=-balance("fund_payable"),
        subsidy_receivable=-balance("subsidy_receivable"),
    )
