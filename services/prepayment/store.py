"""The stored ledger and per-settlement state: posting entries, reading balances, positions, subsidies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import and_, func, literal, select, text, union
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prepayment import postings
from services.prepayment.facts import SettlementFacts, SubsidyFacts
from services.prepayment.ledger import (
    FINANCE_LEVELS, INSTITUTION_POSITIONS, JournalEntry, LedgerError, TrialBalance, institution_account, trial_balance,
)
from services.prepayment.models import (
    institutions, journal_entries, journal_lines, settlements, subsidies, subsidy_shares,
)
from shared.money import ZERO
from shared.problems import Problem, not_found

# Advisory-lock namespaces (first key of pg_advisory_xact_lock(int, int)).
LOCK_SETTLEMENT = 0x5942_5001
LOCK_INSTITUTION = 0x5942_5002
MAX_SUBSIDY_ITEMS = 5000


async def lock(session: AsyncSession, namespace: int, name: str) -> None:
    """Serialise work on one settlement or institution until the transaction ends."""
    await session.execute(text("select pg_advisory_xact_lock(:ns, hashtext(:name))"), {"ns": namespace, "name": name})


# ---------------------------------------------------------------- journal

async def post(session: AsyncSession, entries: list[JournalEntry] | tuple[JournalEntry, ...], *,
               clearing_id: str | None = None) -> int:
    """Post entries not yet in the journal (by ref); returns how many were new."""
    new = 0
    for posted in entries:
        debits = sum((line.debit for line in posted.lines), ZERO)
        if debits != sum((line.credit for line in posted.lines), ZERO) or len(posted.lines) < 2:
            raise LedgerError(f"entry {posted.ref} does not balance")
        entry_id = await session.scalar(
            insert(journal_entries).values(ref=posted.ref, kind=posted.kind, business_date=posted.business_date,
                                           fixmedins_code=posted.fixmedins_code, setl_id=posted.setl_id,
                                           memo=posted.memo[:200], clearing_id=clearing_id)
            .on_conflict_do_nothing(index_elements=["ref"]).returning(journal_entries.c.entry_id))
        if entry_id is None:
            continue
        await session.execute(insert(journal_lines), [
            {"entry_id": entry_id, "account": line.account, "debit": line.debit, "credit": line.credit}
            for line in posted.lines])
        new += 1
    return new


async def balances(session: AsyncSession, *, fixmedins_code: str | None = None,
                   accounts: list[str] | None = None) -> dict[str, Decimal]:
    """Balance (debits − credits) per account; optionally only entries of one institution, or some accounts."""
    lines, entries = journal_lines, journal_entries
    query = select(lines.c.account, func.sum(lines.c.debit) - func.sum(lines.c.credit)).group_by(lines.c.account)
    if fixmedins_code is not None:
        query = query.join(entries, entries.c.entry_id == lines.c.entry_id).where(
            entries.c.fixmedins_code == fixmedins_code)
    if accounts is not None:
        query = query.where(lines.c.account.in_(accounts))
    return {account: Decimal(balance) for account, balance in (await session.execute(query)).all()}


async def get_trial_balance(session: AsyncSession, *, fixmedins_code: str | None = None) -> TrialBalance:
    """The trial balance of the whole ledger (or of one institution's entries, which balance too)."""
    result = trial_balance(await balances(session, fixmedins_code=fixmedins_code))
    if not result.balanced:  # the database refuses unbalanced entries; this is the last line of defence
        raise AssertionError(f"trial balance off: debits {result.debits}, credits {result.credits}")
    return result


async def institution_known(session: AsyncSession, code: str) -> bool:
    """Known from `institution-changed`, or named by an event the ledger booked."""
    found = await session.scalar(select(literal(1)).select_from(institutions)
                                 .where(institutions.c.fixmedins_code == code))
    if found:
        return True
    return bool(await session.scalar(select(literal(1)).select_from(journal_entries)
                                     .where(journal_entries.c.fixmedins_code == code).limit(1)))


async def known_codes(session: AsyncSession) -> list[str]:
    """Every institution the service knows of (local copy ∪ institutions in the journal)."""
    query = union(select(institutions.c.fixmedins_code),
                  select(journal_entries.c.fixmedins_code).where(journal_entries.c.fixmedins_code.is_not(None))
                  .distinct())
    return sorted(code for (code,) in (await session.execute(query)).all())


async def get_position(session: AsyncSession, code: str) -> dict:
    """What an institution holds and is owed: {prepaid, fund_payable, subsidy_receivable, net}."""
    if not await institution_known(session, code):
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    accounts = [institution_account(code, name) for name in INSTITUTION_POSITIONS]
    pos = postings.position(await balances(session, accounts=accounts), code)
    return {"fixmedins_code": code, "prepaid": pos.prepaid, "fund_payable": pos.fund_payable,
            "subsidy_receivable": pos.subsidy_receivable, "net": pos.net}


# ---------------------------------------------------------------- per-settlement state

def _settlement_facts(row) -> SettlementFacts | None:
    if not row.known:
        return None
    return SettlementFacts(setl_id=row.setl_id, fixmedins_code=row.fixmedins_code, setl_date=row.setl_date,
                           covid_status=row.covid_status, hifp_pay=row.hifp_pay, hifmi_pay=row.hifmi_pay,
                           maf_pay=row.maf_pay, tilt_aid_pay=row.tilt_aid_pay, fund_pay_sumamt=row.fund_pay_sumamt,
                           fin_subsidy_pay=row.fin_subsidy_pay)


async def load_settlement(session: AsyncSession, setl_id: str) -> postings.SettlementState | None:
    row = (await session.execute(select(settlements).where(settlements.c.setl_id == setl_id))).first()
    if row is None:
        return None
    return postings.SettlementState(setl_id=row.setl_id, fixmedins_code=row.fixmedins_code,
                                    facts=_settlement_facts(row), reversed_on=row.reversed_on)


async def load_subsidy(session: AsyncSession, setl_id: str) -> postings.SubsidyState | None:
    row = (await session.execute(select(subsidies).where(subsidies.c.setl_id == setl_id))).first()
    if row is None:
        return None
    facts = None
    if row.known:
        shares = (await session.execute(select(subsidy_shares.c.payer, subsidy_shares.c.share)
                                        .where(subsidy_shares.c.setl_id == setl_id))).all()
        facts = SubsidyFacts(setl_id=row.setl_id, fixmedins_code=row.fixmedins_code, case_status=row.case_status,
                             amount=row.amount, advance_payer=row.advance_payer, setl_date=row.setl_date,
                             shares=tuple(sorted(((p, s) for p, s in shares if s), key=lambda ps: ps[0])))
    return postings.SubsidyState(setl_id=row.setl_id, fixmedins_code=row.fixmedins_code, facts=facts,
                                 reversed_on=row.reversed_on)


async def save_settlement(session: AsyncSession, state: postings.SettlementState) -> None:
    facts = state.facts
    values = {"fixmedins_code": state.fixmedins_code, "known": facts is not None, "reversed_on": state.reversed_on}
    if facts is not None:
        values.update(setl_date=facts.setl_date, covid_status=facts.covid_status, hifp_pay=facts.hifp_pay,
                      hifmi_pay=facts.hifmi_pay, maf_pay=facts.maf_pay, tilt_aid_pay=facts.tilt_aid_pay,
                      fund_pay_sumamt=facts.fund_pay_sumamt, fin_subsidy_pay=facts.fin_subsidy_pay)
    stmt = insert(settlements).values(setl_id=state.setl_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["setl_id"],
                                                     set_={**values, "updated_at": func.now()}))


async def save_subsidy(session: AsyncSession, state: postings.SubsidyState) -> None:
    facts = state.facts
    values = {"fixmedins_code": state.fixmedins_code, "known": facts is not None, "reversed_on": state.reversed_on}
    if facts is not None:
        values.update(case_status=facts.case_status, amount=facts.amount, advance_payer=facts.advance_payer,
                      setl_date=facts.setl_date)
    stmt = insert(subsidies).values(setl_id=state.setl_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["setl_id"],
                                                     set_={**values, "updated_at": func.now()}))
    if facts is not None:
        await session.execute(insert(subsidy_shares).values(share_rows(facts))
                              .on_conflict_do_nothing(index_elements=["setl_id", "payer"]))


def share_rows(facts: SubsidyFacts) -> list[dict]:
    """Each finance level's part: its final share; for the advance payer also what it advances and recovers."""
    payers = [p for p in FINANCE_LEVELS if p == facts.advance_payer or any(p == q for q, _ in facts.shares)]
    rows = []
    for payer in payers:
        advance = facts.amount if payer == facts.advance_payer else ZERO
        share = facts.share_of(payer)
        rows.append({"setl_id": facts.setl_id, "payer": payer, "share": share, "advanced": advance,
                     "recoverable": advance - share if advance else ZERO})
    return rows


async def save_outcome(session: AsyncSession, outcome: postings.Outcome, *,
                       before: tuple[postings.SettlementState | None, postings.SubsidyState | None]) -> int:
    """Store the states that changed and post every entry they imply; returns the new entries."""
    if outcome.settlement is not None and outcome.settlement != before[0]:
        await save_settlement(session, outcome.settlement)
    if outcome.subsidy is not None and outcome.subsidy != before[1]:
        await save_subsidy(session, outcome.subsidy)
    return await post(session, outcome.entries)


# ---------------------------------------------------------------- subsidies by payer

async def subsidies_of(session: AsyncSession, *, payer: str, fixmedins_code: str | None = None,
                       limit: int = 1000) -> dict:
    """What one finance level owes per settlement (reversed settlements net out: omitted)."""
    s, sh = subsidies, subsidy_shares
    where = and_(sh.c.payer == payer, s.c.known.is_(True), s.c.reversed_on.is_(None))
    if fixmedins_code is not None:
        where = and_(where, s.c.fixmedins_code == fixmedins_code)
    joined = sh.join(s, s.c.setl_id == sh.c.setl_id)
    totals = (await session.execute(
        select(func.count(), func.coalesce(func.sum(sh.c.share), 0), func.coalesce(func.sum(sh.c.advanced), 0),
               func.coalesce(func.sum(sh.c.recoverable), 0)).select_from(joined).where(where))).one()
    rows = (await session.execute(
        select(s.c.setl_id, s.c.fixmedins_code, s.c.case_status, s.c.setl_date, s.c.advance_payer,
               sh.c.share, sh.c.advanced, sh.c.recoverable)
        .select_from(joined).where(where).order_by(s.c.setl_date, s.c.setl_id).limit(limit))).all()
    return {
        "payer": payer, "total": Decimal(totals[1]), "advanced_total": Decimal(totals[2]),
        "recoverable_total": Decimal(totals[3]), "count": totals[0], "truncated": totals[0] > len(rows),
        "items": [{"setl_id": r.setl_id, "fixmedins_code": r.fixmedins_code, "case_status": r.case_status,
                   "setl_date": r.setl_date, "amount": r.share, "advance_payer": r.advance_payer,
                   "advanced": r.advanced, "recoverable": r.recoverable} for r in rows],
    }


def check_code_known(known: bool, code: str) -> None:
    """422 UNKNOWN_INSTITUTION for an institution the service has no copy of."""
    if not known:
        raise Problem(422, "UNKNOWN_INSTITUTION",
                      f"institution {code} is not known here (no institution-changed event received)",
                      errors=[{"field": "fixmedins_code", "code": "UNKNOWN_INSTITUTION",
                               "detail": f"institution {code} is not known"}])


def business_today() -> date:
    from shared.events.envelope import now
    return now().date()


async def list_entries(session: AsyncSession, *, fixmedins_code: str | None, setl_id: str | None,
                       kind: str | None, limit: int) -> list[dict]:
    """Journal entries with their lines, oldest first (bounded by `limit`)."""
    e, lines = journal_entries, journal_lines
    query = select(e).order_by(e.c.entry_id).limit(limit)
    for column, value in ((e.c.fixmedins_code, fixmedins_code), (e.c.setl_id, setl_id), (e.c.kind, kind)):
        if value is not None:
            query = query.where(column == value)
    rows = (await session.execute(query)).all()
    by_entry: dict[int, list[dict]] = {row.entry_id: [] for row in rows}
    if by_entry:
        for line in (await session.execute(select(lines).where(lines.c.entry_id.in_(list(by_entry)))
                                           .order_by(lines.c.line_id))).all():
            by_entry[line.entry_id].append({"account": line.account, "debit": line.debit, "credit": line.credit})
    return [{"ref": row.ref, "kind": row.kind, "business_date": row.business_date,
             "fixmedins_code": row.fixmedins_code, "setl_id": row.setl_id, "clearing_id": row.clearing_id,
             "memo": row.memo, "lines": by_entry[row.entry_id]} for row in rows]
