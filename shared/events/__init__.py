"""Events: the envelope, the outbox relay and the consumer with its inbox (outbox rows: shared.db.Unit.publish)."""

from shared.events.envelope import Envelope, new_event
from shared.events.tables import event_tables

__all__ = ["Envelope", "new_event", "event_tables"]
