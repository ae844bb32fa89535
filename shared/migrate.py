"""Alembic, one history per service, its version table in its own schema, run at start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger("yibao.migrate")

# One advisory lock key per schema name, so replicas starting together migrate one at a time.
_LOCK_BASE = 0x5942_4100


def alembic_config(*, schema: str, migrations_dir: Path) -> Config:
    """An Alembic config for one service's history."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["schema"] = schema
    return cfg


def run_env(context: Any, target_metadata: Any) -> None:
    """Body of every service's env.py: migrate on the connection handed over by `migrate`."""
    schema = context.config.attributes["schema"]
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table="alembic_version",
        version_table_schema=schema,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def migrate(database_url: str, *, schema: str, migrations_dir: Path, revision: str = "head") -> None:
    """Create the schema if needed and upgrade it to `revision`, under an advisory lock.

    Alembic runs on a SQLAlchemy engine of its own, disposed of afterwards (the services use shared.db)."""
    lock = _LOCK_BASE + sum(schema.encode())
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def _upgrade(connection: Connection) -> None:
        cfg = alembic_config(schema=schema, migrations_dir=migrations_dir)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 10})
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select pg_advisory_lock(:k)"), {"k": lock})
            try:
                await conn.execute(text(f'create schema if not exists "{schema}"'))
                await conn.commit()
                await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                await conn.execute(text("select pg_advisory_unlock(:k)"), {"k": lock})
                await conn.commit()
    finally:
        await engine.dispose()
    log.info("schema %s is at %s", schema, revision)
