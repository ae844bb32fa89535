"""The settlement service: composition root (policy book, catalogue cache, eligibility client, clock)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.settlement.api import router
from services.settlement.eligibility_client import make_client
from services.settlement.engine import PolicyBook
from services.settlement.handlers import broadcasts, handlers
from services.settlement.models import SCHEMA
from services.settlement.store.catalogue import CatalogueCache, load_reference, seed
from services.settlement.store.institutions import InstitutionCache
from shared.events.envelope import now
from shared.service import ServiceSpec, create_app

REPO_ROOT = Path(__file__).resolve().parents[2]


def policy_root(app: FastAPI) -> Path:
    configured = app.state.settings.policy_dir
    return Path(configured) if configured else REPO_ROOT / "deploy" / "policy"


async def on_startup(app: FastAPI) -> None:
    root = policy_root(app)
    app.state.policy_book = PolicyBook.load(root)  # validated at start-up: a bad file stops the service
    await app.state.db.transaction(lambda unit: seed(unit, load_reference(root / "catalogue")))
    cache = CatalogueCache(app.state.db)
    await cache.reload()
    app.state.catalogue = cache
    app.state.tasks.start(cache.watch(), name="settlement-catalogue-watch")
    app.state.own_eligibility = make_client(app.state.settings.eligibility_url)
    app.state.eligibility = app.state.own_eligibility  # tests may swap in a client on an ASGI transport
    app.state.clock = now
    app.state.institutions = InstitutionCache()


async def on_shutdown(app: FastAPI) -> None:
    client = getattr(app.state, "own_eligibility", None)
    if client is not None:
        await client.aclose()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao settlement",
    routers=[router],
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    broadcasts=broadcasts,
    on_startup=on_startup,
    on_shutdown=on_shutdown,
)
app = create_app(spec)
