"""The account roster: what the settlement service's monthly credit run needs of every employee (DOMAIN §7).

One page of employees (insutype 310) in psn_no order, each with the person type in force on the month's first day
(a retirement takes effect on the first day of the month after it, so the month it shows `retired` is the first
credited as retired), the contribution base on record and the insured place (whose policy prices the credit).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.db import Sql, Unit
from shared.money import fmt

MAX_PAGE = 5000

_PAGE = Sql("""
SELECT p.psn_no, p.insuplc_admdvs, p.contribution_base,
       (SELECT t.psn_type FROM psn_types t
         WHERE t.psn_no = p.psn_no AND t.effective_from <= :on
         ORDER BY t.effective_from DESC LIMIT 1) AS psn_type
  FROM persons p
 WHERE p.insutype = '310' AND p.psn_no > :after
 ORDER BY p.psn_no LIMIT :limit
""")


async def account_roster(unit: Unit, *, month: str, after: str, limit: int) -> dict[str, Any]:
    """{month, on, items: [{psn_no, psn_type, contribution_base, insuplc_admdvs}], next_after} (null: the last)."""
    on = date(int(month[:4]), int(month[5:7]), 1)
    rows = await unit.fetch(_PAGE, on=on, after=after, limit=limit)
    items = [
        {
            "psn_no": row.psn_no,
            "psn_type": row.psn_type,
            "contribution_base": None if row.contribution_base is None else fmt(row.contribution_base),
            "insuplc_admdvs": row.insuplc_admdvs,
        }
        for row in rows
    ]
    return {
        "month": month,
        "on": on.isoformat(),
        "items": items,
        "next_after": items[-1]["psn_no"] if len(items) == limit else None,
    }
