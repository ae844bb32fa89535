"""What a consumer group has applied, asked of its service: the relay's proof of delivery (docs/events.md).

Every service that consumes answers `POST /v1/inbox/applied` (the internal key): of the event ids asked about, those
its inbox holds (applied, or dead-lettered: handled either way). The relays of the other services ask it, through
`ConsumerInboxes`, about the rows they sent and have not yet seen delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import Field

from shared.auth import Admin
from shared.config import Settings
from shared.db import Sql
from shared.http import InternalClient
from shared.inputs import Body

log = logging.getLogger("yibao.inboxes")

MAX_ASKED = 5000  # event ids in one question
TIMEOUT = 3.0

_APPLIED = Sql("""
SELECT CAST(event_id AS text) FROM inbox WHERE event_id = ANY(CAST(:ids AS uuid[]))
""")


class AppliedQuestion(Body):
    event_ids: list[UUID] = Field(max_length=MAX_ASKED, description="the events asked about")


router = APIRouter(tags=["events"])


@router.post("/v1/inbox/applied")
async def applied(question: AppliedQuestion, request: Request, _: Admin) -> dict[str, list[str]]:
    """Of the events asked about, those this service's consumer group has applied (or dead-lettered)."""
    async with request.app.state.db.connect() as unit:
        rows = await unit.fetch(_APPLIED, ids=[str(i) for i in question.event_ids])
    return {"applied": sorted(row[0] for row in rows)}


class ConsumerInboxes:
    """The relay's `inbox`: asks a consumer group's service which events it has applied; None when it cannot
    say (down, slow, refusing) — then nothing is concluded about those events this round."""

    def __init__(self, urls: Mapping[str, str], *, api_key: str) -> None:
        self.clients = {group: InternalClient(url, timeout=TIMEOUT) for group, url in urls.items()}
        self.headers = {"x-api-key": api_key}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsumerInboxes:
        urls = {
            "eligibility": settings.eligibility_url,
            "settlement": settings.settlement_url,
            "prepayment": settings.prepayment_url,
            "reporting": settings.reporting_url,
        }
        return cls(urls, api_key=settings.internal_api_key)

    async def __call__(self, group: str, event_ids: list[str]) -> set[str] | None:
        client = self.clients.get(group)
        if client is None:
            return None
        applied: set[str] = set()
        for start in range(0, len(event_ids), MAX_ASKED):
            body = json.dumps({"event_ids": event_ids[start : start + MAX_ASKED]}).encode()
            try:
                response = await client.post("/v1/inbox/applied", body=body, headers=self.headers)
            except Exception as exc:  # noqa: BLE001 — unreachable or slow: no answer this round
                log.debug("the %s inbox did not answer: %s", group, type(exc).__name__)
                return None
            if response.status_code != 200:
                log.warning("the %s inbox answered %d", group, response.status_code)
                return None
            applied.update(response.json()["applied"])
        return applied

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
