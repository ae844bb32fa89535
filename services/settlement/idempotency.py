"""Idempotency keys: stored with a hash of the request and the first answer (bytes), in the same transaction.

The first request with a key inserts the key row as the first statement of its transaction; a
concurrent request with the same key waits on that row's unique index until the first commits, then
reads the stored answer. A rolled-back first request leaves no row, so the next one does the work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.settlement.pgconn import Sql, connection, execute, fetchrow
from shared.auth import Principal
from shared.events.envelope import dumpb
from shared.problems import Problem

MAX_KEY_LENGTH = 200
_FIND = Sql("SELECT request_hash, status_code, response FROM settlement.idempotency_keys "
            "WHERE scope = :scope AND idem_key = :key")
_OWN = Sql("INSERT INTO settlement.idempotency_keys (scope, idem_key, request_hash) VALUES (:scope, :key, :hash) "
           "ON CONFLICT DO NOTHING RETURNING idem_key")
_REMEMBER = Sql("UPDATE settlement.idempotency_keys SET status_code = :status, response = :response "
                "WHERE scope = :scope AND idem_key = :key")


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    scope: str
    key: str
    request_hash: str


def json_response(body: dict, status: int) -> Response:
    """The exact bytes we send (and store for replays)."""
    return Response(content=dumpb(body), status_code=status, media_type="application/json")


def key_for(request: Request, principal: Principal, body: BaseModel | dict) -> IdempotencyKey | None:
    """The request's Idempotency-Key with its scope (who calls) and a hash of what is asked (the body is
    only serialised when there is a key)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(422, "IDEMPOTENCY_KEY_INVALID", f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters")
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()
    return IdempotencyKey(scope=f"{principal.role}:{principal.fixmedins_code or '-'}", key=key, request_hash=digest)


def _answer(row, key: IdempotencyKey) -> Response:
    if row["request_hash"] != key.request_hash:
        raise Problem(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different request")
    if row["response"] is None:
        raise Problem(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "the first request with this key is still running")
    return Response(content=row["response"].encode(), status_code=row["status_code"], media_type="application/json",
                    headers={"Idempotent-Replayed": "true"})


async def stored_answer(pool: asyncpg.Pool, key: IdempotencyKey | None) -> Response | None:
    """Fast path before any work: the stored answer of a finished request with this key."""
    if key is None:
        return None
    async with connection(pool) as conn:
        row = await fetchrow(conn, _FIND, scope=key.scope, key=key.key)
    if row is None or row["response"] is None:
        return None
    return _answer(row, key)


async def claim(conn: asyncpg.Connection, key: IdempotencyKey | None) -> Response | None:
    """First statement of the unit of work: own the key (None) or get the first answer (a Response)."""
    if key is None:
        return None
    owned = await fetchrow(conn, _OWN, scope=key.scope, key=key.key, hash=key.request_hash)
    if owned is not None:
        return None
    return _answer(await fetchrow(conn, _FIND, scope=key.scope, key=key.key), key)


async def remember(conn: asyncpg.Connection, key: IdempotencyKey | None, response: Response) -> None:
    """Last statement of the unit of work: keep the answer with the key."""
    if key is None:
        return
    await execute(conn, _REMEMBER, scope=key.scope, key=key.key, status=response.status_code,
                  response=response.body.decode())
