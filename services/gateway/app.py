"""The national-platform gateway: composition root (callers, code tables, the services it calls, the clock).

A fifth service with its own schema (the message log, nonces, sign-ins, persons, fee lines by batch). It translates
the platform's envelopes to the services' REST API; the policy stays in settlement's engine, the rules in the
services that own them. Its callers sign with the platform's schemes (auth.py) instead of X-Api-Key: its gate is
gate.py's, in place of the shared one (which refuses a POST without X-Api-Key before reading it).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.gateway.api import router
from services.gateway.auth import Client
from services.gateway.codes import load_codes
from services.gateway.gate import Outermost, PlatformGate
from services.gateway.logwriter import LogWriter
from services.gateway.models import SCHEMA
from services.gateway.runtime import Gateway
from services.gateway.upstream import Service
from shared.config import Settings, parse_nhsa_clients
from shared.db import Sql
from shared.events.envelope import now
from shared.service import ServiceSpec, create_app

log = logging.getLogger("yibao.gateway")
UPSTREAM_TIMEOUT = 10.0
PURGE_SECONDS = 60.0
MESSAGE_DAYS = 30  # how long the message log answers a retried msgid and a 2601 (docs/his-integration.md)
PURGE_BATCH = 5000
_PURGES = (
    Sql("DELETE FROM nonces WHERE seen_at < now() - interval '1 hour'"),
    Sql(f"""
DELETE FROM messages WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM messages WHERE created_at < now() - interval '{MESSAGE_DAYS} days' LIMIT {PURGE_BATCH}))
"""),
    Sql(f"DELETE FROM sign_ins WHERE signed_at < now() - interval '{MESSAGE_DAYS} days'"),
)


def clients_of(settings: Settings) -> dict[str, Client]:
    """NHSA_CLIENTS, each with the X-Api-Key its institution has in API_KEYS (an HIS or pharmacy key)."""
    keys: dict[str, str] = {}
    for key, spec in settings.api_keys.items():
        if spec["role"] in ("his", "pharmacy") and spec.get("fixmedins_code"):
            keys.setdefault(spec["fixmedins_code"], key)
    raw = settings.nhsa_clients_json
    clients = parse_nhsa_clients(raw) if raw else {}
    found = {
        access_key: Client(
            access_key=access_key,
            secret=spec["secret"],
            fixmedins_code=spec["fixmedins_code"],
            infcode_type=spec["infcode_type"],
            api_key=keys.get(spec["fixmedins_code"]),
        )
        for access_key, spec in clients.items()
    }
    for client in found.values():
        if client.api_key is None:
            log.warning("NHSA client of %s has no HIS or pharmacy key in API_KEYS", client.fixmedins_code)
    return found


async def purge_forever(app: FastAPI) -> None:
    """Bounded tables: nonces past the timestamp window (they can never be replayed within it), messages and
    sign-ins past MESSAGE_DAYS (at most PURGE_BATCH messages a minute)."""
    while True:
        await asyncio.sleep(PURGE_SECONDS)
        try:
            async with app.state.db.connect() as unit:
                for purge in _PURGES:
                    await unit.execute(purge)
        except Exception as exc:  # database away: again at the next tick
            log.warning("purge paused: %s", type(exc).__name__)


async def on_startup(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.gateway = Gateway(
        db=app.state.db,
        codes=load_codes(),
        settlement=Service(settings.settlement_url, timeout=UPSTREAM_TIMEOUT),
        eligibility=Service(settings.eligibility_url, timeout=UPSTREAM_TIMEOUT),
        clients=clients_of(settings),
        clock=now,
        log=LogWriter(app.state.db),
    )
    app.state.tasks.start(purge_forever(app), name="gateway-purge")


async def on_shutdown(app: FastAPI) -> None:
    gateway = getattr(app.state, "gateway", None)
    if gateway is not None:
        await gateway.settlement.aclose()
        await gateway.eligibility.aclose()


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao gateway",
    routers=[router],
    migrations_dir=Path(__file__).parent / "migrations",
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    publishes=False,
    gate=PlatformGate,  # its callers sign with the platform's schemes, not X-Api-Key
)
app = Outermost(create_app(spec))  # transactions before FastAPI's layers (gate.py); tests build create_app(spec)
