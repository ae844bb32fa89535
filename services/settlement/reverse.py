"""Reversal of a settlement: restore the accumulators (the negated stored delta), refund the account,
reopen the visit (or free the prescription), emit settlement-reversed (+ subsidy-due reversal)."""

from __future__ import annotations

import asyncpg
from fastapi.responses import Response

from services.settlement import idempotency as idem
from services.settlement.ledger import lock_accumulators, write_reversal
from services.settlement.pgconn import Sql, connection, execute, fetch, fetchrow, run_in_transaction
from services.settlement.runtime import Ctx
from shared.auth import Principal
from shared.problems import Problem, not_found

_FIND = Sql("SELECT psn_no, year, fixmedins_code, status FROM settlement.settlements WHERE setl_id = :setl_id")
_MARK = Sql("""
UPDATE settlement.settlements SET status = 'reversed', reversed_at = :at, rev_date = :day
 WHERE setl_id = :setl_id AND status = 'settled'
RETURNING setl_id, mdtrt_id, psn_no, year, fixmedins_code, med_type, acct_pay, acct_payer_psn_no,
          accumulator_delta, event, subsidy
""")
_REOPEN = Sql("""
UPDATE settlement.visits SET status = CASE WHEN status = 'settled' THEN 'open' ELSE status END, setl_id = NULL
 WHERE (mdtrt_id = :mdtrt_id OR merged_into = :mdtrt_id) AND setl_id = :setl_id
RETURNING rx_no
""")
_FREE_PRESCRIPTION = Sql(
    "UPDATE settlement.prescriptions SET used_setl_id = NULL, used_at = NULL WHERE used_setl_id = :setl_id "
    "AND rx_no = :rx_no")


async def reverse(ctx: Ctx, *, setl_id: str, principal: Principal, key: idem.IdempotencyKey | None) -> Response:
    """200 {setl_id, reversed_at}; 409 ALREADY_REVERSED the second time (unless the same Idempotency-Key)."""
    replay = await idem.stored_answer(ctx.pool, key)
    if replay is not None:
        return replay
    async with connection(ctx.pool) as conn:
        found = await fetchrow(conn, _FIND, setl_id=setl_id)
    if found is None:
        raise not_found("settlement", setl_id, "SETTLEMENT_NOT_FOUND")
    principal.require_institution(found["fixmedins_code"])

    async def work(conn: asyncpg.Connection) -> Response:
        first = await idem.claim(conn, key)
        if first is not None:
            return first
        before = await lock_accumulators(conn, psn_no=found["psn_no"], year=found["year"])
        now = ctx.now()
        row = await fetchrow(conn, _MARK, setl_id=setl_id, at=now, day=now.date())
        if row is None:
            raise Problem(409, "ALREADY_REVERSED", f"settlement {setl_id} is already reversed")
        for reopened in await fetch(conn, _REOPEN, mdtrt_id=row["mdtrt_id"], setl_id=setl_id):
            if reopened["rx_no"]:
                await execute(conn, _FREE_PRESCRIPTION, setl_id=setl_id, rx_no=reopened["rx_no"])
        body = await write_reversal(conn, row=row, before=before, reversed_at=now)
        response = idem.json_response(body, 200)
        await idem.remember(conn, key, response)
        return response

    try:
        return await run_in_transaction(ctx.pool, work)
    except Problem:
        replay = await idem.stored_answer(ctx.pool, key)
        if replay is not None:
            return replay
        raise
