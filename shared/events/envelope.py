"""The event envelope of the contract: {event_id, type, version, occurred_at, producer, key, payload}."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current business time (Asia/Shanghai, with offset)."""
    return datetime.now(BUSINESS_TZ)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value.as_tuple().exponent >= -2 else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(data: Any) -> str:
    """JSON with Decimal as a two-decimal string and dates as ISO text."""
    return json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as it travels on a topic."""

    event_id: str
    type: str
    version: int
    occurred_at: str
    producer: str
    key: str
    payload: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        return dumps({"event_id": self.event_id, "type": self.type, "version": self.version,
                      "occurred_at": self.occurred_at, "producer": self.producer, "key": self.key,
                      "payload": self.payload}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Envelope":
        data = json.loads(raw)
        return cls(event_id=str(data["event_id"]), type=str(data["type"]), version=int(data.get("version", 1)),
                   occurred_at=str(data["occurred_at"]), producer=str(data.get("producer", "")),
                   key=str(data.get("key", "")), payload=dict(data.get("payload") or {}))


def new_event(*, type: str, key: str, payload: dict, producer: str, version: int = 1) -> Envelope:
    """A fresh envelope; the payload is normalised to plain JSON values."""
    return Envelope(event_id=str(uuid.uuid4()), type=type, version=version, occurred_at=now().isoformat(),
                    producer=producer, key=key, payload=json.loads(dumps(payload)))
