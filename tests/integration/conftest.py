"""Helpers for integration tests that need their own database or their own broker."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from deploy.embedded import EmbeddedBroker, free_port


async def create_database(pg, prefix: str) -> str:
    """A fresh database on the session server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg.url.replace(f"/{pg.database}", "/postgres"))
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    return pg.url.replace(f"/{pg.database}", f"/{name}")


async def eventually(check, *, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll an async check until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


@pytest.fixture
def own_broker(workdir):
    """A broker for one test, so the test may stop and restart it."""
    broker = EmbeddedBroker(free_port(), log_dir=workdir)
    broker.start()
    yield broker
    broker.stop()
