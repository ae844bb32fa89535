"""The settlement service in-process against the session's PostgreSQL and broker; persons from a fake
eligibility (snapshot contract), institutions through the real eligibility service and its events."""

from __future__ import annotations

import asyncio

import pytest
from fake_eligibility import FakeEligibility
from settlement_support import INSTITUTIONS, Counter

from shared.testing import ADMIN_KEY, fetch


@pytest.fixture(scope="session")
def fake() -> FakeEligibility:
    return FakeEligibility()


@pytest.fixture(scope="session")
async def settlement_app(settlement, eligibility, fake):
    """The running settlement app, its eligibility client swapped for the fake, institutions in its local copy."""
    app = settlement._transport.app
    app.state.eligibility = fake.client()
    for code, spec in INSTITUTIONS.items():
        response = await eligibility.post(
            "/v1/institutions",
            headers={"X-Api-Key": ADMIN_KEY},
            json={"fixmedins_code": code, "fixmedins_name": f"测试{code}", **spec},
        )
        if response.status_code == 409:  # registered earlier in this session by another test: same terms needed
            existing = (await eligibility.get(f"/v1/institutions/{code}", headers={"X-Api-Key": ADMIN_KEY})).json()
            assert {k: existing[k] for k in spec} == spec, existing
        else:
            assert response.status_code in (200, 201), response.text
    suspended = await eligibility.post("/v1/institutions/HSUS/suspend", headers={"X-Api-Key": ADMIN_KEY})
    assert suspended.status_code == 200, suspended.text
    for _ in range(400):
        rows = dict(tuple(r) for r in await fetch(app, "SELECT fixmedins_code, suspended FROM settlement.institutions"))
        if set(INSTITUTIONS) <= set(rows) and rows["HSUS"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"institutions never reached the settlement service: {rows}")
    return app


@pytest.fixture
async def api(settlement, settlement_app):
    """The settlement client (institutions ready, fake eligibility wired)."""
    return settlement


@pytest.fixture
def db(settlement_app) -> Counter:
    return Counter(settlement_app.state.db)
