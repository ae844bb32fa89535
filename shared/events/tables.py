"""Outbox, inbox and dead-letter tables, one set in each service's schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID


@dataclass(frozen=True)
class EventTables:
    outbox: Table
    inbox: Table
    dead_letter: Table


def event_tables(metadata: MetaData) -> EventTables:
    """Declare the event tables on a service's metadata (its schema)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        Column("topic", String(64), nullable=False),
        Column("key", String(64), nullable=False),
        Column("type", String(64), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("epoch", Text),  # the broker life it was published to (shared.events.epoch)
        Column("partition", Integer),
        Column("offset", BigInteger),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("applied_by", ARRAY(Text), nullable=False, server_default=text("'{}'")),  # groups whose inbox has it
        Column("delivered", Boolean, nullable=False, server_default=text("false")),  # every consumer group applied it
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_published_at", "published_at"),
        Index("ix_outbox_undelivered", "id", postgresql_where=text("published_at IS NOT NULL AND NOT delivered")),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=False), primary_key=True),
        Column("topic", String(64), nullable=False),
        Column("type", String(64), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    dead_letter = Table(
        "dead_letter",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=False), nullable=False),
        Column("topic", String(64), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return EventTables(outbox=outbox, inbox=inbox, dead_letter=dead_letter)


def create_event_tables(op: Any, schema: str) -> None:
    """Migration step: the outbox, inbox and dead-letter tables in a service's schema."""
    import sqlalchemy as sa

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["id"], schema=schema, postgresql_where=sa.text("published_at IS NULL")
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"], schema=schema)
    op.create_table(
        "inbox",
        sa.Column("event_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", UUID(as_uuid=False), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )


def add_broker_epochs(op: Any, schema: str) -> None:
    """Migration step: outbox rows remember the broker epoch they were published to, which consumer groups have
    applied them and whether all have (docs/events.md, "Delivery"). Rows published before are marked "legacy" and
    not delivered: the relay asks the consumer groups about them like about any other."""
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import ARRAY as PgArray

    op.add_column("outbox", sa.Column("epoch", sa.Text), schema=schema)
    op.add_column(
        "outbox",
        sa.Column("applied_by", PgArray(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        schema=schema,
    )
    op.add_column(
        "outbox", sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()), schema=schema
    )
    op.execute(f"UPDATE {schema}.outbox SET epoch = 'legacy' WHERE published_at IS NOT NULL")
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NOT NULL AND NOT delivered"),
    )


def drop_broker_epochs(op: Any, schema: str) -> None:
    """Downgrade of `add_broker_epochs`."""
    op.drop_index("ix_outbox_undelivered", "outbox", schema=schema)
    for column in ("delivered", "applied_by", "epoch"):
        op.drop_column("outbox", column, schema=schema)
