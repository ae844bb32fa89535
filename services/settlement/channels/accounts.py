"""Personal accounts 个人账户 (DOMAIN §7): balance, credits, the monthly credit run, statements and closure.

Payments and refunds happen inside the settle / reverse / purchase transaction (store/ledger.py), with the account
row locked after the person-year accumulators; a CHECK keeps every balance ≥ 0. Every change of a balance writes an
`account_movements` row while the account row is locked, so a person's movements in id order are the history of the
balance (the statement's running balance ends at the balance).

Who reads a balance or a statement (as the national platform's 1101): admin and ops keys any; an HIS or pharmacy
key only a person its institution has seen (a visit, settlement, prescription or declared claim there, or a
settlement there paid from this account), or one whose credential it presents. Otherwise 403 PERSON_NOT_SEEN, the
same answer whether the person exists or not. Credit runs and closure are the bureau's (admin).
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import orjson

from services.settlement.eligibility_client import EligibilityUnavailable, refused, verify_credential
from services.settlement.engine import PolicyNotFound, monthly_account_credit
from services.settlement.runtime import Ctx, business_date
from services.settlement.schemas import ClosureIn, CreditIn, CreditRunIn
from services.settlement.store.ledger import account_closed
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.events.envelope import BUSINESS_TZ
from shared.idempotency import Answer
from shared.money import ZERO, fmt
from shared.problems import Problem

ROSTER_PAGE = 5000  # persons per call to eligibility's roster
MAX_ROSTER = 5_000_000  # employees one run credits at most (a bound, far above any pooling area)
CREDIT_BATCH = 5000  # persons per statement of a run
MAX_STATEMENT_ENTRIES = 10_000

_BALANCE = Sql("SELECT balc FROM accounts WHERE psn_no = :psn_no")
# Whether the institution has seen the person, in one statement. Visits (which pharmacy settlements, purchases and
# settled declared claims also write) and settlements are found by their psn_no indexes; prescriptions, claims and
# the account payer by the indexes of migration 0005.
_SEEN = """
       EXISTS (SELECT 1 FROM visits WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM settlements WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM prescriptions WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM claims WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM settlements WHERE acct_payer_psn_no = :psn_no AND fixmedins_code = :code)"""
_BALANCE_IF_SEEN = Sql(f"SELECT (SELECT balc FROM accounts WHERE psn_no = :psn_no) AS balc, {_SEEN} AS seen")
_IS_SEEN = Sql(f"SELECT {_SEEN}")
# Create the account if needed and lock it (an upsert takes the row lock): the first step of every change.
_LOCK = Sql("""
INSERT INTO accounts AS a (psn_no, balc) VALUES (:psn_no, 0)
ON CONFLICT (psn_no) DO UPDATE SET balc = a.balc RETURNING a.balc, a.closed_on, a.closure_reason
""")
_RECORD_CREDIT = Sql("""
INSERT INTO account_movements (psn_no, kind, amount, period) VALUES (:psn_no, 'credit', :amount, :period)
ON CONFLICT (psn_no, period) WHERE kind = 'credit' DO NOTHING RETURNING id
""")
_EXISTING_CREDIT = Sql(
    "SELECT amount FROM account_movements WHERE psn_no = :psn_no AND period = :period AND kind = 'credit'"
)
_ADD = Sql("UPDATE accounts SET balc = balc + :amount, updated_at = now() WHERE psn_no = :psn_no RETURNING balc")

# ---- the monthly run
_RUN = Sql("SELECT answer FROM account_credit_runs WHERE period = :period")
_OWN_RUN = Sql("""
INSERT INTO account_credit_runs (period, persons, total, answer) VALUES (:period, 0, 0, '{}'::jsonb)
ON CONFLICT DO NOTHING RETURNING period
""")
_FINISH_RUN = Sql(
    "UPDATE account_credit_runs SET persons = :persons, total = :total, answer = CAST(:answer AS jsonb) "
    "WHERE period = :period"
)
_CREATE_ACCOUNTS = Sql("""
INSERT INTO accounts (psn_no, balc) SELECT p, 0 FROM unnest(CAST(:psn AS text[])) AS p ORDER BY p
ON CONFLICT DO NOTHING
""")
_LOCK_ACCOUNTS = Sql("""
SELECT psn_no, closed_on FROM accounts WHERE psn_no = ANY(CAST(:psn AS text[])) ORDER BY psn_no FOR UPDATE
""")
_CREDIT_MANY = Sql("""
WITH credited AS (
  INSERT INTO account_movements (psn_no, kind, amount, period)
  SELECT w.psn_no, 'credit', w.amount, CAST(:period AS text)
    FROM unnest(CAST(:psn AS text[]), CAST(:amount AS numeric[])) AS w(psn_no, amount) ORDER BY w.psn_no
  ON CONFLICT (psn_no, period) WHERE kind = 'credit' DO NOTHING
  RETURNING psn_no, amount)
UPDATE accounts a SET balc = a.balc + c.amount, updated_at = now() FROM credited c WHERE a.psn_no = c.psn_no
RETURNING c.amount
""")

# ---- statement and closure
_OPENING = Sql("SELECT coalesce(sum(amount), 0) FROM account_movements WHERE psn_no = :psn_no AND created_at < :start")
_MOVEMENTS = Sql("""
SELECT kind, amount, setl_id, for_psn_no, period, created_at FROM account_movements
 WHERE psn_no = :psn_no AND created_at >= :start AND created_at < :end ORDER BY id LIMIT :limit
""")
_CLOSE = Sql("""
WITH closed AS (
  UPDATE accounts SET balc = 0, closed_on = :closed_on, closure_reason = :reason, updated_at = now()
   WHERE psn_no = :psn_no RETURNING psn_no)
INSERT INTO account_movements (psn_no, kind, amount, period)
SELECT psn_no, 'closure', -CAST(:paid AS numeric), :reason FROM closed RETURNING id
""")
_PAID_OUT = Sql("SELECT -amount FROM account_movements WHERE psn_no = :psn_no AND kind = 'closure'")


# ------------------------------------------------------------------ who may read


async def _may_read(
    ctx: Ctx, unit: Unit, *, psn_no: str, principal: Principal, cert_type: str | None, cert_no: str | None
) -> None:
    """403 PERSON_NOT_SEEN unless admin/ops, or the institution has seen the person or holds the credential."""
    check_credential_pair(cert_type, cert_no)
    if principal.role in ("admin", "ops"):
        return
    seen = await unit.fetchval(_IS_SEEN, psn_no=psn_no, code=principal.fixmedins_code)
    if not seen and not (cert_type and cert_no and await _holds_credential(ctx, psn_no, cert_type, cert_no)):
        raise _not_seen(principal, psn_no)


def check_credential_pair(cert_type: str | None, cert_no: str | None) -> None:
    """A credential is mdtrt_cert_type and mdtrt_cert_no together (422 INVALID_CREDENTIAL otherwise)."""
    if (cert_type is None) != (cert_no is None):
        raise Problem(
            422,
            "INVALID_CREDENTIAL",
            "a credential is mdtrt_cert_type and mdtrt_cert_no together",
            errors=[
                {
                    "field": "mdtrt_cert_type" if cert_type is None else "mdtrt_cert_no",
                    "code": "INVALID_CREDENTIAL",
                    "detail": "missing: give both or neither",
                }
            ],
        )


def _not_seen(principal: Principal, psn_no: str) -> Problem:
    return Problem(
        403,
        "PERSON_NOT_SEEN",
        f"institution {principal.fixmedins_code} has no visit, settlement or prescription of person {psn_no}: "
        "present the person's credential (mdtrt_cert_type, mdtrt_cert_no) to read the account",
    )


async def balance(unit: Unit, psn_no: str) -> Decimal:
    found = await unit.fetchval(_BALANCE, psn_no=psn_no)
    return ZERO if found is None else Decimal(found)


async def get_account(
    ctx: Ctx, *, psn_no: str, principal: Principal, cert_type: str | None = None, cert_no: str | None = None
) -> dict:
    """{psn_no, balc} (0.00 without an account) for a key that may see the person's account, else 403."""
    check_credential_pair(cert_type, cert_no)
    if principal.role in ("admin", "ops"):
        async with ctx.db.connect() as unit:
            return {"psn_no": psn_no, "balc": fmt(await balance(unit, psn_no))}
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_BALANCE_IF_SEEN, psn_no=psn_no, code=principal.fixmedins_code)
    if not row.seen and not (cert_type and cert_no and await _holds_credential(ctx, psn_no, cert_type, cert_no)):
        raise _not_seen(principal, psn_no)
    return {"psn_no": psn_no, "balc": fmt(ZERO if row.balc is None else Decimal(row.balc))}


async def _holds_credential(ctx: Ctx, psn_no: str, cert_type: str, cert_no: str) -> bool:
    """The credential resolves to this person at eligibility (one credential of nobody is simply no match)."""
    holder = await verify_credential(ctx.eligibility, api_key=ctx.api_key, cert_type=cert_type, cert_no=cert_no)
    return holder == psn_no


# ------------------------------------------------------------------ credits


async def credit(ctx: Ctx, *, psn_no: str, body: CreditIn) -> Answer:
    """201 the first time for (person, period); the same amount again 200 (no-op); another amount 409;
    a closed account 422 ACCOUNT_CLOSED."""

    async def work(unit: Unit) -> Answer:
        account = await unit.fetchrow(_LOCK, psn_no=psn_no)
        if account.closed_on is not None:
            raise account_closed(psn_no, account.closed_on)
        recorded = await unit.fetchval(_RECORD_CREDIT, psn_no=psn_no, amount=body.amount, period=body.period)
        if recorded is None:
            existing = Decimal(await unit.fetchval(_EXISTING_CREDIT, psn_no=psn_no, period=body.period))
            if existing != body.amount:
                raise Problem(
                    409,
                    "CREDIT_PERIOD_CONFLICT",
                    f"period {body.period} was credited {fmt(existing)} to {psn_no}, not {fmt(body.amount)}",
                )
            return Answer.json(_credited(psn_no, body, Decimal(account.balc), created=False), 200)
        new_balance = Decimal(await unit.fetchval(_ADD, psn_no=psn_no, amount=body.amount))
        return Answer.json(_credited(psn_no, body, new_balance, created=True), 201)

    return await ctx.db.transaction(work)


def _credited(psn_no: str, body: CreditIn, balc: Decimal, *, created: bool) -> dict:
    return {"psn_no": psn_no, "period": body.period, "amount": fmt(body.amount), "balc": fmt(balc), "created": created}


# ------------------------------------------------------------------ the monthly credit run


def _first_day(period: str) -> date:
    return date(int(period[:4]), int(period[5:7]), 1)


async def credit_run(ctx: Ctx, *, body: CreditRunIn, key: idem.IdempotencyKey | None) -> Answer:
    """Credit every employee for the month (DOMAIN §7): 201 {period, persons, total, …}; the same month again
    200 with the same answer (each person is credited once per month, whatever happens in between)."""
    period = body.period
    first = _first_day(period)
    today = business_date(ctx.now())
    if first > today.replace(day=1):
        raise Problem(
            422,
            "INVALID_PERIOD",
            f"{period} has not begun: a month is credited from its first day",
            errors=[{"field": "period", "code": "INVALID_PERIOD", "detail": "a future month"}],
        )
    return await idem.answer_once(ctx.db, key, lambda: _credit_run(ctx, period=period, first=first, key=key))


async def _credit_run(ctx: Ctx, *, period: str, first: date, key: idem.IdempotencyKey | None) -> Answer:
    async with ctx.db.connect() as unit:
        done = await unit.fetchval(_RUN, period=period)
    if done is not None and key is None:
        return Answer.json(done, 200)
    credits, skipped = _credits(ctx, await _roster(ctx, period=period), on=first) if done is None else ([], {})

    async def work(unit: Unit) -> Answer:
        if await unit.fetchval(_OWN_RUN, period=period) is None:  # run before (or by a concurrent call, now done)
            return Answer.json(await unit.fetchval(_RUN, period=period), 200)
        persons, total, left_out = 0, ZERO, dict(skipped)
        for start in range(0, len(credits), CREDIT_BATCH):
            batch = credits[start : start + CREDIT_BATCH]
            psn = [p for p, _ in batch]
            await unit.execute(_CREATE_ACCOUNTS, psn=psn)
            closed = {r.psn_no for r in await unit.fetch(_LOCK_ACCOUNTS, psn=psn) if r.closed_on is not None}
            open_ = [(p, a) for p, a in batch if p not in closed]
            left_out["account_closed"] = left_out.get("account_closed", 0) + len(batch) - len(open_)
            rows = await unit.fetch(
                _CREDIT_MANY, period=period, psn=[p for p, _ in open_], amount=[a for _, a in open_]
            )
            left_out["credited_before"] = left_out.get("credited_before", 0) + len(open_) - len(rows)
            persons += len(rows)
            total += sum((Decimal(r.amount) for r in rows), ZERO)
        body = {"period": period, "persons": persons, "total": fmt(total), "skipped": left_out}
        await unit.execute(_FINISH_RUN, period=period, persons=persons, total=total, answer=orjson.dumps(body).decode())
        return Answer.json(body, 201)

    return await ctx.db.transaction(idem.keeping(key, work))


def _credits(ctx: Ctx, roster: list[dict], *, on: date) -> tuple[list[tuple[str, Decimal]], dict[str, int]]:
    """(psn_no, amount) for each employee the month credits, and how many were left out, by reason."""
    credits: list[tuple[str, Decimal]] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for person in roster:
        psn_type, base = person.get("psn_type"), person.get("contribution_base")
        if psn_type not in ("in_service", "retired"):
            skip("no_person_type")
            continue
        if psn_type == "in_service" and base is None:
            skip("no_contribution_base")
            continue
        try:
            policy = ctx.book.policy_for(admdvs=str(person.get("insuplc_admdvs")), on=on)
        except PolicyNotFound:
            skip("no_policy")
            continue
        amount = monthly_account_credit(
            policy=policy, psn_type=psn_type, contribution_base=None if base is None else Decimal(base)
        )
        if amount <= 0:
            skip("nothing_to_credit")
            continue
        credits.append((str(person["psn_no"]), amount))
    return sorted(credits), skipped


async def _roster(ctx: Ctx, *, period: str) -> list[dict]:
    """Every employee with the person type in force on the month's first day and the contribution base on record
    (eligibility's GET /v1/account-roster, page by page)."""
    persons: list[dict] = []
    after = ""
    while True:
        page = await _roster_page(ctx, period=period, after=after)
        persons.extend(page["items"])
        if len(persons) > MAX_ROSTER:
            raise Problem(422, "ROSTER_TOO_LARGE", f"more than {MAX_ROSTER} employees to credit in one run")
        after = page.get("next_after") or ""
        if not after:
            return persons


async def _roster_page(ctx: Ctx, *, period: str, after: str) -> dict:
    params = {"month": period, "limit": str(ROSTER_PAGE)}
    if after:
        params["after"] = after
    try:
        response = await ctx.eligibility.get("/v1/account-roster", params=params, headers={"X-Api-Key": ctx.api_key})
    except Exception as exc:  # httpx errors, timeouts: eligibility cannot answer now
        raise EligibilityUnavailable(f"eligibility did not answer ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise refused(response)
    try:
        page = orjson.loads(response.content)
        items = [
            {
                "psn_no": str(i["psn_no"]),
                "psn_type": i.get("psn_type"),
                "contribution_base": i.get("contribution_base"),
                "insuplc_admdvs": str(i["insuplc_admdvs"]),
            }
            for i in page["items"]
        ]
        for item in items:
            if item["contribution_base"] is not None:
                Decimal(str(item["contribution_base"]))
    except (ValueError, KeyError, TypeError, ArithmeticError):
        raise EligibilityUnavailable("eligibility answered an unexpected roster") from None
    return {"items": items, "next_after": page.get("next_after")}


# ------------------------------------------------------------------ statement


_KINDS = {"credit": "credit", "refund": "reversal", "closure": "closure"}


async def statement(
    ctx: Ctx,
    *,
    psn_no: str,
    year: int,
    principal: Principal,
    cert_type: str | None = None,
    cert_no: str | None = None,
) -> dict:
    """The year's movements with the running balance: {psn_no, year, opening_balc, closing_balc, entries}."""
    start = datetime.combine(date(year, 1, 1), time(), BUSINESS_TZ)
    end = datetime.combine(date(year + 1, 1, 1), time(), BUSINESS_TZ)
    async with ctx.db.connect() as unit:
        await _may_read(ctx, unit, psn_no=psn_no, principal=principal, cert_type=cert_type, cert_no=cert_no)
        opening = Decimal(await unit.fetchval(_OPENING, psn_no=psn_no, start=start))
        rows = await unit.fetch(_MOVEMENTS, psn_no=psn_no, start=start, end=end, limit=MAX_STATEMENT_ENTRIES + 1)
    running = opening
    entries = []
    for row in rows[:MAX_STATEMENT_ENTRIES]:
        amount = Decimal(row.amount)
        running += amount
        kind = _KINDS.get(row.kind)
        if kind is None:  # a payment: the holder's own, or for a family member (家庭共济)
            kind = "payment" if row.for_psn_no in (None, psn_no) else "family_payment"
        entry = {"at": row.created_at.astimezone(BUSINESS_TZ).isoformat(), "kind": kind, "amount": fmt(amount)}
        if row.setl_id:
            entry["setl_id"] = row.setl_id
        if kind == "family_payment":
            entry["for_psn_no"] = row.for_psn_no
        if kind == "credit" and row.period:
            entry["period"] = row.period
        entry["balc"] = fmt(running)
        entries.append(entry)
    return {
        "psn_no": psn_no,
        "year": year,
        "opening_balc": fmt(opening),
        "closing_balc": fmt(running),
        "entries": entries,
        "truncated": len(rows) > MAX_STATEMENT_ENTRIES,
    }


# ------------------------------------------------------------------ closure


async def close(ctx: Ctx, *, psn_no: str, body: ClosureIn, key: idem.IdempotencyKey | None) -> Answer:
    """Transfer out or death: the balance is paid out and the account refuses later payments (200
    {psn_no, paid_out, closed_on, reason}); the same closure again answers the same; another one 409."""
    today = business_date(ctx.now())
    if body.closed_on > today:
        raise Problem(
            422,
            "INVALID_CLOSED_ON",
            f"closed_on {body.closed_on.isoformat()} is after today",
            errors=[{"field": "closed_on", "code": "INVALID_CLOSED_ON", "detail": "a future date"}],
        )

    async def work(unit: Unit) -> Answer:
        account = await unit.fetchrow(_LOCK, psn_no=psn_no)
        if account.closed_on is not None:
            if (account.closed_on, account.closure_reason) != (body.closed_on, body.reason):
                raise Problem(
                    409,
                    "ACCOUNT_CLOSED",
                    f"the account of {psn_no} was closed on {account.closed_on.isoformat()} ({account.closure_reason})",
                )
            paid = Decimal(await unit.fetchval(_PAID_OUT, psn_no=psn_no) or ZERO)
            return Answer.json(_closed(psn_no, body, paid), 200)
        paid = Decimal(account.balc)
        await unit.fetchval(_CLOSE, psn_no=psn_no, closed_on=body.closed_on, reason=body.reason, paid=paid)
        return Answer.json(_closed(psn_no, body, paid), 200)

    return await idem.run(ctx.db, key, work)


def _closed(psn_no: str, body: ClosureIn, paid: Decimal) -> dict:
    return {
        "psn_no": psn_no,
        "paid_out": fmt(paid),
        "closed_on": body.closed_on.isoformat(),
        "reason": body.reason,
        "balc": "0.00",
    }
