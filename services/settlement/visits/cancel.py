"""Taking back what a visit holds before it is settled: the registration or admission itself (门诊挂号撤销 2202,
入院撤销 2404), the discharge (出院撤销 2405) and unsettled fee lines (费用明细撤销 2205 / 2302).

A cancelled visit is `closed` with no settlement: it takes no more lines, no discharge and no settlement, and it
merges with nothing. Every change raises the visit's `lines_version`, so a settle that loaded the visit before the
change writes nothing (settle/settle.py guards on that version). A settled visit is reversed first
(POST /v1/settlements/{setl_id}/reverse), which reopens it.
"""

from __future__ import annotations

import re

from pydantic import Field, StrictBool, model_validator

from services.settlement.runtime import Ctx
from services.settlement.schemas import IDENT, Strict
from services.settlement.visits.visits import NOT_OPEN, visit_json
from shared.auth import Principal
from shared.db import Row, Sql, Unit
from shared.problems import Problem, not_found

_SN = re.compile(IDENT)
_LOCK_VISIT = Sql("SELECT * FROM visits WHERE mdtrt_id = :mdtrt_id FOR UPDATE")
# Outpatient visits merged into an admission that is cancelled stand on their own again.
_UNMERGE = Sql(
    "UPDATE visits SET status = 'open', merged_into = NULL WHERE merged_into = :mdtrt_id AND status = 'merged'"
)
_CLOSE = Sql(
    "UPDATE visits SET status = 'closed', lines_version = lines_version + 1 WHERE mdtrt_id = :mdtrt_id RETURNING *"
)
_UNDISCHARGE = Sql(
    "UPDATE visits SET endtime = NULL, enddate = NULL, lines_version = lines_version + 1 "
    "WHERE mdtrt_id = :mdtrt_id RETURNING *"
)
_DELETE_LINES = Sql("""
DELETE FROM fee_lines
 WHERE mdtrt_id = :mdtrt_id AND (CAST(:everything AS boolean) OR feedetl_sn = ANY(CAST(:sns AS text[])))
RETURNING feedetl_sn
""")
_BUMP = Sql("UPDATE visits SET lines_version = lines_version + 1 WHERE mdtrt_id = :mdtrt_id")
_COUNT_LINES = Sql("SELECT count(*) FROM fee_lines WHERE mdtrt_id = :mdtrt_id")


class LinesCancelIn(Strict):
    """Which unsettled lines to take back: the listed feedetl_sn, or every line (`all`)."""

    feedetl_sn: list[str] = Field(default_factory=list, max_length=1000)
    all: StrictBool = False

    @model_validator(mode="after")
    def _one_way(self) -> LinesCancelIn:
        if self.all == bool(self.feedetl_sn):
            raise ValueError("give either feedetl_sn (a list) or all: true")
        for sn in self.feedetl_sn:
            if len(sn) > 64 or not _SN.fullmatch(sn):
                raise ValueError("a feedetl_sn is 1 to 64 letters, digits or _.:/-")
        return self


def _is_cancelled(row: Row) -> bool:
    """A registration or admission cancelled before (closed without a settlement, not a pharmacy or claim visit)."""
    return row.status == "closed" and row.setl_id is None and row.rx_no is None and row.claim_id is None


async def locked_visit(unit: Unit, *, mdtrt_id: str, principal: Principal) -> Row:
    row = await unit.fetchrow(_LOCK_VISIT, mdtrt_id=mdtrt_id)
    if row is None:
        raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
    principal.require_institution(row.fixmedins_code)
    return row


def refuse_unless_open(row: Row) -> None:
    if row.status == "open":
        return
    if _is_cancelled(row):
        raise Problem(409, "VISIT_CANCELLED", f"visit {row.mdtrt_id} is cancelled")
    code, why = NOT_OPEN.get(row.status, ("VISIT_CLOSED", "is closed"))
    raise Problem(409, code, f"visit {row.mdtrt_id} {why}")


async def cancel_visit(ctx: Ctx, *, mdtrt_id: str, principal: Principal) -> dict:
    """Cancel an unsettled registration or admission (the same again: the same answer). A discharged admission is
    undischarged first (409 DISCHARGED); a settled one is reversed first (409 ALREADY_SETTLED)."""

    async def work(unit: Unit) -> dict:
        row = await locked_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
        if _is_cancelled(row):
            return visit_json(row)
        if row.med_type not in ("11", "14", "21"):
            raise Problem(409, "VISIT_CLOSED", f"visit {mdtrt_id} is a pharmacy or declared visit")
        refuse_unless_open(row)
        if row.med_type == "21" and row.endtime is not None:
            raise Problem(409, "DISCHARGED", f"admission {mdtrt_id} is discharged; cancel the discharge first")
        await unit.execute(_UNMERGE, mdtrt_id=mdtrt_id)
        return visit_json(await unit.fetchrow(_CLOSE, mdtrt_id=mdtrt_id))

    return await ctx.db.transaction(work)


async def cancel_discharge(ctx: Ctx, *, mdtrt_id: str, principal: Principal) -> dict:
    """Take back the discharge of an unsettled admission: it is in hospital again (409 NOT_DISCHARGED if it is)."""

    async def work(unit: Unit) -> dict:
        row = await locked_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
        if row.med_type != "21":
            raise Problem(422, "NOT_INPATIENT", f"visit {mdtrt_id} is not an admission (med_type 21)")
        refuse_unless_open(row)
        if row.endtime is None:
            raise Problem(409, "NOT_DISCHARGED", f"admission {mdtrt_id} is not discharged")
        return visit_json(await unit.fetchrow(_UNDISCHARGE, mdtrt_id=mdtrt_id))

    return await ctx.db.transaction(work)


async def cancel_lines(ctx: Ctx, *, mdtrt_id: str, body: LinesCancelIn, principal: Principal) -> dict:
    """Take back unsettled fee lines: {mdtrt_id, cancelled: [feedetl_sn …], line_count}. Lines already gone are
    no error (the same request again answers an empty `cancelled`)."""

    async def work(unit: Unit) -> dict:
        row = await locked_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
        refuse_unless_open(row)
        gone = await unit.fetch(_DELETE_LINES, mdtrt_id=mdtrt_id, everything=body.all, sns=body.feedetl_sn)
        if gone:
            await unit.execute(_BUMP, mdtrt_id=mdtrt_id)
        return {
            "mdtrt_id": mdtrt_id,
            "cancelled": sorted(r["feedetl_sn"] for r in gone),
            "line_count": await unit.fetchval(_COUNT_LINES, mdtrt_id=mdtrt_id),
        }

    return await ctx.db.transaction(work)


__all__ = ["LinesCancelIn", "cancel_discharge", "cancel_lines", "cancel_visit"]
