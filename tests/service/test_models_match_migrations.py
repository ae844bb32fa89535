"""models.py is what each service's migrations build: the tables, columns, types and indexes (Alembic's own
comparison, on a database migrated from nothing). models.py is the readable schema of a service; the statements
name its tables in plain SQL (shared.db), so nothing else would notice it drifting."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import migrate
from tests.integration.conftest import create_database

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("eligibility", "settlement", "prepayment", "reporting")


@pytest.fixture(scope="module")
async def migrated(pg) -> str:
    url = await create_database(pg, "models")
    for service in SERVICES:
        await migrate(url, schema=service, migrations_dir=REPO / "services" / service / "migrations")
    return url


@pytest.mark.parametrize("service", SERVICES)
async def test_models_are_what_the_migrations_build(migrated, service):
    metadata = importlib.import_module(f"services.{service}.models").metadata
    engine = create_async_engine(migrated.replace("postgresql://", "postgresql+asyncpg://", 1))

    def compare(connection):
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "compare_type": True,
                "include_name": lambda name, kind, parent: (name == service) if kind == "schema" else True,
                "include_object": lambda obj, name, kind, reflected, other: name != "alembic_version",
            },
        )
        return compare_metadata(context, metadata)

    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(compare)
    finally:
        await engine.dispose()
    assert differences == [], "\n".join(str(d)[:300] for d in differences)
