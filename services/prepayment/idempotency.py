"""Idempotency-Key for POSTs that move money: the same key and body answer the first answer again.

The key row is inserted in the same transaction as the work, so an error rolls both back (the
key stays free) and a concurrent second request with the same key waits on the first one's
row, then reads its answer. Another body under a used key is a 409 IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.prepayment.models import idempotency_keys
from shared.db import run_in_transaction
from shared.problems import Problem
from shared.service import wake_relay

MAX_KEY = 200
Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


def request_hash(body: Any) -> str:
    """A stable hash of a request body (keys sorted)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise Problem(422, "INVALID_IDEMPOTENCY_KEY", f"Idempotency-Key must be 1 to {MAX_KEY} printable characters")
    return key


async def claim(session: AsyncSession, *, key: str, endpoint: str, digest: str) -> tuple[int, Any] | None:
    """Take the key for this transaction (None), or return the stored (status, body) of its first use."""
    t = idempotency_keys
    taken = await session.scalar(
        insert(t).values(idem_key=key, endpoint=endpoint, request_hash=digest, status_code=0)
        .on_conflict_do_nothing(index_elements=["idem_key", "endpoint"]).returning(t.c.idem_key))
    if taken is not None:
        return None
    row = (await session.execute(select(t.c.request_hash, t.c.status_code, t.c.response)
                                 .where(t.c.idem_key == key, t.c.endpoint == endpoint))).one()
    if row.request_hash != digest:
        raise Problem(409, "IDEMPOTENCY_KEY_REUSED",
                      "this Idempotency-Key was already used with another request body")
    return row.status_code, row.response


async def remember(session: AsyncSession, *, key: str, endpoint: str, status: int, body: Any) -> None:
    t = idempotency_keys
    await session.execute(update(t).where(t.c.idem_key == key, t.c.endpoint == endpoint)
                          .values(status_code=status, response=body))


async def respond(request: Request, sessions: async_sessionmaker[AsyncSession], *, body: Any, work: Work) -> JSONResponse:
    """Run `work` (→ status, JSON body) in one transaction, honouring the request's Idempotency-Key."""
    key = check_key(request.headers.get("idempotency-key"))
    endpoint = f"{request.method} {request.url.path}"[:200]
    digest = request_hash(body)

    async def _run(session: AsyncSession) -> tuple[int, Any]:
        if key is not None:
            stored = await claim(session, key=key, endpoint=endpoint, digest=digest)
            if stored is not None:
                return stored
        status, answer = await work(session)
        if key is not None:
            await remember(session, key=key, endpoint=endpoint, status=status, body=answer)
        return status, answer

    status, answer = await run_in_transaction(sessions, _run)
    wake_relay(request)
    return JSONResponse(answer, status_code=status)
