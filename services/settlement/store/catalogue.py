"""The catalogue (医保目录): seeded from deploy/policy/catalogue at start-up, edited by admins, cached in memory.

Every worker keeps the whole catalogue as an engine `Catalogue`; a PUT refreshes the worker that took
it at once and the others within a second (they compare a cheap stamp).
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

from services.settlement.engine import Catalogue, CatalogueEntry
from services.settlement.schemas import CatalogueIn
from shared.db import Database, Sql, Unit

log = logging.getLogger("yibao.settlement.catalogue")


def load_reference(folder: Path) -> Catalogue:
    """Every *.toml catalogue file of the policy folder, later files replacing earlier codes."""
    merged = Catalogue({})
    for path in sorted(Path(folder).glob("*.toml")):
        merged = merged.with_entries(Catalogue.load(path))
    return merged


def _entry(row) -> CatalogueEntry:
    return CatalogueEntry(
        med_list_codg=row.med_list_codg,
        med_list_name=row.med_list_name,
        item_class=row.item_class,
        preselfpay_prop=Decimal(row.preselfpay_prop) if row.preselfpay_prop is not None else None,
        covid_only=row.covid_only,
        price_cap=row.price_cap,
        account_excluded=row.account_excluded,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        category=row.category,
        essential=row.essential,
        watched=row.watched,
    )


def entry_json(entry: CatalogueEntry) -> dict:
    """The wire form of one entry."""
    return {
        "med_list_codg": entry.med_list_codg,
        "med_list_name": entry.med_list_name,
        "item_class": entry.item_class,
        "preselfpay_prop": None if entry.preselfpay_prop is None else str(entry.preselfpay_prop),
        "covid_only": entry.covid_only,
        "price_cap": None if entry.price_cap is None else f"{entry.price_cap:.2f}",
        "account_excluded": entry.account_excluded,
        "valid_from": None if entry.valid_from is None else entry.valid_from.isoformat(),
        "valid_to": None if entry.valid_to is None else entry.valid_to.isoformat(),
        "category": entry.category,
        "essential": entry.essential,
        "watched": entry.watched,
    }


_COLUMNS = (
    "med_list_codg, med_list_name, item_class, preselfpay_prop, covid_only, price_cap, account_excluded, "
    "valid_from, valid_to, category, essential, watched"
)
_SEED = Sql(f"""
INSERT INTO catalogue ({_COLUMNS})
SELECT * FROM unnest(CAST(:codg AS text[]), CAST(:name AS text[]), CAST(:cls AS text[]), CAST(:prop AS numeric[]),
                     CAST(:covid AS boolean[]), CAST(:cap AS numeric[]), CAST(:excluded AS boolean[]),
                     CAST(:valid_from AS date[]), CAST(:valid_to AS date[]), CAST(:category AS text[]),
                     CAST(:essential AS boolean[]), CAST(:watched AS boolean[]))
ON CONFLICT (med_list_codg) DO UPDATE SET
  category = EXCLUDED.category, essential = EXCLUDED.essential, watched = EXCLUDED.watched,
  updated_at = clock_timestamp()
 WHERE catalogue.source = 'seed'
   AND (catalogue.category IS DISTINCT FROM EXCLUDED.category OR catalogue.essential <> EXCLUDED.essential
        OR catalogue.watched <> EXCLUDED.watched)
""")
_STAMP = Sql("SELECT count(*) AS n, max(updated_at) AS at FROM catalogue")
_ALL = Sql(f"SELECT {_COLUMNS} FROM catalogue")
_EXISTS = Sql("SELECT med_list_codg FROM catalogue WHERE med_list_codg = :codg FOR UPDATE")
_PUT = Sql(f"""
INSERT INTO catalogue ({_COLUMNS}, source)
VALUES (:codg, :name, :cls, :prop, :covid, :cap, :excluded, :valid_from, :valid_to, :category, :essential, :watched,
        'admin')
ON CONFLICT (med_list_codg) DO UPDATE SET
  med_list_name = EXCLUDED.med_list_name, item_class = EXCLUDED.item_class,
  preselfpay_prop = EXCLUDED.preselfpay_prop, covid_only = EXCLUDED.covid_only, price_cap = EXCLUDED.price_cap,
  account_excluded = EXCLUDED.account_excluded, valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to,
  category = EXCLUDED.category, essential = EXCLUDED.essential, watched = EXCLUDED.watched,
  source = 'admin', updated_at = clock_timestamp()
RETURNING {_COLUMNS}
""")
_SEARCH = Sql(f"""
SELECT {_COLUMNS} FROM catalogue
 WHERE CAST(:pattern AS text) IS NULL
    OR med_list_codg ILIKE :pattern ESCAPE '\\' OR med_list_name ILIKE :pattern ESCAPE '\\'
 ORDER BY med_list_codg LIMIT :limit OFFSET :offset
""")
_COUNT = Sql("""
SELECT count(*) FROM catalogue
 WHERE CAST(:pattern AS text) IS NULL
    OR med_list_codg ILIKE :pattern ESCAPE '\\' OR med_list_name ILIKE :pattern ESCAPE '\\'
""")


async def seed(unit: Unit, reference: Catalogue) -> int:
    """Insert the reference entries that are not there yet (an admin's edits stay). What supervision reads of an entry
    (category, essential drug, watched goods) follows the reference files on the entries they seeded, so a catalogue
    seeded before those fields existed learns them."""
    entries = list(reference)
    if not entries:
        return 0
    status = await unit.execute(
        _SEED,
        codg=[e.med_list_codg for e in entries],
        name=[e.med_list_name for e in entries],
        cls=[e.item_class for e in entries],
        prop=[e.preselfpay_prop for e in entries],
        covid=[e.covid_only for e in entries],
        cap=[e.price_cap for e in entries],
        excluded=[e.account_excluded for e in entries],
        valid_from=[e.valid_from for e in entries],
        valid_to=[e.valid_to for e in entries],
        category=[e.category for e in entries],
        essential=[e.essential for e in entries],
        watched=[e.watched for e in entries],
    )
    return int(status.split()[-1])


class CatalogueCache:
    """The catalogue in memory; `current` is what settlements use."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.current = Catalogue({})
        self.stamp: tuple | None = None

    async def reload(self) -> None:
        async with self.db.connect() as unit:
            stamp = tuple(await unit.fetchrow(_STAMP))
            rows = await unit.fetch(_ALL)
        self.current = Catalogue.from_entries(_entry(row) for row in rows)
        self.stamp = stamp

    async def refresh_if_changed(self) -> None:
        async with self.db.connect() as unit:
            stamp = tuple(await unit.fetchrow(_STAMP))
        if stamp != self.stamp:
            await self.reload()

    async def watch(self, every: float = 1.0) -> None:
        """Background task: pick up other workers' edits."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh_if_changed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away for a moment; try again later
                log.info("catalogue refresh skipped: %s", type(exc).__name__)


async def put_entry(unit: Unit, code: str, body: CatalogueIn) -> tuple[dict, bool]:
    """Create or replace one entry; True when it is new."""
    existed = await unit.fetchval(_EXISTS, codg=code)
    row = await unit.fetchrow(
        _PUT,
        codg=code,
        name=body.med_list_name,
        cls=body.item_class,
        prop=body.preselfpay_prop,
        covid=body.covid_only,
        cap=body.price_cap,
        excluded=body.account_excluded,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        category=body.category,
        essential=body.essential,
        watched=body.watched,
    )
    return entry_json(_entry(row)), existed is None


async def search(unit: Unit, *, q: str | None, limit: int, offset: int) -> dict:
    """Codes or names containing `q` (all when empty), ordered by code."""
    pattern = None
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await unit.fetch(_SEARCH, pattern=pattern, limit=limit, offset=offset)
    total = await unit.fetchval(_COUNT, pattern=pattern)
    return {"items": [entry_json(_entry(row)) for row in rows], "count": total, "limit": limit, "offset": offset}
