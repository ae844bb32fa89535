"""The eligibility service: who is insured, on what terms, on which day."""

import gc
from pathlib import Path

from fastapi import FastAPI

from services.eligibility.api import router
from services.eligibility.models import SCHEMA, events, metadata
from services.eligibility.snapshot import close_read_pool, open_read_pool
from shared.service import ServiceSpec, create_app


async def on_startup(app: FastAPI) -> None:
    """Open the snapshot's read pool, then freeze what start-up allocated: the modules, tables and
    routes live for the whole process, and leaving them to the cyclic collector made every full
    collection a pause of tens of milliseconds on the snapshot's hot path."""
    await open_read_pool(app)
    gc.collect()
    gc.freeze()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao eligibility",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    on_startup=on_startup,
    on_shutdown=close_read_pool,
)
app = create_app(spec)
