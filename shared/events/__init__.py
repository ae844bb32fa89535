"""Events: envelope, transactional outbox, relay to Kafka, consumer with an inbox."""

from shared.events.envelope import Envelope, new_event
from shared.events.outbox import add_event
from shared.events.tables import event_tables

__all__ = ["Envelope", "new_event", "add_event", "event_tables"]
