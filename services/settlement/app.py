"""The settlement service: composition root (policy book, catalogue cache, eligibility client, clock)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from fastapi import FastAPI

from services.settlement import handlers as consumers
from services.settlement.api import router
from services.settlement.api_channels import router as channels_router
from services.settlement.catalogue_store import CatalogueCache, load_reference, seed
from services.settlement.eligibility_client import make_client
from services.settlement.engine import PolicyBook
from services.settlement.institution_cache import InstitutionCache
from services.settlement.models import SCHEMA, events, metadata
from services.settlement.pgconn import open_pool
from shared.db import unit_of_work
from shared.events.envelope import Envelope, now
from shared.events.topics import INSTITUTION_CHANGED
from shared.service import ServiceSpec, create_app

REPO_ROOT = Path(__file__).resolve().parents[2]


def policy_root(app: FastAPI) -> Path:
    configured = app.state.settings.policy_dir
    return Path(configured) if configured else REPO_ROOT / "deploy" / "policy"


async def on_startup(app: FastAPI) -> None:
    root = policy_root(app)
    app.state.policy_book = PolicyBook.load(root)  # validated at start-up: a bad file stops the service
    async with unit_of_work(app.state.sessions) as session:
        await seed(session, load_reference(root / "catalogue"))
    cache = CatalogueCache(app.state.sessions)
    await cache.reload()
    app.state.catalogue = cache
    app.state.catalogue_watch = asyncio.create_task(cache.watch(), name="settlement-catalogue-watch")
    app.state.own_eligibility = make_client(app.state.settings.eligibility_url)
    app.state.eligibility = app.state.own_eligibility  # tests may swap in a client on an ASGI transport
    app.state.clock = now
    app.state.institutions = InstitutionCache()
    settings = app.state.settings
    app.state.pg_pool = await open_pool(settings.database_url, size=settings.db_pool_size)
    consumers.bind(app)
    gc.freeze()  # start-up objects (policy, catalogue, modules) leave the collector's view: shorter gen-2 pauses


async def on_shutdown(app: FastAPI) -> None:
    consumers.unbind(app)
    task = getattr(app.state, "catalogue_watch", None)
    if task is not None:
        task.cancel()
        try:
            await asyncio.wait_for(task, 2)
        except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
            pass
    client = getattr(app.state, "own_eligibility", None)
    if client is not None:
        await client.aclose()
    pool = getattr(app.state, "pg_pool", None)
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), 5)
        except Exception:  # the database is gone: drop the connections
            pool.terminate()


async def after_event(app: FastAPI, event: Envelope) -> None:
    """An institution changed: forget the cached copies. A processed claim wrote outbox rows: publish them now."""
    if event.type == INSTITUTION_CHANGED:
        app.state.institutions.clear()
    relay = getattr(app.state, "relay", None)
    if relay is not None:
        relay.wake()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao settlement",
    routers=[router, channels_router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=consumers.handlers,
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    after_event=after_event,
)
app = create_app(spec)
