"""Local copies of another service's data, fed by its events (no service reads another's tables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, SmallInteger, String, Table, func

from shared.db import Sql, Unit
from shared.events.envelope import Envelope

INSTITUTION_FIELDS = (
    "fixmedins_code",
    "fixmedins_name",
    "kind",
    "level",
    "affiliation",
    "admdvs",
    "suspended",
    "version",
)


def _institution_columns() -> list[Column[Any]]:
    """The local copy's columns (new objects each call: a column belongs to one table)."""
    return [
        Column("fixmedins_code", String(32), primary_key=True),
        Column("fixmedins_name", String(200), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("level", SmallInteger),
        Column("affiliation", String(16), nullable=False),
        Column("admdvs", String(6), nullable=False),
        Column("suspended", Boolean, nullable=False),
        Column("version", Integer, nullable=False),
        Column("applied", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def institution_copy(metadata: MetaData) -> Table:
    """The institutions as eligibility last announced them; `applied` counts the events applied."""
    return Table("institutions", metadata, *_institution_columns())


def create_institution_copy(op: Any, schema: str) -> None:
    """Migration step for `institution_copy`."""
    op.create_table("institutions", *_institution_columns(), schema=schema)


def _newer(column: str) -> str:
    return f"{column} = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.{column} ELSE t.{column} END"


# The newest version wins (events may arrive out of order); every application is counted.
_APPLY_INSTITUTION = Sql(f"""
INSERT INTO institutions AS t ({", ".join(INSTITUTION_FIELDS)}, applied)
VALUES ({", ".join(":" + f for f in INSTITUTION_FIELDS)}, 1)
ON CONFLICT (fixmedins_code) DO UPDATE SET
  {", ".join(_newer(f) for f in INSTITUTION_FIELDS[1:])}, applied = t.applied + 1, updated_at = now()
""")


def institution_changed_handler(*, after_commit: Callable[[], None] | None = None):  # type: ignore[no-untyped-def]
    """Handler for `institution-changed` into the local copy; `after_commit` runs once the change is committed."""

    async def handle(unit: Unit, event: Envelope) -> None:
        await unit.execute(_APPLY_INSTITUTION, **{k: event.payload[k] for k in INSTITUTION_FIELDS})
        if after_commit is not None:
            unit.after_commit(after_commit)

    return handle
