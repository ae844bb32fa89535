"""Local copies of another service's data, fed by its events (no service reads another's tables)."""

from __future__ import annotations

from sqlalchemy import Boolean, case, Column, DateTime, Integer, MetaData, SmallInteger, String, Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope


def institution_copy(metadata: MetaData) -> Table:
    """The institutions as eligibility last announced them; `applied` counts the events applied."""
    return Table(
        "institutions", metadata,
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
    )


def create_institution_copy(op, schema: str) -> None:
    """Migration step for `institution_copy`."""
    import sqlalchemy as sa

    op.create_table(
        "institutions",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("fixmedins_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.SmallInteger),
        sa.Column("affiliation", sa.String(16), nullable=False),
        sa.Column("admdvs", sa.String(6), nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )


def institution_changed_handler(table: Table):
    """Handler for `institution-changed`: keep the newest version (events may arrive out of order)."""

    async def handle(session: AsyncSession, event: Envelope) -> None:
        p = event.payload
        values = {k: p[k] for k in ("fixmedins_code", "fixmedins_name", "kind", "level", "affiliation",
                                    "admdvs", "suspended", "version")}
        stmt = insert(table).values(**values, applied=1)
        is_newer = stmt.excluded.version > table.c.version
        columns = [k for k in values if k != "fixmedins_code"]
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["fixmedins_code"],
            set_={**{k: case((is_newer, stmt.excluded[k]), else_=table.c[k]) for k in columns},
                  "applied": table.c.applied + 1, "updated_at": func.now()},
        ))

    return handle
