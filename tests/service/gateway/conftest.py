"""The gateway in-process, calling the in-process settlement and eligibility; settlement asks the real eligibility
while these tests run (the settlement tests' fake eligibility is put back afterwards)."""

from __future__ import annotations

import httpx
import pytest
from gateway_support import NHSA_CLIENTS, register_institutions, stock_catalogue

from services.gateway.app import spec
from services.gateway.upstream import Service
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import make_settings, running_app


@pytest.fixture(scope="session")
async def gateway(pg, broker, settlement, eligibility):
    """The gateway's HTTP client; its upstreams are the session's in-process settlement and eligibility."""
    settings = make_settings("gateway", database_url=pg.url, bootstrap=broker.bootstrap, NHSA_CLIENTS=NHSA_CLIENTS)
    async with running_app(create_app(spec, settings)) as client:
        state = client._transport.app.state.gateway  # type: ignore[attr-defined]
        state.settlement = Service(
            "http://settlement", timeout=10, transport=httpx.ASGITransport(app=settlement._transport.app)
        )
        state.eligibility = Service(
            "http://eligibility", timeout=10, transport=httpx.ASGITransport(app=eligibility._transport.app)
        )
        yield client


@pytest.fixture(scope="module", autouse=True)
async def real_eligibility(settlement, eligibility):
    """Settlement asks the real eligibility during a gateway test module; whatever it asked before is put back."""
    app = settlement._transport.app
    previous = app.state.eligibility
    app.state.eligibility = InternalClient(
        "http://eligibility", timeout=5, transport=httpx.ASGITransport(app=eligibility._transport.app)
    )
    try:
        await register_institutions(eligibility, app)
        await stock_catalogue(settlement)
        yield
    finally:
        app.state.eligibility = previous
