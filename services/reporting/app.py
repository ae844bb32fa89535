"""The reporting service: read models fed by every topic, the bureau's reports, supervision's alerts, the live feed,
the dashboard."""

from pathlib import Path

from fastapi import FastAPI

from services.reporting import filing, reconcile, supervision_api
from services.reporting.alerts import Supervision
from services.reporting.api import pages, router
from services.reporting.exports import FormSettings
from services.reporting.feed import Feed
from services.reporting.handlers import handlers
from services.reporting.models import SCHEMA
from shared.budget import load_thresholds
from shared.events.envelope import now
from shared.service import ServiceSpec, create_app
from shared.supervision import load_supervision


async def on_startup(app: FastAPI) -> None:
    app.state.budget_thresholds = load_thresholds(app.state.settings.policy_dir)
    app.state.feed = Feed()
    app.state.forms = FormSettings.from_env()
    app.state.own_settlement = reconcile.make_client(app.state.settings.settlement_url)
    app.state.settlement = app.state.own_settlement  # tests may swap in a client on an ASGI transport
    app.state.own_prepayment = reconcile.make_client(app.state.settings.prepayment_url)
    app.state.prepayment = app.state.own_prepayment  # the finance payments' reconciliation; tests may swap it too
    # supervision (DOMAIN §13): the policy versions, checked now (a wrong file stops the service), the clock (tests
    # set `app.state.supervision.clock`), the feed that shows alerts; the checks of filings and indicators
    app.state.supervision = Supervision(
        book=load_supervision(app.state.settings.policy_dir), clock=now, feed=app.state.feed
    )
    app.state.tasks.start(filing.run(app.state.db, app.state.supervision), name="reporting-supervision-checks")


async def on_shutdown(app: FastAPI) -> None:
    app.state.feed.close()
    await app.state.own_settlement.aclose()
    await app.state.own_prepayment.aclose()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao reporting",
    routers=[router, supervision_api.router, pages],
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    publishes=True,  # alert-raised, alert-resolved
)
app = create_app(spec)
