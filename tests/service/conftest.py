"""Each service in-process against the session's real PostgreSQL and broker."""

from __future__ import annotations

import importlib

import pytest

from shared.service import create_app
from shared.testing import make_settings, running_app


def _client_for(service: str, pg, broker, **extra):
    module = importlib.import_module(f"services.{service}.app")
    settings = make_settings(service, database_url=pg.url, bootstrap=broker.bootstrap, **extra)
    return running_app(create_app(module.spec, settings))


@pytest.fixture(scope="session")
async def eligibility(pg, broker):
    async with _client_for("eligibility", pg, broker) as client:
        yield client


@pytest.fixture(scope="session")
async def settlement(pg, broker):
    async with _client_for("settlement", pg, broker) as client:
        yield client


@pytest.fixture(scope="session")
async def prepayment(pg, broker):
    async with _client_for("prepayment", pg, broker) as client:
        yield client


@pytest.fixture(scope="session")
async def reporting(pg, broker):
    async with _client_for("reporting", pg, broker) as client:
        yield client
