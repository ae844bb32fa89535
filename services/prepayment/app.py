"""The prepayment service: prepaid funds, a double-entry ledger, what each level of finance owes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.prepayment import prepayments, store
from services.prepayment.api import router
from services.prepayment.handlers import handlers
from services.prepayment.models import SCHEMA
from shared.budget import load_thresholds
from shared.db import Unit
from shared.service import ServiceSpec, create_app

log = logging.getLogger("yibao.prepayment")
DUE_CHECK_SECONDS = 60.0


async def disburse_today(unit: Unit) -> list[dict[str, Any]]:
    """The scheduled prepayments due today (or before), disbursed."""
    return await prepayments.disburse_due(unit, store.business_today())


async def disburse_due_forever(app: FastAPI) -> None:
    """Disburse scheduled prepayments on their day (every minute; replicas skip rows another one holds)."""
    while True:
        try:
            done = await app.state.db.transaction(disburse_today)
            if done:
                log.info("disbursed %d scheduled prepayments", len(done))
        except Exception as exc:  # database away: try again at the next tick
            log.warning("scheduled disbursement paused: %s: %s", type(exc).__name__, str(exc)[:200])
        await asyncio.sleep(DUE_CHECK_SECONDS)


async def on_startup(app: FastAPI) -> None:
    app.state.budget_thresholds = load_thresholds(app.state.settings.policy_dir)
    app.state.tasks.start(disburse_due_forever(app), name="prepayment-due")


spec = ServiceSpec(
    name=SCHEMA,
    title="yibao prepayment",
    routers=[router],
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    on_startup=on_startup,
)
app = create_app(spec)
