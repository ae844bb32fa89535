"""Reading settlements: one, a day's list, and the day's totals for reconciliation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.settlement.runtime import Ctx
from shared.auth import Principal
from shared.db import Sql
from shared.money import fmt
from shared.problems import Problem, not_found

_ONE = Sql("""
SELECT fixmedins_code, breakdown || jsonb_build_object(
         'status', status, 'reversed_at', reversed_at, 'rev_date', rev_date) AS body
  FROM settlements WHERE setl_id = :setl_id
""")
_LIST = Sql("""
SELECT (breakdown - 'trace') || jsonb_build_object('status', status, 'reversed_at', reversed_at, 'rev_date', rev_date)
  FROM settlements
 WHERE setl_date = :day AND (CAST(:code AS text) IS NULL OR fixmedins_code = :code)
 ORDER BY setl_time, setl_id LIMIT :limit OFFSET :offset
""")
_COUNT = Sql("""
SELECT count(*) FROM settlements
 WHERE setl_date = :day AND (CAST(:code AS text) IS NULL OR fixmedins_code = :code)
""")
_TOTALS = Sql("""
SELECT coalesce(sum(n), 0) AS count, coalesce(sum(medfee), 0) AS medfee, coalesce(sum(fund), 0) AS fund,
       coalesce(sum(fin), 0) AS fin, coalesce(sum(psn), 0) AS psn
  FROM (SELECT 1 AS n, medfee_sumamt AS medfee, fund_pay_sumamt AS fund, fin_subsidy_pay AS fin, psn_pay AS psn
          FROM settlements WHERE setl_date = :day
        UNION ALL
        SELECT -1, -medfee_sumamt, -fund_pay_sumamt, -fin_subsidy_pay, -psn_pay
          FROM settlements WHERE rev_date = :day) moves
""")
MAX_PAGE = 500


async def get_settlement(ctx: Ctx, *, setl_id: str, principal: Principal) -> dict:
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_ONE, setl_id=setl_id)
    if row is None:
        raise not_found("settlement", setl_id, "SETTLEMENT_NOT_FOUND")
    if principal.role in ("his", "pharmacy"):
        principal.require_institution(row.fixmedins_code)
    return row.body


async def list_settlements(
    ctx: Ctx, *, setl_date: date, fixmedins_code: str | None, principal: Principal, limit: int, offset: int
) -> dict:
    """A business day's settlements (trace left out), an institution's own for HIS and pharmacy keys."""
    if principal.role in ("his", "pharmacy"):
        if fixmedins_code is None:
            fixmedins_code = principal.fixmedins_code
        principal.require_institution(fixmedins_code)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise Problem(422, "INVALID_PAGE", f"limit must be 1..{MAX_PAGE}, offset ≥ 0")
    async with ctx.db.connect() as unit:
        items = [
            row[0] for row in await unit.fetch(_LIST, day=setl_date, code=fixmedins_code, limit=limit, offset=offset)
        ]
        total = await unit.fetchval(_COUNT, day=setl_date, code=fixmedins_code)
    return {
        "setl_date": setl_date.isoformat(),
        "fixmedins_code": fixmedins_code,
        "count": total,
        "limit": limit,
        "offset": offset,
        "items": items,
    }


async def totals(ctx: Ctx, *, day: date) -> dict:
    """Settlements of the business day minus the reversals of that day (reporting reconciles against it)."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_TOTALS, day=day)
    return {
        "date": day.isoformat(),
        "count": int(row.count),
        "medfee_sumamt": fmt(Decimal(row.medfee)),
        "fund_pay_sumamt": fmt(Decimal(row.fund)),
        "fin_subsidy_pay": fmt(Decimal(row.fin)),
        "psn_pay": fmt(Decimal(row.psn)),
    }
