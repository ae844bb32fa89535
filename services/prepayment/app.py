"""The prepayment service: prepaid funds, a double-entry ledger, what each level of finance owes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.prepayment import prepayments, store
from services.prepayment.api import router
from services.prepayment.handlers import handlers
from services.prepayment.models import SCHEMA, events, metadata
from shared.budget import load_thresholds
from shared.db import run_in_transaction
from shared.service import ServiceSpec, create_app

log = logging.getLogger("yibao.prepayment")
DUE_CHECK_SECONDS = 60.0
async def disburse_due_forever(app: FastAPI) -> None:
    """Disburse scheduled prepayments on their day (every minute; replicas skip rows another one holds)."""
    while True:
        try:
            today = store.business_today()
            done = await run_in_transaction(app.state.sessions,
                                            lambda session: prepayments.disburse_due(session, today))
            if done:
                log.info("disbursed %d scheduled prepayments", len(done))
                if app.state.relay is not None:
                    app.state.relay.wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # database away: try again at the next tick
            log.warning("scheduled disbursement paused: %s: %s", type(exc).__name__, str(exc)[:200])
        await asyncio.sleep(DUE_CHECK_SECONDS)


async def on_startup(app: FastAPI) -> None:
    app.state.budget_thresholds = load_thresholds(app.state.settings.policy_dir)
    await start_scheduler(app)


async def start_scheduler(app: FastAPI) -> None:
    app.state.due_task = asyncio.create_task(disburse_due_forever(app), name="prepayment-due")


async def stop_scheduler(app: FastAPI) -> None:
    task = getattr(app.state, "due_task", None)
    if task is not None:
        task.cancel()
        try:
            await asyncio.wait_for(task, 5)
        except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
            pass


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao prepayment",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    on_startup=on_startup,
    on_shutdown=stop_scheduler,
)
app = create_app(spec)
