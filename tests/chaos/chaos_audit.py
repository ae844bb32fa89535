"""The audit after the storm, per setl_id, from the outside: SQL reads of the services' schemas (their read models
and books, not their event plumbing) and the public HTTP APIs.

Truth is settlement's own rows, once they are shown to agree with what the clients saw (the only rows the clients
never saw are those whose answer was lost). Every settlement and reversal there must be in prepayment's books and
reporting's read models exactly once, COVID subsidies (`subsidy-due`) and their reversals included; then the
reconciliation, the institutions' positions and the trial balance.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import asyncpg
import httpx
from chaos_load import CODES, Seen, World

ZERO = Decimal("0.00")
COMPARED = ("medfee_sumamt", "fund_pay_sumamt", "fin_subsidy_pay", "psn_pay")

_TRUTH = """
SELECT setl_id, mdtrt_id, fixmedins_code, status, setl_date, rev_date,
       medfee_sumamt, fund_pay_sumamt, fin_subsidy_pay, psn_pay
  FROM settlement.settlements WHERE fixmedins_code = ANY($1::text[])
"""
_PP_STATES = "SELECT setl_id, known, reversed_on, fund_pay_sumamt FROM prepayment.settlements"
_PP_SUBSIDIES = "SELECT setl_id, known, reversed_on, amount FROM prepayment.subsidies"
_PP_ENTRIES = """
SELECT e.setl_id, e.kind, count(DISTINCT e.entry_id) AS n,
       coalesce(sum(l.credit) FILTER (WHERE l.account LIKE 'institution:%:fund_payable'), 0) AS payable_cr,
       coalesce(sum(l.debit) FILTER (WHERE l.account LIKE 'institution:%:fund_payable'), 0) AS payable_dr,
       coalesce(sum(l.credit) FILTER (WHERE l.account LIKE 'institution:%:subsidy_receivable'), 0) AS subsidy_cr,
       coalesce(sum(l.debit) FILTER (WHERE l.account LIKE 'institution:%:subsidy_receivable'), 0) AS subsidy_dr
  FROM prepayment.journal_entries e JOIN prepayment.journal_lines l USING (entry_id)
 WHERE e.setl_id IS NOT NULL
 GROUP BY e.setl_id, e.kind
"""
_RP_MOVES = """
SELECT setl_id, kind, count(*) AS n, sum(medfee_sumamt) AS medfee_sumamt, sum(fund_pay_sumamt) AS fund_pay_sumamt,
       sum(fin_subsidy_pay) AS fin_subsidy_pay, sum(psn_pay) AS psn_pay
  FROM reporting.settlement_moves GROUP BY setl_id, kind
"""
_RP_SUBSIDIES = "SELECT setl_id, reversal, count(*) AS n, sum(amount) AS amount FROM reporting.subsidies GROUP BY 1, 2"
_COUNTS = """
SELECT (SELECT count(*) FROM settlement.settlements) AS settlement,
       (SELECT count(*) FROM prepayment.settlements WHERE reversed_on IS NOT NULL) AS pp_reversed,
       (SELECT count(*) FROM prepayment.settlements) AS pp_states,
       (SELECT count(*) FROM prepayment.subsidies) AS pp_subsidies,
       (SELECT count(*) FROM prepayment.journal_entries) AS pp_entries,
       (SELECT count(*) FROM reporting.settlement_moves) AS rp_moves,
       (SELECT count(*) FROM reporting.subsidies) AS rp_subsidies
"""


@dataclass
class Truth:
    """One settlement as settlement's own row has it."""

    setl_id: str
    mdtrt_id: str
    code: str
    reversed: bool
    setl_date: date
    rev_date: date | None
    money: dict[str, Decimal]

    @property
    def fund(self) -> Decimal:
        return self.money["fund_pay_sumamt"]

    @property
    def subsidy(self) -> Decimal:
        return self.money["fin_subsidy_pay"]


SERVICES = ("settlement", "prepayment", "reporting", "totals")
EVENTS = ("settled", "settlement-reversed", "subsidy-due", "subsidy-due reversal")


@dataclass
class Audit:
    """Problems by (service, event, kind, where) with the setl_ids they concern; notes for what is only counted.

    kind: missing | doubled | amount (differs) | unexpected (there, but nothing says it should be)."""

    problems: dict[tuple[str, str, str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    truth: dict[str, Truth] = field(default_factory=dict)

    def add(self, service: str, event: str, kind: str, where: str, setl_id: str) -> None:
        self.problems[(service, event, kind, where)].append(setl_id)

    @property
    def clean(self) -> bool:
        return not any(self.problems.values())

    def ids(self, service: str, kind: str | None = None, event: str | None = None) -> set[str]:
        """Distinct setl_ids with a problem of this service (of this kind, for this event)."""
        return {
            setl_id
            for (svc, ev, k, _), ids in self.problems.items()
            if svc == service and kind in (None, k) and event in (None, ev)
            for setl_id in ids
        }

    def tally(self, service: str, kind: str) -> dict[str, int]:
        """Per event, how many setl_ids have a problem of this kind."""
        return {event: n for event in EVENTS if (n := len(self.ids(service, kind, event)))}

    def summary(self) -> str:
        reversed_ = sum(t.reversed for t in self.truth.values())
        subsidised = sum(t.subsidy > 0 for t in self.truth.values())
        lines = [f"settlement's rows: {len(self.truth)} settlements, {reversed_} reversed, {subsidised} subsidised"]
        lines += self.notes
        lines.append("per service, the setl_ids with something missing or doubled, by event:")
        for service in SERVICES:
            missing, doubled = self.tally(service, "missing"), self.tally(service, "doubled")
            other = self.ids(service) - self.ids(service, "missing") - self.ids(service, "doubled")
            lines.append(
                f"{service}: missing {sum(missing.values())}{f' {missing}' if missing else ''}, "
                f"doubled {sum(doubled.values())}{f' {doubled}' if doubled else ''}, other problems {len(other)}"
            )
        for (service, event, kind, where), ids in sorted(self.problems.items()):
            if ids:
                lines.append(f"  {service} {event} {kind} ({where}): {len(ids)} e.g. {', '.join(map(str, ids[:3]))}")
        lines.append("AUDIT: CLEAN (nothing missing, nothing doubled)" if self.clean else "AUDIT: FOUND PROBLEMS")
        return "\n".join(lines)


async def counts(pg_url: str) -> tuple[int, ...] | None:
    """How much the books and read models hold (None while PostgreSQL does not answer)."""
    try:
        conn = await asyncpg.connect(pg_url, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None
    try:
        return tuple((await conn.fetchrow(_COUNTS)).values())
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()


@dataclass
class Books:
    """What the SQL reads returned: settlement's rows, prepayment's and reporting's, keyed per setl_id."""

    truth_rows: list
    pp_states: dict
    pp_subsidies: dict
    pp_entries: dict  # (setl_id, kind) → n and the amounts on the institution's accounts
    rp_moves: dict  # (setl_id, settle|reverse) → n and the summed amounts
    rp_subsidies: dict  # (setl_id, reversal) → n and the summed amount


async def read_books(pg_url: str) -> Books:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        return Books(
            truth_rows=list(await conn.fetch(_TRUTH, list(CODES))),
            pp_states={r["setl_id"]: r for r in await conn.fetch(_PP_STATES)},
            pp_subsidies={r["setl_id"]: r for r in await conn.fetch(_PP_SUBSIDIES)},
            pp_entries={(r["setl_id"], r["kind"]): r for r in await conn.fetch(_PP_ENTRIES)},
            rp_moves={(r["setl_id"], r["kind"]): r for r in await conn.fetch(_RP_MOVES)},
            rp_subsidies={(r["setl_id"], r["reversal"]): r for r in await conn.fetch(_RP_SUBSIDIES)},
        )
    finally:
        await conn.close()


async def audit_books(pg_url: str, seen: Seen) -> Audit:
    """Per setl_id: settlement's rows against the clients, then prepayment and reporting against settlement."""
    return judge(await read_books(pg_url), seen)


def judge(books: Books, seen: Seen) -> Audit:
    """The audit of what was read (pure)."""
    result = Audit()
    for row in books.truth_rows:
        result.truth[row["setl_id"]] = Truth(
            setl_id=row["setl_id"],
            mdtrt_id=row["mdtrt_id"],
            code=row["fixmedins_code"],
            reversed=row["status"] == "reversed",
            setl_date=row["setl_date"],
            rev_date=row["rev_date"],
            money={name: Decimal(row[name]) for name in COMPARED},
        )
    _against_clients(result, seen)
    _prepayment(result, books.pp_states, books.pp_subsidies, books.pp_entries)
    _reporting(result, books.rp_moves, books.rp_subsidies)
    return result


def _against_clients(result: Audit, seen: Seen) -> None:
    truth = result.truth
    for setl_id, saw in seen.settled.items():
        row = truth.get(setl_id)
        if row is None:
            result.add("settlement", "settled", "missing", "a 201 the clients saw has no row", setl_id)
            continue
        if any(Decimal(saw[name]) != row.money[name] for name in COMPARED) or saw["mdtrt_id"] != row.mdtrt_id:
            result.add("settlement", "settled", "amount", "the row differs from the 201", setl_id)
        if row.reversed and setl_id not in seen.reversed and setl_id not in seen.lost_reversals:
            result.add("settlement", "settlement-reversed", "unexpected", "reversed, nobody asked", setl_id)
        if not row.reversed and setl_id in seen.reversed:
            result.add(
                "settlement", "settlement-reversed", "missing", "a 200 the clients saw, row not reversed", setl_id
            )
    for setl_id in seen.reversed:
        if setl_id not in seen.settled:
            result.add("settlement", "settlement-reversed", "unexpected", "of a settlement nobody saw", setl_id)
    unasked = [t for t in truth.values() if t.setl_id not in seen.settled]
    for row in unasked:
        if row.mdtrt_id not in seen.lost_settles:
            result.add("settlement", "settled", "unexpected", "a row the clients never asked for", row.setl_id)
    result.notes.append(
        f"settlement rows the clients never saw: {len(unasked)} "
        f"(settle requests whose answer was lost: {len(seen.lost_settles)})"
    )


def _expect(result: Audit, service: str, event: str, where: str, setl_id: str, found: int, wanted: int) -> bool:
    """Exactly `wanted` (0 or 1) of something; records missing / doubled / unexpected. True when it is there once."""
    if found == wanted:
        return wanted == 1
    kind = "unexpected" if wanted == 0 else "missing" if found == 0 else "doubled"
    result.add(service, event, kind, where, setl_id)
    return False


def _n(row) -> int:
    return row["n"] if row else 0


def _prepayment(result: Audit, states: dict, subsidies: dict, entries: dict) -> None:
    add = result.add
    for setl_id, t in result.truth.items():
        state = states.get(setl_id)
        if state is None or not state["known"]:
            add("prepayment", "settled", "missing", "per-settlement state", setl_id)
        else:
            if state["fund_pay_sumamt"] is not None and Decimal(state["fund_pay_sumamt"]) != t.fund:
                add("prepayment", "settled", "amount", "per-settlement state", setl_id)
            if t.reversed and state["reversed_on"] is None:
                add("prepayment", "settlement-reversed", "missing", "per-settlement state", setl_id)
            if not t.reversed and state["reversed_on"] is not None:
                add("prepayment", "settlement-reversed", "unexpected", "per-settlement state", setl_id)
        has_fund, has_subsidy = t.fund > 0, t.subsidy > 0
        checks = (
            ("settled", "settlement", int(has_fund), "payable_cr", t.fund),
            ("settlement-reversed", "settlement-reversal", int(has_fund and t.reversed), "payable_dr", t.fund),
            ("subsidy-due", "subsidy", int(has_subsidy), "subsidy_cr", t.subsidy),
            ("subsidy-due reversal", "subsidy-reversal", int(has_subsidy and t.reversed), "subsidy_dr", t.subsidy),
        )
        for event, kind, wanted, column, amount in checks:
            entry = entries.get((setl_id, kind))
            where = f"journal {kind}"
            if _expect(result, "prepayment", event, where, setl_id, _n(entry), wanted):
                if Decimal(entry[column]) != amount:
                    add("prepayment", event, "amount", where, setl_id)
        subsidy = subsidies.get(setl_id)
        if has_subsidy:
            if subsidy is None or not subsidy["known"]:
                add("prepayment", "subsidy-due", "missing", "subsidy state", setl_id)
            elif Decimal(subsidy["amount"]) != t.subsidy:
                add("prepayment", "subsidy-due", "amount", "subsidy state", setl_id)
            elif t.reversed and subsidy["reversed_on"] is None:
                add("prepayment", "subsidy-due reversal", "missing", "subsidy state", setl_id)
        elif subsidy is not None and subsidy["known"]:
            add("prepayment", "subsidy-due", "unexpected", "subsidy state", setl_id)
    strangers = ({*states, *subsidies} | {setl_id for setl_id, _ in entries}) - set(result.truth)
    for setl_id in sorted(strangers):
        add("prepayment", "settled", "unexpected", "books name a settlement settlement does not have", setl_id)


def _reporting(result: Audit, moves: dict, subsidies: dict) -> None:
    for setl_id, t in result.truth.items():
        for event, kind, wanted, sign in (
            ("settled", "settle", 1, 1),
            ("settlement-reversed", "reverse", t.reversed, -1),
        ):
            move = moves.get((setl_id, kind))
            where = f"settlement_moves {kind}"
            if _expect(result, "reporting", event, where, setl_id, _n(move), int(wanted)):
                if any(Decimal(move[name]) != sign * t.money[name] for name in COMPARED):
                    result.add("reporting", event, "amount", where, setl_id)
        has_subsidy = t.subsidy > 0
        for event, reversal, wanted in (
            ("subsidy-due", False, has_subsidy),
            ("subsidy-due reversal", True, has_subsidy and t.reversed),
        ):
            row = subsidies.get((setl_id, reversal))
            where = f"subsidies reversal={str(reversal).lower()}"
            if _expect(result, "reporting", event, where, setl_id, _n(row), int(wanted)):
                if Decimal(row["amount"]) != t.subsidy:
                    result.add("reporting", event, "amount", where, setl_id)
    strangers = {setl_id for setl_id, _ in moves} | {setl_id for setl_id, _ in subsidies}
    for setl_id in sorted(strangers - set(result.truth)):
        result.add(
            "reporting", "settled", "unexpected", "read models name a settlement settlement does not have", setl_id
        )


async def _get(client: httpx.AsyncClient, url: str, *, key: str, params: dict | None = None) -> dict:
    """A read, retried while the service is not there (it should be, after quiet)."""
    last = ""
    for _ in range(30):
        try:
            response = await client.get(url, params=params, headers={"X-Api-Key": key})
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if response.status_code == 200:
                return response.json()
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code < 500:
                break
        await asyncio.sleep(1)
    raise AssertionError(f"GET {url} {params or ''}: {last}")


async def audit_totals(result: Audit, *, urls: dict[str, str], keys: dict[str, str], world: World) -> None:
    """Reconciliation of every business day touched, positions against the sums, the trial balance."""
    ops = keys["ops"]
    days: dict[date, int] = defaultdict(int)
    for t in result.truth.values():
        days[t.setl_date] += 1
        if t.reversed and t.rev_date:
            days[t.rev_date] -= 1
    async with httpx.AsyncClient(timeout=30) as client:
        for day, count in sorted(days.items()):
            rec = await _get(
                client, f"{urls['reporting']}/v1/reconciliation", key=ops, params={"date": day.isoformat()}
            )
            if rec["differences"]:
                result.add("totals", "reconciliation", "differs", f"{day}: {rec['differences']}", day.isoformat())
            if rec["settlement"]["count"] != count:
                result.add(
                    "totals", f"reconciliation {day}: settlement counts {rec['settlement']['count']}", str(count)
                )
            result.notes.append(f"reconciliation {day}: {len(rec['differences'])} differences, count {count}")
        for code in CODES:
            live = [t for t in result.truth.values() if t.code == code and not t.reversed]
            want = {
                "prepaid": world.prepaid[code],
                "fund_payable": sum((t.fund for t in live), ZERO),
                "subsidy_receivable": sum((t.subsidy for t in live), ZERO),
            }
            got = await _get(client, f"{urls['prepayment']}/v1/institutions/{code}/position", key=keys["admin"])
            if "acct_payable" in got:  # the clients never pay from personal accounts
                want["acct_payable"] = ZERO
            want["net"] = want["fund_payable"] + want["subsidy_receivable"] - want["prepaid"]
            off = {name: (got[name], str(value)) for name, value in want.items() if Decimal(got[name]) != value}
            if off:
                result.add("totals", "position", "differs", f"{code} (got, want): {off}", code)
        result.notes.append(f"positions of {', '.join(CODES)} checked against the sums of settlement's rows")
        trial = await _get(client, f"{urls['prepayment']}/v1/ledger/trial-balance", key=ops)
        if Decimal(trial["debits"]) != Decimal(trial["credits"]):
            result.add(
                "totals", "trial balance", "differs", f"debits {trial['debits']}, credits {trial['credits']}", "-"
            )
        result.notes.append(f"trial balance: debits {trial['debits']}, credits {trial['credits']}")
