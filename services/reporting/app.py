"""The reporting service: read models fed by every topic, the bureau's reports, the live feed, the dashboard."""

from pathlib import Path

from fastapi import FastAPI

from services.reporting import reconcile
from services.reporting.api import pages, router
from services.reporting.exports import FormSettings
from services.reporting.feed import Feed
from services.reporting.handlers import handlers
from services.reporting.models import SCHEMA
from shared.budget import load_thresholds
from shared.service import ServiceSpec, create_app


async def on_startup(app: FastAPI) -> None:
    app.state.budget_thresholds = load_thresholds(app.state.settings.policy_dir)
    app.state.feed = Feed()
    app.state.forms = FormSettings.from_env()
    app.state.own_settlement = reconcile.make_client(app.state.settings.settlement_url)
    app.state.settlement = app.state.own_settlement  # tests may swap in a client on an ASGI transport


async def on_shutdown(app: FastAPI) -> None:
    app.state.feed.close()
    await app.state.own_settlement.aclose()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao reporting",
    routers=[router, pages],
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    publishes=False,
)
app = create_app(spec)
