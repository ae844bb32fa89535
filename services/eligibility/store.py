"""Institutions (定点机构): registration, suspension, and the `institution-changed` event."""

from __future__ import annotations

from typing import Any

from services.eligibility.schemas import InstitutionIn
from shared.db import Row, Sql, Unit
from shared.events.topics import INSTITUTION_CHANGED
from shared.problems import Problem, not_found

_REGISTER = Sql("""
INSERT INTO institutions (fixmedins_code, fixmedins_name, kind, level, affiliation, admdvs)
VALUES (:fixmedins_code, :fixmedins_name, :kind, :level, :affiliation, :admdvs)
ON CONFLICT DO NOTHING RETURNING *
""")
_GET = Sql("SELECT * FROM institutions WHERE fixmedins_code = :code")
_SET_SUSPENDED = Sql("""
UPDATE institutions SET suspended = :suspended, version = version + 1, updated_at = now()
WHERE fixmedins_code = :code RETURNING *
""")


def institution_payload(row: Row) -> dict[str, Any]:
    """The institution as other services see it in `institution-changed`."""
    return {
        "fixmedins_code": row.fixmedins_code,
        "fixmedins_name": row.fixmedins_name,
        "kind": row.kind,
        "level": row.level,
        "affiliation": row.affiliation,
        "admdvs": row.admdvs,
        "suspended": row.suspended,
        "version": row.version,
    }


async def register_institution(unit: Unit, body: InstitutionIn) -> tuple[dict[str, Any], bool]:
    """Create an institution; the same body again is a no-op, a different one a 409."""
    values = body.model_dump()
    row = await unit.fetchrow(_REGISTER, **values)
    if row is None:
        existing = await unit.fetchrow(_GET, code=body.fixmedins_code)
        if any(existing[k] != v for k, v in values.items()):
            raise Problem(409, "INSTITUTION_EXISTS", f"institution {body.fixmedins_code} exists with other attributes")
        return institution_payload(existing), False
    payload = institution_payload(row)
    await unit.publish(topic=INSTITUTION_CHANGED, key=row.fixmedins_code, payload=payload)
    return payload, True


async def set_suspended(unit: Unit, code: str, suspended: bool) -> dict[str, Any]:
    """Suspend (or resume) an institution's designation."""
    row = await unit.fetchrow(_SET_SUSPENDED, code=code, suspended=suspended)
    if row is None:
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    payload = institution_payload(row)
    await unit.publish(topic=INSTITUTION_CHANGED, key=code, payload=payload)
    return payload


async def get_institution(unit: Unit, code: str) -> dict[str, Any]:
    row = await unit.fetchrow(_GET, code=code)
    if row is None:
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    return institution_payload(row)
