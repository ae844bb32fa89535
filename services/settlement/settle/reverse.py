"""Reversal of a settlement: restore the accumulators (the negated stored delta), refund the account,
reopen the visit (or free the prescription), emit settlement-reversed (+ subsidy-due reversal)."""

from __future__ import annotations

from services.settlement.runtime import Ctx
from services.settlement.settle.payloads import reversal_answer, reversal_events
from services.settlement.store.ledger import lock_accumulators, mark_reversed, write_reversal
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.problems import Problem, not_found

_FIND = Sql("SELECT psn_no, year, fixmedins_code, status FROM settlements WHERE setl_id = :setl_id")
_REOPEN = Sql("""
UPDATE visits SET status = CASE WHEN status = 'settled' THEN 'open' ELSE status END, setl_id = NULL
 WHERE (mdtrt_id = :mdtrt_id OR merged_into = :mdtrt_id) AND setl_id = :setl_id
RETURNING rx_no
""")
_FREE_PRESCRIPTION = Sql(
    "UPDATE prescriptions SET used_setl_id = NULL, used_at = NULL WHERE used_setl_id = :setl_id AND rx_no = :rx_no"
)


async def reverse(ctx: Ctx, *, setl_id: str, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """200 {setl_id, reversed_at}; 409 ALREADY_REVERSED the second time (unless the same Idempotency-Key)."""
    async with ctx.db.connect() as unit:
        found = await unit.fetchrow(_FIND, setl_id=setl_id)
    if found is None:
        raise not_found("settlement", setl_id, "SETTLEMENT_NOT_FOUND")
    principal.require_institution(found.fixmedins_code)

    async def work(unit: Unit) -> Answer:
        before = await lock_accumulators(unit, psn_no=found.psn_no, year=found.year)
        now = ctx.now()
        row = await mark_reversed(unit, setl_id=setl_id, at=now)
        if row is None:
            raise Problem(409, "ALREADY_REVERSED", f"settlement {setl_id} is already reversed")
        for reopened in await unit.fetch(_REOPEN, mdtrt_id=row.mdtrt_id, setl_id=setl_id):
            if reopened.rx_no:
                await unit.execute(_FREE_PRESCRIPTION, setl_id=setl_id, rx_no=reopened.rx_no)
        await write_reversal(unit, row=row, before=before, events=reversal_events(row, reversed_at=now))
        return Answer.json(reversal_answer(row, reversed_at=now), 200)

    return await idem.run(ctx.db, key, work)
