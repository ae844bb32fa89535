"""Helpers for the project's tests: keys, settings, apps in-process and services as processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from shared.config import Settings
from shared.db import Row, Sql
from shared.server import uvicorn_command

ADMIN_KEY = "test-admin-key-0000000000"
OPS_KEY = "test-ops-key-000000000000"
HIS_KEYS = {code: f"test-his-{code}-key-0000000" for code in ("H1", "H2", "H3", "H4")}
PHARMACY_KEYS = {code: f"test-pharmacy-{code}-key-00000" for code in ("P1", "P2")}


def api_keys_json() -> str:
    """The API_KEYS of the test suite: one admin, one ops, a HIS key per H1..H4, pharmacy P1, P2."""
    keys = {ADMIN_KEY: {"role": "admin", "fixmedins_code": None}, OPS_KEY: {"role": "ops", "fixmedins_code": None}}
    keys.update({k: {"role": "his", "fixmedins_code": c} for c, k in HIS_KEYS.items()})
    keys.update({k: {"role": "pharmacy", "fixmedins_code": c} for c, k in PHARMACY_KEYS.items()})
    return json.dumps(keys)


def service_env(*, database_url: str, bootstrap: str, **extra: str) -> dict[str, str]:
    """Environment variables for a service process."""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP": bootstrap,
        "API_KEYS": api_keys_json(),
        "RELAY_POLL_SECONDS": "0.02",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def make_settings(service: str, *, database_url: str, bootstrap: str, **extra: Any) -> Settings:
    """Settings for a service built in-process."""
    env = service_env(database_url=database_url, bootstrap=bootstrap)
    return Settings(
        YIBAO_SERVICE=service,
        DATABASE_URL=env["DATABASE_URL"],
        KAFKA_BOOTSTRAP=bootstrap,
        API_KEYS=env["API_KEYS"],
        RELAY_POLL_SECONDS=0.02,
        **extra,
    )


async def fetch(app: Any, statement: str, **params: Any) -> list[Row]:
    """Rows of a statement run on an in-process app's database (for a test's assertions)."""
    async with app.state.db.connect() as unit:
        rows: list[Row] = await unit.fetch(Sql(statement), **params)
        return rows


async def fetchval(app: Any, statement: str, **params: Any) -> Any:
    """The first column of the first row of a statement run on an in-process app's database."""
    async with app.state.db.connect() as unit:
        return await unit.fetchval(Sql(statement), **params)


async def wait_ready(client: httpx.AsyncClient, timeout: float = 30) -> None:
    """Poll /readyz until the service says ready (database and broker connected)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout} s: {response.text}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_app(app: Any, *, ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan in-process and yield an HTTP client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            if ready:
                await wait_ready(client)
            yield client


class ServiceProcess:
    """One service as a real uvicorn process (what `yibao up` and the containers run)."""

    def __init__(self, name: str, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.log_file = Path(log_dir) / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **self.env}
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                uvicorn_command(self.name, port=self.port, log_level="warning"),
                env=env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_file.read_text()[-3000:]}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s: {self.log_file.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
