"""Writing events: into the outbox, inside the business transaction."""

from __future__ import annotations

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope, new_event


async def add_event(session: AsyncSession, outbox: Table, *, topic: str, key: str, payload: dict,
                    producer: str) -> Envelope:
    """Record an event to be published once the surrounding transaction commits."""
    event = new_event(type=topic, key=key, payload=payload, producer=producer)
    await session.execute(insert(outbox).values(
        event_id=event.event_id, topic=topic, key=key, type=event.type,
        envelope={"event_id": event.event_id, "type": event.type, "version": event.version,
                  "occurred_at": event.occurred_at, "producer": event.producer, "key": event.key,
                  "payload": event.payload},
    ))
    return event
