"""The local copy's institutions, read through a cache with a short time to live.

Every visit creation checks its institution (designated, not suspended, its area for the policy).
Reading the row each time cost a round trip and a pool checkout per visit. A change applied by this
process's consumer clears the cache at once. Every other instance hears the same `institution-changed`
(handlers.broadcasts) and forgets its copy of that institution; until the local copy holds the announced
version, it reads the row afresh each time instead of caching it. Settling reads the institution afresh
(settle.load_visit) anyway. Unknown codes are not cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.db import Database, Sql

TTL_SECONDS = 2.0
_INSTITUTION = Sql(
    "SELECT kind, level, affiliation, admdvs, suspended, version FROM institutions WHERE fixmedins_code = :code"
)


@dataclass(frozen=True, slots=True)
class InstitutionRow:
    kind: str
    level: int | None
    affiliation: str
    admdvs: str
    suspended: bool
    version: int


class InstitutionCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._rows: dict[str, tuple[float, InstitutionRow]] = {}
        self._announced: dict[str, int] = {}  # code → the newest version an event announced

    async def get(self, db: Database, code: str) -> InstitutionRow | None:
        """The institution as the local copy has it (at most `ttl` seconds old), None when unknown."""
        cached = self._rows.get(code)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        async with db.connect() as unit:
            record = await unit.fetchrow(_INSTITUTION, code=code)
        if record is None:
            self._rows.pop(code, None)
            return None
        row = InstitutionRow(**dict(record))
        if row.version >= self._announced.get(code, 0):
            self._rows[code] = (now, row)
        return row

    def forget(self, code: str, version: int) -> None:
        """An event announced `version` of the institution: drop the copy, and keep none older than that."""
        self._announced[code] = max(version, self._announced.get(code, 0))
        self._rows.pop(code, None)

    def clear(self) -> None:
        self._rows.clear()
