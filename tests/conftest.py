"""Session fixtures: one embedded PostgreSQL and one broker for the whole run (started lazily)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from deploy.embedded import EmbeddedBroker, EmbeddedPostgres, free_port


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yibao")


@pytest.fixture(scope="session")
def pg(workdir):
    server = EmbeddedPostgres(workdir / "pgdata", free_port(), fast=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker(workdir):
    server = EmbeddedBroker(free_port(), log_dir=workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for test data."""
    return uuid.uuid4().hex[:8]
