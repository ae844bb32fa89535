"""The message log's claims and answers of the transactions in flight, written together.

Each statement is a round trip that wakes a PostgreSQL backend and the gateway again (benchmarks/gateway.py: the
gateway's cost follows its round trips, not its Python). So one statement goes at a time per process, and every
claim, answer and claimed answer that comes while it runs goes in the next one, together: nothing waits when it is
alone, and under load a statement carries several transactions' rows.

One statement does all three kinds:
- a claim (`claim`): the msgid's row without an answer, and for a settle the visit's uploaded lines read with it;
- an answer logged under a msgid nobody holds (`log`, a read or a claimless write);
- a claimed message's answer kept in its row (`remember`).
A row with rows of the gateway's own to keep with its answer (2204's fee lines, `Row.kept`) goes in a statement of
its own, which writes them only if the answer is.
Rows are inserted in key order (two processes' statements never wait on each other in a cycle) and a msgid goes
once per statement (a second row of it waits for the next one, so each learns whether it was the first). A failed
statement fails every row in it, as each row's own statement would have.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.db import Database, Sql

_WRITE = Sql("""
WITH incoming AS (
  SELECT * FROM unnest(
    CAST(:codes AS text[]), CAST(:msgids AS text[]), CAST(:infnos AS text[]), CAST(:hashes AS text[]),
    CAST(:responses AS text[]), CAST(:psn_nos AS text[]), CAST(:mdtrt_ids AS text[]), CAST(:setl_ids AS text[]),
    CAST(:kinds AS text[]), CAST(:lines_of AS text[]))
    AS i(code, msgid, infno, input_hash, response, psn_no, mdtrt_id, setl_id, kind, lines_of)),
inserted AS (
  INSERT INTO messages (fixmedins_code, msgid, infno, input_hash, response, psn_no, mdtrt_id, setl_id)
  SELECT code, msgid, infno, input_hash, response, psn_no, mdtrt_id, setl_id FROM incoming
   WHERE kind <> 'remember' ORDER BY code, msgid
  ON CONFLICT DO NOTHING RETURNING fixmedins_code, msgid),
remembered AS (
  UPDATE messages m SET response = i.response, psn_no = i.psn_no, mdtrt_id = i.mdtrt_id, setl_id = i.setl_id
    FROM incoming i WHERE i.kind = 'remember' AND m.fixmedins_code = i.code AND m.msgid = i.msgid
  RETURNING m.fixmedins_code, m.msgid),
done AS (SELECT fixmedins_code, msgid FROM inserted UNION ALL SELECT fixmedins_code, msgid FROM remembered)
SELECT i.code, i.msgid, EXISTS (SELECT 1 FROM done d WHERE d.fixmedins_code = i.code AND d.msgid = i.msgid) AS done,
       l.lines, l.total
  FROM incoming i
  LEFT JOIN LATERAL (
    SELECT count(*) AS lines, coalesce(sum(CAST(f.item->>'det_item_fee_sumamt' AS numeric) * sign(f.cnt)), 0) AS total
      FROM fee_lines f WHERE f.mdtrt_id = i.lines_of AND f.fixmedins_code = i.code AND f.status = 'active') l
    ON i.lines_of IS NOT NULL
""")


# A row alone (no other transaction's in flight: most of them below full load) goes in a statement of its kind,
# simpler to plan and run than the one for many.
_CLAIM = Sql("""
INSERT INTO messages (fixmedins_code, msgid, infno, input_hash) VALUES (:code, :msgid, :infno, :hash)
ON CONFLICT DO NOTHING RETURNING msgid
""")
_CLAIM_WITH_LINES = Sql("""
WITH claimed AS (
  INSERT INTO messages (fixmedins_code, msgid, infno, input_hash) VALUES (:code, :msgid, :infno, :hash)
  ON CONFLICT DO NOTHING RETURNING msgid)
SELECT (SELECT msgid FROM claimed) AS claimed, count(*) AS lines,
       coalesce(sum(CAST(item->>'det_item_fee_sumamt' AS numeric) * sign(cnt)), 0) AS total
  FROM fee_lines WHERE mdtrt_id = :mdtrt_id AND fixmedins_code = :code AND status = 'active'
""")
_LOG_TEXT = """
INSERT INTO messages (fixmedins_code, msgid, infno, input_hash, response, psn_no, mdtrt_id, setl_id)
VALUES (:code, :msgid, :infno, :hash, :response, :psn_no, :mdtrt_id, :setl_id)
ON CONFLICT DO NOTHING RETURNING msgid
"""
_REMEMBER_TEXT = """
UPDATE messages SET response = :response, psn_no = :psn_no, mdtrt_id = :mdtrt_id, setl_id = :setl_id
 WHERE fixmedins_code = :code AND msgid = :msgid
RETURNING msgid
"""
_LOG = Sql(_LOG_TEXT)
_REMEMBER = Sql(_REMEMBER_TEXT)
LOGGED = "{logged}"  # in rows kept with an answer (Row.kept): the answer was logged


@functools.cache
def kept_alone(kept: str) -> Sql:
    """The rows kept with an answer, written by themselves (the transaction failed after its work)."""
    return Sql(kept.strip().replace(LOGGED, "true"))


@functools.cache
def _remember_with(kept: str) -> Sql:
    """A claimed message's answer kept, and the rows `kept` writes, in one statement."""
    return Sql(f"WITH kept AS ({kept.strip().replace(LOGGED, 'true')})\n{_REMEMBER_TEXT.strip()}")


@functools.cache
def _log_with(kept: str) -> Sql:
    """An answer logged under a msgid nobody holds, with the rows `kept` writes only if it is."""
    return Sql(
        f"WITH logged AS ({_LOG_TEXT.strip()}),\n"
        f"kept AS ({kept.strip().replace(LOGGED, 'EXISTS (SELECT 1 FROM logged)')})\n"
        "SELECT msgid FROM logged"
    )


@dataclass(frozen=True, slots=True)
class Row:
    kind: str  # claim | log | remember
    code: str
    msgid: str
    infno: str = ""
    digest: str = ""
    response: str | None = None
    psn_no: str | None = None
    mdtrt_id: str | None = None
    setl_id: str | None = None
    lines_of: str | None = None  # a claim's visit whose uploaded lines are read with it
    # rows of the gateway's own written with an answer, only if it is (Call.keep_with_answer): (a statement whose
    # WHERE holds LOGGED, its parameters). Such a row goes in a statement of its own.
    kept: tuple[str, dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Written:
    done: bool  # claimed, logged or kept (False: the msgid is another row's)
    lines: int = 0  # the visit's uploaded lines (a claim with lines_of)
    total: Decimal = Decimal(0)


Pending = tuple[Row, "asyncio.Future[Written]"]


class LogWriter:
    """The process's writer of the message log (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[Pending] = []
        self.flushing: asyncio.Task[None] | None = None
        self.statements = 0  # how many it sent (tests read it)

    async def write(self, row: Row) -> Written:
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        self.pending.append((row, future))
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def claim(self, *, code: str, msgid: str, infno: str, digest: str, lines_of: str | None) -> Written:
        return await self.write(Row("claim", code, msgid, infno, digest, lines_of=lines_of))

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch: list[Pending] = []
                later: list[Pending] = []
                keys: set[tuple[str, str]] = set()
                for item in self.pending:
                    key = (item[0].code, item[0].msgid)
                    alone = batch and (item[0].kept is not None or batch[0][0].kept is not None)
                    (later if key in keys or alone else batch).append(item)
                    keys.add(key)
                self.pending = later
                try:
                    written = await self._statement([row for row, _ in batch])
                except Exception as exc:  # each row fails as its own statement would have
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for row, future in batch:
                    if not future.done():
                        future.set_result(written[(row.code, row.msgid)])
        except BaseException:  # cancelled (the process stops): nothing more is written
            for _, future in self.pending:
                future.cancel()
            self.pending = []
            raise
        finally:
            self.flushing = None

    async def _statement(self, rows: list[Row]) -> dict[tuple[str, str], Written]:
        self.statements += 1
        if len(rows) == 1:
            return {(rows[0].code, rows[0].msgid): await self._alone(rows[0])}
        async with self.db.connect() as unit:
            found = await unit.fetch(
                _WRITE,
                codes=[r.code for r in rows],
                msgids=[r.msgid for r in rows],
                infnos=[r.infno for r in rows],
                hashes=[r.digest for r in rows],
                responses=[r.response for r in rows],
                psn_nos=[r.psn_no for r in rows],
                mdtrt_ids=[r.mdtrt_id for r in rows],
                setl_ids=[r.setl_id for r in rows],
                kinds=[r.kind for r in rows],
                lines_of=[r.lines_of for r in rows],
            )
        return {(r["code"], r["msgid"]): Written(r["done"], r["lines"] or 0, Decimal(r["total"] or 0)) for r in found}

    async def _alone(self, row: Row) -> Written:
        statement = {"remember": _REMEMBER, "log": _LOG}.get(row.kind)
        if statement is None:
            statement = _CLAIM if row.lines_of is None else _CLAIM_WITH_LINES
        kept: dict[str, Any] = {}
        if row.kept is not None:
            statement = (_remember_with if row.kind == "remember" else _log_with)(row.kept[0])
            kept = row.kept[1]
        params = {
            "code": row.code,
            "msgid": row.msgid,
            "infno": row.infno,
            "hash": row.digest,
            "response": row.response,
            "psn_no": row.psn_no,
            "mdtrt_id": row.lines_of if row.kind == "claim" else row.mdtrt_id,
            "setl_id": row.setl_id,
        }
        async with self.db.connect() as unit:
            found = await unit.fetchrow(statement, **params, **kept)
        if statement is _CLAIM_WITH_LINES:
            assert found is not None  # an aggregate: always one row
            return Written(found["claimed"] is not None, found["lines"], found["total"])
        return Written(found is not None)
