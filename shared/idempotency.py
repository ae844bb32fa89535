"""Idempotency-Key, one contract for every service (CONTRACT: POSTs that create or move money).

- A key is scoped by the calling party: the institution of an HIS or pharmacy key, the bureau for admin keys; two
  parties never see each other's keys.
- The first request with a key stores a hash of what it asked (method, path, body) and its answer, in the same
  transaction as its work; the same key with the same request answers that stored answer again, byte for byte,
  with `Idempotent-Replayed: true`. The same key for anything else → 409 IDEMPOTENCY_KEY_REUSED.
- A second request arriving while the first runs waits on the first's key row and then replays its answer;
  a first request that fails leaves no row, so the key stays free.
- A key is 1 to 200 printable characters, else 422 INVALID_IDEMPOTENCY_KEY.

Each service has an `idempotency_keys` table in its schema (scope, idem_key, request_hash, status_code, response).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Column, DateTime, MetaData, SmallInteger, String, Table, Text, func

from shared.auth import Principal
from shared.db import Database, Sql, Unit
from shared.events.envelope import dumpb
from shared.problems import Problem

MAX_KEY_LENGTH = 200
HEADER = "idempotency-key"

_FIND = Sql("SELECT request_hash, status_code, response FROM idempotency_keys WHERE scope = :scope AND idem_key = :key")
_OWN = Sql(
    "INSERT INTO idempotency_keys (scope, idem_key, request_hash) VALUES (:scope, :key, :hash) "
    "ON CONFLICT DO NOTHING RETURNING idem_key"
)
_REMEMBER = Sql(
    "UPDATE idempotency_keys SET status_code = :status, response = :response WHERE scope = :scope AND idem_key = :key"
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request answers: a status and the exact JSON bytes (stored with the key, replayed as they were)."""

    status: int
    body: bytes
    replayed: bool = False

    @classmethod
    def json(cls, body: Any, status: int = 200) -> Answer:
        return cls(status=status, body=dumpb(body))


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    scope: str
    key: str
    request_hash: str


def key_for(headers: Any, *, method: str, path: str, principal: Principal, body: Any) -> IdempotencyKey | None:
    """The request's Idempotency-Key with its scope and the hash of what it asks; None without the header.

    `body`: the parsed request (a pydantic model or plain JSON values); it is only serialised when there is a key."""
    key = headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(
            422,
            "INVALID_IDEMPOTENCY_KEY",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            errors=[{"field": "Idempotency-Key", "code": "INVALID_IDEMPOTENCY_KEY", "detail": "bad key"}],
        )
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json")
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    digest = hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()
    return IdempotencyKey(scope=f"{principal.role}:{principal.fixmedins_code or '-'}", key=key, request_hash=digest)


def _stored(row: Any, key: IdempotencyKey) -> Answer:
    if row["request_hash"] != key.request_hash:
        raise Problem(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different request")
    if row["response"] is None:
        raise Problem(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "the first request with this key is still running")
    return Answer(status=row["status_code"], body=row["response"].encode(), replayed=True)


async def replay(db: Database, key: IdempotencyKey | None) -> Answer | None:
    """Before any work: the stored answer of a finished request with this key (None: do the work)."""
    if key is None:
        return None
    async with db.connect() as unit:
        row = await unit.fetchrow(_FIND, scope=key.scope, key=key.key)
    if row is None or row["response"] is None:
        return None
    return _stored(row, key)


async def claim(unit: Unit, key: IdempotencyKey | None) -> Answer | None:
    """First statement of the unit of work: own the key (None), or the first request's answer."""
    if key is None:
        return None
    owned = await unit.fetchrow(_OWN, scope=key.scope, key=key.key, hash=key.request_hash)
    if owned is not None:
        return None
    return _stored(await unit.fetchrow(_FIND, scope=key.scope, key=key.key), key)


async def remember(unit: Unit, key: IdempotencyKey | None, answer: Answer) -> None:
    """Last statement of the unit of work: keep the answer with the key."""
    if key is not None:
        await unit.execute(_REMEMBER, scope=key.scope, key=key.key, status=answer.status, response=answer.body.decode())


async def answer_once(db: Database, key: IdempotencyKey | None, attempt: Callable[[], Awaitable[Answer]]) -> Answer:
    """A stored answer, else `attempt()` (its reads and checks, then its unit of work).

    A refusal (Problem) is answered as such unless the first request with this key finished meanwhile."""
    stored = await replay(db, key)
    if stored is not None:
        return stored
    try:
        return await attempt()
    except Problem:
        stored = await replay(db, key)
        if stored is not None:
            return stored
        raise


def keeping(
    key: IdempotencyKey | None, work: Callable[[Unit], Awaitable[Answer]]
) -> Callable[[Unit], Awaitable[Answer]]:
    """`work` as a unit of work that first owns the key (or answers the first request's answer) and last keeps its
    answer with the key."""

    async def unit_of_work(unit: Unit) -> Answer:
        first = await claim(unit, key)
        if first is not None:
            return first
        answer = await work(unit)
        await remember(unit, key, answer)
        return answer

    return unit_of_work


async def run(db: Database, key: IdempotencyKey | None, work: Callable[[Unit], Awaitable[Answer]]) -> Answer:
    """The whole pattern: a stored answer, else `work` in a transaction that owns the key and keeps the answer."""
    return await answer_once(db, key, lambda: db.transaction(keeping(key, work)))


def _columns() -> list[Column[Any]]:
    """The `idempotency_keys` columns (new objects each call: a column belongs to one table)."""
    return [
        Column("scope", String(80), primary_key=True),
        Column("idem_key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", SmallInteger),
        Column("response", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def idempotency_table(metadata: MetaData) -> Table:
    """The `idempotency_keys` table on a service's metadata (its schema)."""
    return Table("idempotency_keys", metadata, *_columns())


def create_idempotency_table(op: Any, schema: str) -> None:
    """Migration step for `idempotency_table`."""
    op.create_table("idempotency_keys", *_columns(), schema=schema)
