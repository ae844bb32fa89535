"""Tables of the eligibility service (schema `eligibility`)."""

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, SmallInteger, String, Table, func

from shared.events import event_tables

SCHEMA = "eligibility"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)

institutions = Table(
    "institutions", metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("fixmedins_name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("level", SmallInteger),
    Column("affiliation", String(16), nullable=False),
    Column("admdvs", String(6), nullable=False),
    Column("suspended", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
