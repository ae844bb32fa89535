"""Clearing (清算): per institution and period, what the funds owe after its prepayments.

A clearing of [period_start, period_end] takes every not yet cleared settlement, account payment, reversal and
prepayment entry of the institution dated up to period_end (so a late event dated in an
already cleared period is picked up by the next clearing), then

    net_due = carried_in + fund_payable − prepaid

offsets the prepaid funds against the funds' debt, pays a positive net due
(`clearing:{id}:payment`, Dr fund_payable / Cr bank:fund) and carries a negative one
(prepayments not yet used) into the next period. The personal-account fund's part is a book of its own:
acct_due = acct_carried_in + acct_payable is paid by the account fund (`clearing:{id}:acct-payment`, Dr
acct_payable / Cr bank:account_fund) when positive, carried when negative. The same period again returns the stored
clearing and posts nothing; a period overlapping or preceding an earlier clearing is a 409.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from services.prepayment import postings, store
from services.prepayment.ledger import institution_account
from services.prepayment.schemas import ClearingOut, stored_answer
from shared.db import Row, Sql, Unit
from shared.money import ZERO
from shared.problems import Problem

CLEARED_KINDS = ("settlement", "settlement-reversal", "account-payment", "account-payment-reversal", "prepayment")
MAX_INSTITUTIONS = 5000

_SAME = Sql("""
SELECT * FROM clearings WHERE fixmedins_code = :code AND period_start = :period_start AND period_end = :period_end
""")
_LAST = Sql("SELECT * FROM clearings WHERE fixmedins_code = :code ORDER BY period_end DESC LIMIT 1")
_TAKE = Sql("""
UPDATE journal_entries SET clearing_id = :clearing_id
 WHERE fixmedins_code = :code AND clearing_id IS NULL AND business_date <= :period_end
   AND kind = ANY(CAST(:kinds AS text[]))
""")
# The period's movements (entries of this clearing) and the balances over everything cleared so far:
# prepaid as a debit balance, fund_payable as a credit balance.
_SUMS = Sql("""
SELECT coalesce(sum(l.debit - l.credit) FILTER (WHERE l.account = :prepaid AND e.clearing_id = :clearing_id), 0)
           AS prepaid,
       coalesce(sum(l.credit - l.debit) FILTER (WHERE l.account = :payable AND e.clearing_id = :clearing_id), 0)
           AS fund_payable,
       coalesce(sum(l.debit - l.credit) FILTER (WHERE l.account = :prepaid), 0) AS prepaid_balance,
       coalesce(sum(l.credit - l.debit) FILTER (WHERE l.account = :payable), 0) AS payable_balance,
       coalesce(sum(l.credit - l.debit) FILTER (WHERE l.account = :acct AND e.clearing_id = :clearing_id), 0)
           AS acct_payable,
       coalesce(sum(l.credit - l.debit) FILTER (WHERE l.account = :acct), 0) AS acct_balance,
       coalesce(sum(l.credit - l.debit) FILTER (
           WHERE l.account = :payable AND e.clearing_id = :clearing_id AND s.covid_status IS NOT NULL), 0)
           AS covid_fund_payable
  FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
  LEFT JOIN settlements s ON s.setl_id = e.setl_id
 WHERE e.fixmedins_code = :code AND l.account IN (:prepaid, :payable, :acct) AND e.clearing_id IS NOT NULL
""")
_ADD = Sql("""
INSERT INTO clearings (clearing_id, fixmedins_code, period_start, period_end, carried_in, prepaid, fund_payable,
                       net_due, paid, carried_out, "offset", acct_carried_in, acct_payable, acct_paid, acct_carried_out,
                       covid_fund_payable)
VALUES (:clearing_id, :code, :period_start, :period_end, :carried_in, :prepaid, :fund_payable,
        :net_due, :paid, :carried_out, :offset, :acct_carried_in, :acct_payable, :acct_paid, :acct_carried_out,
        :covid_fund_payable)
RETURNING *
""")
_HISTORY = Sql("""
SELECT * FROM clearings WHERE CAST(:code AS text) IS NULL OR fixmedins_code = :code
 ORDER BY fixmedins_code, period_end LIMIT :limit
""")


def view(row: Row) -> dict[str, Any]:
    return stored_answer(ClearingOut, row, total_paid=row.paid + row.acct_paid)


async def clear_institution(
    unit: Unit, code: str, *, period_start: date, period_end: date
) -> tuple[dict[str, Any], bool]:
    """Clear one institution's period (or return the stored clearing of the same period); True if new."""
    await store.lock(unit, store.LOCK_INSTITUTION, code)
    same = await unit.fetchrow(_SAME, code=code, period_start=period_start, period_end=period_end)
    if same is not None:
        return view(same), False
    last = await unit.fetchrow(_LAST, code=code)
    if last is not None and period_start <= last.period_end:
        raise Problem(
            409,
            "CLEARING_PERIOD_OVERLAP",
            f"institution {code} is cleared through {last.period_end}; the next period starts after that day",
        )
    clearing_id = str(uuid.uuid4())
    await unit.execute(_TAKE, clearing_id=clearing_id, code=code, period_end=period_end, kinds=list(CLEARED_KINDS))
    sums = await unit.fetchrow(
        _SUMS,
        code=code,
        clearing_id=clearing_id,
        prepaid=institution_account(code, "prepaid"),
        payable=institution_account(code, "fund_payable"),
        acct=institution_account(code, "acct_payable"),
    )
    result = postings.clear(
        carried_in=last.carried_out if last is not None else ZERO,
        prepaid=sums.prepaid,
        fund_payable=sums.fund_payable,
        prepaid_balance=sums.prepaid_balance,
        payable_balance=sums.payable_balance,
        acct_carried_in=last.acct_carried_out if last is not None else ZERO,
        acct_payable=sums.acct_payable,
        acct_balance=sums.acct_balance,
    )
    await store.post(
        unit,
        postings.clearing_entries(result, clearing_id=clearing_id, fixmedins_code=code, period_end=period_end),
        clearing_id=clearing_id,
    )
    row = await unit.fetchrow(
        _ADD,
        clearing_id=clearing_id,
        code=code,
        period_start=period_start,
        period_end=period_end,
        carried_in=result.carried_in,
        prepaid=result.prepaid,
        fund_payable=result.fund_payable,
        net_due=result.net_due,
        paid=result.paid,
        carried_out=result.carried_out,
        offset=result.offset,
        acct_carried_in=result.acct_carried_in,
        acct_payable=result.acct_payable,
        acct_paid=result.acct_paid,
        acct_carried_out=result.acct_carried_out,
        covid_fund_payable=sums.covid_fund_payable,
    )
    return view(row), True


async def run(
    unit: Unit, *, period_start: date, period_end: date, fixmedins_code: str | None
) -> tuple[dict[str, Any], bool]:
    """Clear one institution, or every institution known here; True if any clearing is new."""
    if fixmedins_code is not None:
        store.check_code_known(await store.institution_known(unit, fixmedins_code), fixmedins_code)
        codes = [fixmedins_code]
    else:
        codes = await store.known_codes(unit)
        if len(codes) > MAX_INSTITUTIONS:
            raise Problem(
                422,
                "TOO_MANY_INSTITUTIONS",
                f"clear at most {MAX_INSTITUTIONS} institutions at once; name one with fixmedins_code",
            )
    results, created = [], False
    for code in codes:  # sorted: locks are always taken in the same order
        result, new = await clear_institution(unit, code, period_start=period_start, period_end=period_end)
        results.append(result)
        created = created or new
    return {
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "clearings": results,
    }, created


async def history(unit: Unit, *, fixmedins_code: str | None, limit: int) -> list[dict[str, Any]]:
    return [view(row) for row in await unit.fetch(_HISTORY, code=fixmedins_code, limit=limit)]
