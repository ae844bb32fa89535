"""The live event feed: every applied event, stripped of personal data, to Server-Sent Events clients.

Auth of the stream: the `X-Api-Key` header (ops or admin), or — because a browser's EventSource cannot
send headers — a short-lived `?ticket=` the dashboard obtains with its key (POST /v1/events/stream-tickets).
The API key itself never travels in a URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import AsyncIterator

from shared.auth import Principal
from shared.events.envelope import Envelope
from shared.events.topics import (
    ALERT_RAISED,
    ALERT_RESOLVED,
    BUDGET_SET,
    CLAIM_SUBMITTED,
    COVID_CASE_REGISTERED,
    INSTITUTION_CHANGED,
    PERSON_CHANGED,
    PREPAYMENT_DISBURSED,
    SETTLED,
    SETTLEMENT_REVERSED,
    SUBSIDY_DUE,
    SUBSIDY_PAID,
)
from shared.problems import Problem

RECENT = 200  # events kept for late joiners and reconnects (Last-Event-ID)
QUEUE_SIZE = 1000  # per subscriber; a subscriber that falls this far behind is dropped and reconnects
MAX_SUBSCRIBERS = 100
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 600.0  # a connection ends after this; EventSource reconnects on its own
TICKET_SECONDS = 300
STREAM_ROLES = ("ops", "admin")

_AMOUNTS = (
    "medfee_sumamt",
    "fund_pay_sumamt",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "tilt_aid_pay",
    "fin_subsidy_pay",
    "psn_pay",
)
# What the feed may show of each event: never a name, an ID number, a birth date or a person number.
_VISIBLE = {
    SETTLED: (
        "setl_id",
        "fixmedins_code",
        "med_type",
        "insutype",
        "origin",
        "covid_status",
        "setl_time",
        "setl_date",
        "offsite",
        "declared",
        *_AMOUNTS,
    ),
    SETTLEMENT_REVERSED: ("setl_id", "fixmedins_code", "reversed_at", "rev_date"),
    SUBSIDY_DUE: ("setl_id", "fixmedins_code", "case_status", "amount", "advance_payer", "reversal"),
    PREPAYMENT_DISBURSED: ("prepayment_id", "fixmedins_code", "kind", "amount", "disbursed_on", "admdvs"),
    PERSON_CHANGED: ("change", "insutype", "insuplc_admdvs"),
    INSTITUTION_CHANGED: ("fixmedins_code", "fixmedins_name", "kind", "level", "affiliation", "admdvs", "suspended"),
    COVID_CASE_REGISTERED: ("case_id", "status", "published", "fixmedins_code"),
    CLAIM_SUBMITTED: ("claim_id", "fixmedins_code", "submitted_at"),
    BUDGET_SET: ("fixmedins_code", "year", "amount", "version"),
    SUBSIDY_PAID: ("ref", "payer", "to_fixmedins_code", "to_level", "amount", "paid_on", "admdvs"),
    # alerts: never the person or the facts (they name the person and the settlements)
    ALERT_RAISED: ("alert_id", "kind", "rule", "rule_version", "raised_at", "status", "fixmedins_code", "admdvs"),
    ALERT_RESOLVED: (
        "alert_id",
        "kind",
        "rule",
        "status",
        "resolution",
        "resolved_by",
        "resolved_at",
        "fixmedins_code",
    ),
}


def public_view(event: Envelope) -> dict:
    """The event as the feed shows it."""
    payload = event.payload
    data = {k: payload.get(k) for k in _VISIBLE.get(event.type, ()) if k in payload}
    if event.type == SETTLEMENT_REVERSED:
        original = payload.get("original") or {}
        data.update({k: original.get(k) for k in ("med_type", "covid_status", *_AMOUNTS) if k in original})
    return {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "producer": event.producer,
        "data": data,
    }


class Feed:
    """Fan-out of applied events to bounded per-subscriber queues, with a short memory for reconnects."""

    def __init__(
        self, *, recent: int = RECENT, queue_size: int = QUEUE_SIZE, max_subscribers: int = MAX_SUBSCRIBERS
    ) -> None:
        self.seq = 0
        self.recent: deque[tuple[int, dict]] = deque(maxlen=recent)
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.subscribers: set[asyncio.Queue] = set()

    def publish(self, event: Envelope) -> None:
        self.seq += 1
        item = (self.seq, public_view(event))
        self.recent.append(item)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:  # too slow: end its stream; it reconnects with Last-Event-ID
                self.subscribers.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    def subscribe(self) -> asyncio.Queue:
        if len(self.subscribers) >= self.max_subscribers:
            raise Problem(
                503, "TOO_MANY_STREAMS", "too many open event streams; retry later", headers={"Retry-After": "5"}
            )
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def after(self, seq: int) -> list[tuple[int, dict]]:
        """The remembered events after `seq` (all remembered ones when seq is older than the memory)."""
        return [item for item in self.recent if item[0] > seq]

    def close(self) -> None:
        for queue in list(self.subscribers):
            self.subscribers.discard(queue)
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                pass


def _frame(seq: int, data: dict) -> str:
    return f"id: {seq}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def sse(
    feed: Feed,
    *,
    since: int | None,
    limit: int | None,
    keepalive: float = KEEPALIVE_SECONDS,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> AsyncIterator[str]:
    """The text/event-stream body: remembered events after `since`, then live ones, keep-alive comments."""
    queue = feed.subscribe()
    if since is not None and since > feed.seq:  # ids from before a restart of this process: start afresh
        since = None
    try:
        yield "retry: 3000\n\n"
        sent, last = 0, since if since is not None else feed.seq
        for seq, data in feed.after(since) if since is not None else []:
            yield _frame(seq, data)
            sent, last = sent + 1, seq
            if limit is not None and sent >= limit:
                return
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            try:
                item = await asyncio.wait_for(queue.get(), min(keepalive, max(deadline - time.monotonic(), 0.01)))
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            seq, data = item
            if seq <= last:
                continue
            yield _frame(seq, data)
            sent, last = sent + 1, seq
            if limit is not None and sent >= limit:
                return
    finally:
        feed.unsubscribe(queue)


def _ticket_key(api_keys_json: str) -> bytes:
    """Derived from the configured keys, so every replica checks every replica's tickets."""
    return hashlib.sha256(b"yibao-event-stream-ticket\0" + api_keys_json.encode()).digest()


def issue_ticket(*, api_keys_json: str, principal: Principal, now: float | None = None) -> dict:
    """A ticket for one role, valid TICKET_SECONDS."""
    expires = int(now if now is not None else time.time()) + TICKET_SECONDS
    body = f"{principal.role}.{expires}"
    mac = hmac.new(_ticket_key(api_keys_json), body.encode(), hashlib.sha256).hexdigest()
    return {"ticket": f"{body}.{mac}", "expires_in": TICKET_SECONDS}


def check_ticket(ticket: str, *, api_keys_json: str, now: float | None = None) -> Principal:
    """The principal a ticket stands for; 401 when forged, malformed or expired."""
    parts = ticket.split(".")
    if len(parts) == 3 and parts[0] in STREAM_ROLES and parts[1].isdigit():
        body = f"{parts[0]}.{parts[1]}"
        mac = hmac.new(_ticket_key(api_keys_json), body.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(mac, parts[2]) and int(parts[1]) >= (now if now is not None else time.time()):
            return Principal(role=parts[0], fixmedins_code=None, key_hint="ticket")
    raise Problem(401, "UNAUTHENTICATED", "invalid or expired stream ticket", headers={"WWW-Authenticate": "ApiKey"})
