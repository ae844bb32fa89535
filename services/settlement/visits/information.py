"""The information of an outpatient visit once the doctor has seen the patient (门诊就诊信息上传 2203): an HIS
registers first (2201) and sends the kind of visit (11 general, 14 chronic), the diagnoses and the chronic disease
afterwards. Only an open outpatient visit takes it; the visit's `lines_version` is raised, so a settle that loaded
the visit before the change writes nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from services.settlement.runtime import Ctx
from services.settlement.schemas import CODE, Strict, check_diagnoses
from services.settlement.visits.cancel import locked_visit, refuse_unless_open
from services.settlement.visits.visits import visit_json
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.events.envelope import dumps
from shared.problems import Problem

_UPDATE = Sql("""
UPDATE visits SET med_type = :med_type, diagnoses = CAST(:diagnoses AS jsonb), chronic_disease = :chronic_disease,
       lines_version = lines_version + 1
 WHERE mdtrt_id = :mdtrt_id RETURNING *
""")
# The common case in one statement, committed by itself: an open outpatient visit of the caller's institution.
_UPDATE_OPEN = Sql("""
UPDATE visits SET med_type = :med_type, diagnoses = CAST(:diagnoses AS jsonb), chronic_disease = :chronic_disease,
       lines_version = lines_version + 1
 WHERE mdtrt_id = :mdtrt_id AND status = 'open' AND med_type IN ('11', '14')
   AND (CAST(:code AS text) IS NULL OR fixmedins_code = :code)
RETURNING *
""")


class VisitInformationIn(Strict):
    med_type: Literal["11", "14"]
    diagnoses: list[str] = Field(default_factory=list, max_length=50)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)

    @field_validator("diagnoses")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return check_diagnoses(value)


async def set_information(ctx: Ctx, *, mdtrt_id: str, body: VisitInformationIn, principal: Principal) -> dict:
    """The visit with its new med_type, diagnoses and chronic disease (an admission's are fixed at admission).

    One guarded statement; when it changes nothing, the visit is read under its lock to say why."""
    values = dict(
        mdtrt_id=mdtrt_id,
        med_type=body.med_type,
        diagnoses=dumps([d.upper() for d in body.diagnoses]),
        chronic_disease=body.chronic_disease,
    )
    async with ctx.db.connect() as unit:
        code = None if principal.role == "admin" else principal.fixmedins_code
        updated = await unit.fetchrow(_UPDATE_OPEN, code=code, **values)
    if updated is not None:
        return visit_json(updated)

    async def work(unit: Unit) -> dict:
        row = await locked_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
        refuse_unless_open(row)
        if row.med_type not in ("11", "14"):
            raise Problem(422, "NOT_OUTPATIENT", f"visit {mdtrt_id} is not an outpatient visit (med_type 11 or 14)")
        return visit_json(await unit.fetchrow(_UPDATE, **values))

    return await ctx.db.transaction(work)
