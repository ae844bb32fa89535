"""Event consumers of the settlement service: institutions (local copy) and its own declared claims."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import claims
from services.settlement.models import institutions
from services.settlement.runtime import ctx_from_app
from shared.events import Envelope
from shared.events.topics import CLAIM_SUBMITTED, INSTITUTION_CHANGED
from shared.readmodels import institution_changed_handler


class _Bound:
    """The apps whose eligibility client, policy book and catalogue the claim consumer uses (set at start-up).

    The handlers are module-level (ServiceSpec), so with several apps in one process (tests) the one
    started last serves; one that stops gives the role back.
    """

    def __init__(self) -> None:
        self.apps: list[FastAPI] = []

    @property
    def app(self) -> FastAPI | None:
        return self.apps[-1] if self.apps else None


BOUND = _Bound()


def bind(app: FastAPI) -> None:
    BOUND.apps.append(app)


def unbind(app: FastAPI) -> None:
    if app in BOUND.apps:
        BOUND.apps.remove(app)


async def handle_claim_submitted(session: AsyncSession, event: Envelope) -> None:
    """Settle a declared claim (declared=true) or mark it rejected with the reason."""
    for _ in range(200):  # the consumer may start before on_startup finished loading policy and catalogue
        if BOUND.app is not None:
            break
        await asyncio.sleep(0.05)
    else:
        raise ConnectionError("settlement service not started yet")
    await claims.process(session, event, ctx_from_app(BOUND.app))


handlers = {
    INSTITUTION_CHANGED: institution_changed_handler(institutions),
    CLAIM_SUBMITTED: handle_claim_submitted,
}
