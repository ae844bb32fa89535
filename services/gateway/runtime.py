"""What a transaction works with: the gateway's parts (from the composition root) and the call being answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.gateway.auth import Client
from services.gateway.codes import Codes
from services.gateway.inputs import Failure
from services.gateway.logwriter import LOGGED, LogWriter
from services.gateway.upstream import Reply, Service
from shared.db import Database, Row, Sql

NO_API_KEY = "本机构未配置医保结算接口密钥，请联系医保经办机构开通"

_PERSON = Sql("SELECT basics FROM persons WHERE fixmedins_code = :code AND psn_no = :psn_no")
_REMEMBER_PERSON = Sql("""
INSERT INTO persons AS p (fixmedins_code, psn_no, basics) VALUES (:code, :psn_no, CAST(:basics AS jsonb))
ON CONFLICT (fixmedins_code, psn_no) DO UPDATE SET basics = EXCLUDED.basics, updated_at = now()
 WHERE p.basics IS DISTINCT FROM EXCLUDED.basics
""")


MEMO_LIMIT = 100_000
PERSON_SECONDS = 60.0


@dataclass
class Memo:
    """What this process learnt and needs again within a day, so as not to ask the database each time: whose a
    visit is and which message made a settlement (facts that never change), and the person basics it stored (kept
    PERSON_SECONDS). Bounded: emptied when full. Another process of the gateway asks the database instead."""

    visits: dict[tuple[str, str], str] = field(default_factory=dict)  # (fixmedins_code, mdtrt_id) → psn_no
    settled_by: dict[tuple[str, str], str] = field(default_factory=dict)  # (fixmedins_code, setl_id) → msgid
    # (fixmedins_code, mdtrt_id) → (begndate, enddate) as the HIS registered and discharged it
    dates: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    persons: dict[tuple[str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    # (fixmedins_code, msgid) → input hash of a message this process logged (a message run without a claim looks
    # here first: answered before, it is answered from the log without running again)
    answered: dict[tuple[str, str], str] = field(default_factory=dict)
    # (fixmedins_code, msgid) → (input hash, its answer when done) of a message without a claim running now
    running: dict[tuple[str, str], tuple[str, asyncio.Future[bytes | None]]] = field(default_factory=dict)

    @staticmethod
    def put(table: dict[Any, Any], key: Any, value: Any) -> None:
        if len(table) >= MEMO_LIMIT:
            table.clear()
        table[key] = value


@dataclass
class Gateway:
    """The gateway's long-lived parts: database, code tables, the services it calls, its callers, the clock."""

    db: Database
    codes: Codes
    settlement: Service
    eligibility: Service
    clients: dict[str, Client]
    clock: Callable[[], datetime]
    log: LogWriter  # the message log's claims and answers, written together (logwriter.py)
    memo: Memo = field(default_factory=Memo)


class Statements:
    """The gateway's statements while a transaction runs, each on a connection of its own, committed by itself: a
    transaction that waits for a service holds no connection (the pool serves every transaction in flight)."""

    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db

    async def fetch(self, q: Sql, **params: Any) -> list[Row]:
        async with self.db.connect() as unit:
            return await unit.fetch(q, **params)

    async def fetchrow(self, q: Sql, **params: Any) -> Row | None:
        async with self.db.connect() as unit:
            return await unit.fetchrow(q, **params)

    async def fetchval(self, q: Sql, **params: Any) -> Any:
        async with self.db.connect() as unit:
            return await unit.fetchval(q, **params)

    async def execute(self, q: Sql, **params: Any) -> str:
        async with self.db.connect() as unit:
            return await unit.execute(q, **params)


@dataclass
class Effect:
    """What a transaction did, kept with its message (2601 undoes it; 5203 finds the msgid of a settlement)."""

    psn_no: str | None = None
    mdtrt_id: str | None = None
    setl_id: str | None = None


@dataclass
class Call:
    """One transaction being answered."""

    gw: Gateway
    client: Client
    infno: str
    msgid: str
    envelope: dict[str, Any]
    input: dict[str, Any]
    received_at: datetime
    unit: Statements | None = None  # the gateway's own statements of a writing transaction
    retaken: bool = False  # a stale claim of this msgid taken over: its first run may have done part of the work
    effect: Effect = field(default_factory=Effect)
    # (mdtrt_id, lines, total) of the fee lines the HIS uploaded through the gateway, read with the msgid's claim
    uploaded: tuple[str, int, Decimal] | None = None
    # rows of the gateway's own written with the answer, in its statement (messages.py): (a data-modifying
    # statement usable as a CTE, its parameters)
    kept: tuple[str, dict[str, Any]] | None = None
    # what to undo when a message run without a claim turns out answered already (True: the same message, a retry
    # or a twin) or another message's msgid (False); see messages.run_once
    undos: list[Callable[[bool], Awaitable[None]]] = field(default_factory=list)

    @property
    def fixmedins_code(self) -> str:
        return self.client.fixmedins_code

    def keep_with_answer(self, statement: str, **params: Any) -> None:
        """Write these rows of the gateway's own in the statement that keeps the answer (one round trip less). Only
        for rows that record what is done already and that nothing reads before the answer is kept; should the
        transaction fail after all, they are written by themselves. `statement` is an INSERT … SELECT or UPDATE
        whose WHERE holds `{logged}` (the answer was logged: logwriter.py fills it in); :code is the caller's
        institution, its other parameter names differ from the log's (response, psn_no, mdtrt_id, setl_id …)."""
        assert self.kept is None, "one statement kept with an answer"
        assert LOGGED in statement
        self.kept = (statement, params)

    def undo_if_taken(self, undo: Callable[[bool], Awaitable[None]]) -> None:
        """For a transaction run without a claim: what to undo of its work when its msgid turns out answered already
        (`undo(True)`: a retry or a twin of this message, e.g. a second visit to cancel) or another message's
        (`undo(False)`: nothing of this one may stay)."""
        self.undos.append(undo)

    def key(self) -> str:
        if self.client.api_key is None:
            raise Failure(NO_API_KEY)
        return self.client.api_key

    def idempotency_key(self, step: str = "") -> str:
        """The key a money-moving call carries: the message's own id (a retry replays the service's answer)."""
        return f"nhsa:{self.msgid}:{self.infno}{':' + step if step else ''}"

    async def settlement(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None, idem: str | None = None
    ) -> Reply:
        return await self.gw.settlement.call(
            method, path, key=self.key(), body=body, params=params, idempotency_key=idem
        )

    async def eligibility(self, method: str, path: str, *, params: dict[str, str] | None = None) -> Reply:
        return await self.gw.eligibility.call(method, path, key=self.key(), params=params)

    async def person(self, psn_no: str) -> dict[str, Any] | None:
        """What the institution learnt of a person (1101, registration), if anything."""
        key = (self.fixmedins_code, psn_no)
        known = self.gw.memo.persons.get(key)
        if known is not None and time.monotonic() - known[0] < PERSON_SECONDS:
            return known[1]
        async with self.gw.db.connect() as unit:
            found: dict[str, Any] | None = await unit.fetchval(_PERSON, code=self.fixmedins_code, psn_no=psn_no)
        if found is not None:
            Memo.put(self.gw.memo.persons, key, (time.monotonic(), found))
        return found

    async def remember_person(self, basics: dict[str, Any]) -> None:
        key = (self.fixmedins_code, basics["psn_no"])
        known = self.gw.memo.persons.get(key)
        if known is not None and known[1] == basics and time.monotonic() - known[0] < PERSON_SECONDS:
            return
        async with self.gw.db.connect() as unit:
            await unit.execute(_REMEMBER_PERSON, code=self.fixmedins_code, psn_no=basics["psn_no"], basics=basics)
        Memo.put(self.gw.memo.persons, key, (time.monotonic(), basics))
