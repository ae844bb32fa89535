"""Clearing (清算): per institution and period, what the funds owe after its prepayments.

A clearing of [period_start, period_end] takes every not yet cleared settlement, reversal and
prepayment entry of the institution dated up to period_end (so a late event dated in an
already cleared period is picked up by the next clearing), then

    net_due = carried_in + fund_payable − prepaid

offsets the prepaid funds against the funds' debt, pays a positive net due
(`clearing:{id}:payment`, Dr fund_payable / Cr bank:fund) and carries a negative one
(prepayments not yet used) into the next period. The same period again returns the stored
clearing and posts nothing; a period overlapping or preceding an earlier clearing is a 409.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prepayment import postings, store
from services.prepayment.ledger import institution_account
from services.prepayment.models import clearings, journal_entries, journal_lines
from services.prepayment.schemas import ClearingOut
from shared.money import ZERO
from shared.problems import Problem

CLEARED_KINDS = ("settlement", "settlement-reversal", "prepayment")
MAX_INSTITUTIONS = 5000


def view(row) -> dict:
    return ClearingOut(clearing_id=row.clearing_id, fixmedins_code=row.fixmedins_code, period_start=row.period_start,
                       period_end=row.period_end, carried_in=row.carried_in, prepaid=row.prepaid,
                       fund_payable=row.fund_payable, net_due=row.net_due, paid=row.paid,
                       carried_out=row.carried_out).model_dump(mode="json")


async def _sums(session: AsyncSession, code: str, where) -> tuple[Decimal, Decimal]:
    """(prepaid debit balance, fund_payable credit balance) over the institution's entries matching `where`."""
    e, lines = journal_entries, journal_lines
    prepaid, payable = institution_account(code, "prepaid"), institution_account(code, "fund_payable")
    signed = lines.c.debit - lines.c.credit
    row = (await session.execute(
        select(func.coalesce(func.sum(case((lines.c.account == prepaid, signed), else_=0)), 0),
               func.coalesce(func.sum(case((lines.c.account == payable, -signed), else_=0)), 0))
        .select_from(lines.join(e, e.c.entry_id == lines.c.entry_id))
        .where(e.c.fixmedins_code == code, lines.c.account.in_([prepaid, payable]), where))).one()
    return Decimal(row[0]), Decimal(row[1])


async def clear_institution(session: AsyncSession, code: str, *, period_start: date, period_end: date) -> tuple[dict, bool]:
    """Clear one institution's period (or return the stored clearing of the same period); True if new."""
    await store.lock(session, store.LOCK_INSTITUTION, code)
    c = clearings
    same = (await session.execute(select(c).where(c.c.fixmedins_code == code, c.c.period_start == period_start,
                                                  c.c.period_end == period_end))).first()
    if same is not None:
        return view(same), False
    last = (await session.execute(select(c).where(c.c.fixmedins_code == code)
                                  .order_by(c.c.period_end.desc()).limit(1))).first()
    if last is not None and period_start <= last.period_end:
        raise Problem(409, "CLEARING_PERIOD_OVERLAP",
                      f"institution {code} is cleared through {last.period_end}; "
                      f"the next period starts after that day")
    clearing_id = str(uuid.uuid4())
    await session.execute(update(journal_entries).where(
        journal_entries.c.fixmedins_code == code, journal_entries.c.clearing_id.is_(None),
        journal_entries.c.business_date <= period_end, journal_entries.c.kind.in_(CLEARED_KINDS),
    ).values(clearing_id=clearing_id))
    prepaid, fund_payable = await _sums(session, code, journal_entries.c.clearing_id == clearing_id)
    prepaid_balance, payable_balance = await _sums(session, code, journal_entries.c.clearing_id.is_not(None))
    result = postings.clear(carried_in=last.carried_out if last is not None else ZERO, prepaid=prepaid,
                            fund_payable=fund_payable, prepaid_balance=prepaid_balance,
                            payable_balance=payable_balance)
    await store.post(session, postings.clearing_entries(result, clearing_id=clearing_id, fixmedins_code=code,
                                                        period_end=period_end), clearing_id=clearing_id)
    row = (await session.execute(insert(c).values(
        clearing_id=clearing_id, fixmedins_code=code, period_start=period_start, period_end=period_end,
        carried_in=result.carried_in, prepaid=result.prepaid, fund_payable=result.fund_payable,
        net_due=result.net_due, paid=result.paid, carried_out=result.carried_out, offset=result.offset,
    ).returning(*c.c))).one()
    return view(row), True


async def run(session: AsyncSession, *, period_start: date, period_end: date,
              fixmedins_code: str | None) -> tuple[dict, bool]:
    """Clear one institution, or every institution known here; True if any clearing is new."""
    if fixmedins_code is not None:
        store.check_code_known(await store.institution_known(session, fixmedins_code), fixmedins_code)
        codes = [fixmedins_code]
    else:
        codes = await store.known_codes(session)
        if len(codes) > MAX_INSTITUTIONS:
            raise Problem(422, "TOO_MANY_INSTITUTIONS", f"clear at most {MAX_INSTITUTIONS} institutions at once; "
                                                        "name one with fixmedins_code")
    results, created = [], False
    for code in codes:  # sorted: locks are always taken in the same order
        result, new = await clear_institution(session, code, period_start=period_start, period_end=period_end)
        results.append(result)
        created = created or new
    return {"period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
            "clearings": results}, created


async def history(session: AsyncSession, *, fixmedins_code: str | None, limit: int) -> list[dict]:
    c = clearings
    query = select(c).order_by(c.c.fixmedins_code, c.c.period_end).limit(limit)
    if fixmedins_code is not None:
        query = query.where(and_(c.c.fixmedins_code == fixmedins_code))
    return [view(row) for row in (await session.execute(query)).all()]
