"""The stored ledger and per-settlement state: posting entries, reading balances, positions, subsidies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.prepayment import postings
from services.prepayment.facts import SettlementFacts, SubsidyFacts
from services.prepayment.ledger import (
    FINANCE_LEVELS,
    INSTITUTION_POSITIONS,
    JournalEntry,
    LedgerError,
    TrialBalance,
    institution_account,
    trial_balance,
)
from shared.db import Row, Sql, Unit
from shared.events.envelope import now
from shared.money import ZERO
from shared.problems import Problem, not_found

# Advisory-lock namespaces (first key of pg_advisory_xact_lock(int, int)).
LOCK_SETTLEMENT = 0x5942_5001
LOCK_INSTITUTION = 0x5942_5002

_LOCK = Sql("SELECT pg_advisory_xact_lock(:ns, hashtext(:name))")


async def lock(unit: Unit, namespace: int, name: str) -> None:
    """Serialise work on one settlement or institution until the transaction ends."""
    await unit.execute(_LOCK, ns=namespace, name=name)


_LOCK_ALL = Sql("""
SELECT count(pg_advisory_xact_lock(:ns, hashtext(name)))
  FROM (SELECT DISTINCT unnest(CAST(:names AS text[])) AS name ORDER BY 1) AS names
""")


async def lock_all(unit: Unit, namespace: int, names: list[str]) -> None:
    """`lock` for many names in one statement, always in the same order (two batches never deadlock)."""
    await unit.execute(_LOCK_ALL, ns=namespace, names=names)


# ---------------------------------------------------------------- journal

# An entry and its lines in one statement; an entry whose ref is already in the journal writes nothing.
_POST = Sql("""
WITH entry AS (
    INSERT INTO journal_entries (ref, kind, business_date, fixmedins_code, setl_id, memo, clearing_id)
    VALUES (:ref, :kind, :business_date, :fixmedins_code, :setl_id, :memo, :clearing_id)
    ON CONFLICT (ref) DO NOTHING RETURNING entry_id
)
INSERT INTO journal_lines (entry_id, account, debit, credit)
SELECT entry.entry_id, line.account, line.debit, line.credit
  FROM entry, unnest(CAST(:accounts AS text[]), CAST(:debits AS numeric[]), CAST(:credits AS numeric[]))
       WITH ORDINALITY AS line(account, debit, credit, n)
 ORDER BY line.n
RETURNING entry_id
""")
_BALANCES = Sql("SELECT account, sum(debit) - sum(credit) AS balance FROM journal_lines GROUP BY account")
_INSTITUTION_BALANCES = Sql("""
SELECT l.account, sum(l.debit) - sum(l.credit) AS balance
  FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
 WHERE e.fixmedins_code = :code
 GROUP BY l.account
""")
_ACCOUNT_BALANCES = Sql("""
SELECT account, sum(debit) - sum(credit) AS balance FROM journal_lines
 WHERE account = ANY(CAST(:accounts AS text[])) GROUP BY account
""")


async def post(
    unit: Unit, entries: list[JournalEntry] | tuple[JournalEntry, ...], *, clearing_id: str | None = None
) -> int:
    """Post entries not yet in the journal (by ref); returns how many were new."""
    new = 0
    for posted in entries:
        debits = sum((line.debit for line in posted.lines), ZERO)
        if debits != sum((line.credit for line in posted.lines), ZERO) or len(posted.lines) < 2:
            raise LedgerError(f"entry {posted.ref} does not balance")
        entry_id = await unit.fetchval(
            _POST,
            ref=posted.ref,
            kind=posted.kind,
            business_date=posted.business_date,
            fixmedins_code=posted.fixmedins_code,
            setl_id=posted.setl_id,
            memo=posted.memo[:200],
            clearing_id=clearing_id,
            accounts=[line.account for line in posted.lines],
            debits=[line.debit for line in posted.lines],
            credits=[line.credit for line in posted.lines],
        )
        if entry_id is not None:
            new += 1
    return new


# Many entries and their lines in one statement (a consumer's batch); entries already in the journal write nothing.
_POST_MANY = Sql("""
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset(CAST(:entries AS jsonb))
        AS e(n int, ref text, kind text, business_date date, fixmedins_code text, setl_id text, memo text)
), entry AS (
    INSERT INTO journal_entries (ref, kind, business_date, fixmedins_code, setl_id, memo)
    SELECT ref, kind, business_date, fixmedins_code, setl_id, memo FROM incoming ORDER BY n
    ON CONFLICT (ref) DO NOTHING RETURNING entry_id, ref
)
INSERT INTO journal_lines (entry_id, account, debit, credit)
SELECT entry.entry_id, line.account, line.debit, line.credit
  FROM entry JOIN jsonb_to_recordset(CAST(:lines AS jsonb))
       AS line(n int, ref text, account text, debit numeric, credit numeric) ON line.ref = entry.ref
 ORDER BY line.n
""")


async def post_many(unit: Unit, entries: list[JournalEntry]) -> None:
    """`post` for a batch of entries in one statement (the first of two entries with one ref stands)."""
    seen: dict[str, JournalEntry] = {}
    for posted in entries:
        seen.setdefault(posted.ref, posted)
    if not seen:
        return
    rows, lines = [], []
    for n, posted in enumerate(seen.values()):
        debits = sum((line.debit for line in posted.lines), ZERO)
        if debits != sum((line.credit for line in posted.lines), ZERO) or len(posted.lines) < 2:
            raise LedgerError(f"entry {posted.ref} does not balance")
        rows.append(
            {
                "n": n,
                "ref": posted.ref,
                "kind": posted.kind,
                "business_date": posted.business_date,
                "fixmedins_code": posted.fixmedins_code,
                "setl_id": posted.setl_id,
                "memo": posted.memo[:200],
            }
        )
        lines += [
            {
                "n": len(lines) + i,
                "ref": posted.ref,
                "account": line.account,
                "debit": line.debit,
                "credit": line.credit,
            }
            for i, line in enumerate(posted.lines)
        ]
    await unit.execute(_POST_MANY, entries=rows, lines=lines)


async def balances(unit: Unit, *, fixmedins_code: str | None = None) -> dict[str, Decimal]:
    """Balance (debits − credits) per account, of the whole ledger or of one institution's entries."""
    if fixmedins_code is None:
        rows = await unit.fetch(_BALANCES)
    else:
        rows = await unit.fetch(_INSTITUTION_BALANCES, code=fixmedins_code)
    return {row.account: row.balance for row in rows}


async def account_balances(unit: Unit, accounts: list[str]) -> dict[str, Decimal]:
    """Balance (debits − credits) of some accounts (those without lines are left out)."""
    return {row.account: row.balance for row in await unit.fetch(_ACCOUNT_BALANCES, accounts=accounts)}


async def get_trial_balance(unit: Unit, *, fixmedins_code: str | None = None) -> TrialBalance:
    """The trial balance of the whole ledger (or of one institution's entries, which balance too)."""
    result = trial_balance(await balances(unit, fixmedins_code=fixmedins_code))
    if not result.balanced:  # the database refuses unbalanced entries; this is the last line of defence
        raise AssertionError(f"trial balance off: debits {result.debits}, credits {result.credits}")
    return result


_KNOWN = Sql("""
SELECT EXISTS (SELECT 1 FROM institutions WHERE fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM journal_entries WHERE fixmedins_code = :code)
""")
_KNOWN_CODES = Sql("""
SELECT fixmedins_code FROM institutions
UNION
SELECT fixmedins_code FROM journal_entries WHERE fixmedins_code IS NOT NULL
""")


async def institution_known(unit: Unit, code: str) -> bool:
    """Known from `institution-changed`, or named by an event the ledger booked."""
    return bool(await unit.fetchval(_KNOWN, code=code))


async def known_codes(unit: Unit) -> list[str]:
    """Every institution the service knows of (local copy ∪ institutions in the journal)."""
    return sorted(row.fixmedins_code for row in await unit.fetch(_KNOWN_CODES))


async def get_position(unit: Unit, code: str) -> dict[str, Any]:
    """What an institution holds and is owed: {prepaid, fund_payable, acct_payable, subsidy_receivable, net}."""
    if not await institution_known(unit, code):
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    accounts = [institution_account(code, name) for name in INSTITUTION_POSITIONS]
    pos = postings.position(await account_balances(unit, accounts), code)
    return {
        "fixmedins_code": code,
        "prepaid": pos.prepaid,
        "fund_payable": pos.fund_payable,
        "acct_payable": pos.acct_payable,
        "subsidy_receivable": pos.subsidy_receivable,
        "net": pos.net,
    }


# ---------------------------------------------------------------- per-settlement state

SETTLEMENT_FACTS = (
    "setl_date",
    "covid_status",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "tilt_aid_pay",
    "fund_pay_sumamt",
    "fin_subsidy_pay",
    "acct_pay",
)
SUBSIDY_FACTS = ("case_status", "amount", "advance_payer", "setl_date")


def _settlement_facts(row: Row) -> SettlementFacts | None:
    if not row.known:
        return None
    return SettlementFacts(
        setl_id=row.setl_id,
        fixmedins_code=row.fixmedins_code,
        setl_date=row.setl_date,
        covid_status=row.covid_status,
        hifp_pay=row.hifp_pay,
        hifmi_pay=row.hifmi_pay,
        maf_pay=row.maf_pay,
        tilt_aid_pay=row.tilt_aid_pay,
        fund_pay_sumamt=row.fund_pay_sumamt,
        fin_subsidy_pay=row.fin_subsidy_pay,
        acct_pay=row.acct_pay,  # None: booked before account payments were (migration 0006)
    )


def _subsidy_state(row: Row, shares: list[tuple[str, Decimal]]) -> postings.SubsidyState:
    facts = None
    if row.known:
        facts = SubsidyFacts(
            setl_id=row.setl_id,
            fixmedins_code=row.fixmedins_code,
            case_status=row.case_status,
            amount=row.amount,
            advance_payer=row.advance_payer,
            setl_date=row.setl_date,
            shares=tuple(sorted(((p, s) for p, s in shares if s), key=lambda ps: ps[0])),
        )
    return postings.SubsidyState(
        setl_id=row.setl_id, fixmedins_code=row.fixmedins_code, facts=facts, reversed_on=row.reversed_on
    )


def share_rows(facts: SubsidyFacts) -> list[dict[str, Any]]:
    """Each finance level's part: its final share; for the advance payer also what it advances and recovers."""
    payers = [p for p in FINANCE_LEVELS if p == facts.advance_payer or any(p == q for q, _ in facts.shares)]
    rows = []
    for payer in payers:
        advance = facts.amount if payer == facts.advance_payer else ZERO
        share = facts.share_of(payer)
        rows.append(
            {
                "setl_id": facts.setl_id,
                "payer": payer,
                "share": share,
                "advanced": advance,
                "recoverable": advance - share if advance else ZERO,
            }
        )
    return rows


_SETTLEMENTS = Sql("SELECT * FROM settlements WHERE setl_id = ANY(CAST(:ids AS text[]))")
_SUBSIDIES = Sql("""
SELECT s.*, coalesce((SELECT json_agg(json_build_array(sh.payer, sh.share::text)) FROM subsidy_shares sh
                       WHERE sh.setl_id = s.setl_id), '[]'::json) AS shares
  FROM subsidies s WHERE s.setl_id = ANY(CAST(:ids AS text[]))
""")
_TYPES = {
    "setl_date": "date",
    "reversed_on": "date",
    "known": "boolean",
    "covid_status": "text",
    "case_status": "text",
    "advance_payer": "text",
    "setl_id": "text",
    "fixmedins_code": "text",
}


def _upsert_states(table: str, facts: tuple[str, ...]) -> Sql:
    """Insert or replace many settlements' (or subsidies') stored states in one statement."""
    columns = ("setl_id", "fixmedins_code", "known", "reversed_on", *facts)
    typed = ", ".join(f"{c} {_TYPES.get(c, 'numeric')}" for c in columns)
    return Sql(f"""
INSERT INTO {table} ({", ".join(columns)})
SELECT {", ".join(columns)} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({typed})
ON CONFLICT (setl_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])}, updated_at = now()
""")


_SAVE_SETTLEMENTS = _upsert_states("settlements", SETTLEMENT_FACTS)
_SAVE_SUBSIDIES = _upsert_states("subsidies", SUBSIDY_FACTS)
_ADD_SHARES = Sql("""
INSERT INTO subsidy_shares (setl_id, payer, share, advanced, recoverable)
SELECT setl_id, payer, share, advanced, recoverable FROM jsonb_to_recordset(CAST(:rows AS jsonb))
    AS r(setl_id text, payer text, share numeric, advanced numeric, recoverable numeric)
ON CONFLICT (setl_id, payer) DO NOTHING
""")

States = tuple[dict[str, postings.SettlementState], dict[str, postings.SubsidyState]]


async def load_states(unit: Unit, setl_ids: list[str]) -> States:
    """The stored states of many settlements and their subsidies (two statements)."""
    settlements = {
        row.setl_id: postings.SettlementState(
            setl_id=row.setl_id,
            fixmedins_code=row.fixmedins_code,
            facts=_settlement_facts(row),
            reversed_on=row.reversed_on,
        )
        for row in await unit.fetch(_SETTLEMENTS, ids=setl_ids)
    }
    subsidies = {}
    for row in await unit.fetch(_SUBSIDIES, ids=setl_ids):
        shares = [(payer, Decimal(share)) for payer, share in row.shares]
        subsidies[row.setl_id] = _subsidy_state(row, shares)
    return settlements, subsidies


async def save_states(unit: Unit, states: States, *, before: States) -> None:
    """Store the states that changed since `before` (three statements at most)."""
    settlements = [s for k, s in states[0].items() if s != before[0].get(k)]
    subsidies = [s for k, s in states[1].items() if s != before[1].get(k)]
    if settlements:
        await unit.execute(_SAVE_SETTLEMENTS, rows=[_state_row(s, SETTLEMENT_FACTS) for s in settlements])
    if subsidies:
        await unit.execute(_SAVE_SUBSIDIES, rows=[_state_row(s, SUBSIDY_FACTS) for s in subsidies])
        shares = [row for s in subsidies if s.facts is not None for row in share_rows(s.facts)]
        if shares:
            await unit.execute(_ADD_SHARES, rows=shares)


def _state_row(state: postings.SettlementState | postings.SubsidyState, facts: tuple[str, ...]) -> dict[str, Any]:
    known = state.facts
    return {
        "setl_id": state.setl_id,
        "fixmedins_code": state.fixmedins_code,
        "known": known is not None,
        "reversed_on": state.reversed_on,
        **{name: getattr(known, name) if known else None for name in facts},
    }


# ---------------------------------------------------------------- subsidies by payer

_OWED = """
  FROM subsidy_shares sh JOIN subsidies s ON s.setl_id = sh.setl_id
 WHERE sh.payer = :payer AND s.known AND s.reversed_on IS NULL
   AND (CAST(:code AS text) IS NULL OR s.fixmedins_code = :code)
"""
_OWED_TOTALS = Sql(f"""
SELECT count(*) AS n, coalesce(sum(sh.share), 0) AS total, coalesce(sum(sh.advanced), 0) AS advanced,
       coalesce(sum(sh.recoverable), 0) AS recoverable
{_OWED}""")
_OWED_ITEMS = Sql(f"""
SELECT s.setl_id, s.fixmedins_code, s.case_status, s.setl_date, s.advance_payer, sh.share, sh.advanced,
       sh.recoverable
{_OWED}
 ORDER BY s.setl_date, s.setl_id LIMIT :limit""")


async def subsidies_of(
    unit: Unit, *, payer: str, fixmedins_code: str | None = None, limit: int = 1000
) -> dict[str, Any]:
    """What one finance level owes per settlement (reversed settlements net out: omitted)."""
    totals = await unit.fetchrow(_OWED_TOTALS, payer=payer, code=fixmedins_code)
    rows = await unit.fetch(_OWED_ITEMS, payer=payer, code=fixmedins_code, limit=limit)
    return {
        "payer": payer,
        "total": totals.total,
        "advanced_total": totals.advanced,
        "recoverable_total": totals.recoverable,
        "count": totals.n,
        "truncated": totals.n > len(rows),
        "items": [
            {
                "setl_id": r.setl_id,
                "fixmedins_code": r.fixmedins_code,
                "case_status": r.case_status,
                "setl_date": r.setl_date,
                "amount": r.share,
                "advance_payer": r.advance_payer,
                "advanced": r.advanced,
                "recoverable": r.recoverable,
            }
            for r in rows
        ],
    }


def check_code_known(known: bool, code: str) -> None:
    """422 UNKNOWN_INSTITUTION for an institution the service has no copy of."""
    if not known:
        raise Problem(
            422,
            "UNKNOWN_INSTITUTION",
            f"institution {code} is not known here (no institution-changed event received)",
            errors=[
                {"field": "fixmedins_code", "code": "UNKNOWN_INSTITUTION", "detail": f"institution {code} is not known"}
            ],
        )


def business_today() -> date:
    return now().date()


# ---------------------------------------------------------------- journal entries

_ENTRIES = Sql("""
SELECT entry_id, ref, kind, business_date, fixmedins_code, setl_id, clearing_id, memo FROM journal_entries
 WHERE (CAST(:code AS text) IS NULL OR fixmedins_code = :code)
   AND (CAST(:setl_id AS text) IS NULL OR setl_id = :setl_id)
   AND (CAST(:kind AS text) IS NULL OR kind = :kind)
 ORDER BY entry_id LIMIT :limit
""")
_LINES = Sql("""
SELECT entry_id, account, debit, credit FROM journal_lines
 WHERE entry_id = ANY(CAST(:entry_ids AS bigint[])) ORDER BY line_id
""")


async def list_entries(
    unit: Unit, *, fixmedins_code: str | None, setl_id: str | None, kind: str | None, limit: int
) -> list[dict[str, Any]]:
    """Journal entries with their lines, oldest first (bounded by `limit`)."""
    rows = await unit.fetch(_ENTRIES, code=fixmedins_code, setl_id=setl_id, kind=kind, limit=limit)
    by_entry: dict[int, list[dict[str, Any]]] = {row.entry_id: [] for row in rows}
    if by_entry:
        for line in await unit.fetch(_LINES, entry_ids=list(by_entry)):
            by_entry[line.entry_id].append({"account": line.account, "debit": line.debit, "credit": line.credit})
    return [
        {
            "ref": row.ref,
            "kind": row.kind,
            "business_date": row.business_date,
            "fixmedins_code": row.fixmedins_code,
            "setl_id": row.setl_id,
            "clearing_id": row.clearing_id,
            "memo": row.memo,
            "lines": by_entry[row.entry_id],
        }
        for row in rows
    ]
