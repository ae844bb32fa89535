"""Event consumers of the settlement service: institutions (local copy) and its own declared claims."""

from __future__ import annotations

from fastapi import FastAPI

from services.settlement.channels import claims
from services.settlement.runtime import ctx_from_app
from shared.db import Unit
from shared.events import Envelope
from shared.events.consumer import Handler, Listener
from shared.events.topics import CLAIM_SUBMITTED, INSTITUTION_CHANGED
from shared.readmodels import institution_changed_handler


def handlers(app: FastAPI) -> dict[str, Handler]:
    """Built at start-up, after the policy book, the catalogue and the eligibility client."""

    async def handle_claim_submitted(unit: Unit, event: Envelope) -> None:
        """Settle a declared claim (declared=true) or mark it rejected with the reason."""
        await claims.process(unit, event, ctx_from_app(app))

    return {
        # a change applied here is seen by this process's next visit at once (the cache forgets its copies)
        INSTITUTION_CHANGED: institution_changed_handler(after_commit=app.state.institutions.clear),
        CLAIM_SUBMITTED: handle_claim_submitted,
    }


def broadcasts(app: FastAPI) -> dict[str, Listener]:
    """What every instance hears: another instance's consumer applied an institution's change, so this one's cache
    forgets its copies too (a visit right after a suspension is refused by every instance)."""
    cache = app.state.institutions
    return {INSTITUTION_CHANGED: lambda event: cache.forget(event.payload["fixmedins_code"], event.payload["version"])}
