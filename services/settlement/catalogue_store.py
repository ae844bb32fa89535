"""The catalogue (医保目录): seeded from deploy/policy/catalogue at start-up, edited by admins, cached in memory.

Every worker keeps the whole catalogue as an engine `Catalogue`; a PUT refreshes the worker that took
it at once and the others within a second (they compare a cheap stamp).
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.settlement.engine import Catalogue, CatalogueEntry
from services.settlement.models import catalogue as table
from services.settlement.schemas import CatalogueIn

log = logging.getLogger("yibao.settlement.catalogue")


def load_reference(folder: Path) -> Catalogue:
    """Every *.toml catalogue file of the policy folder, later files replacing earlier codes."""
    merged = Catalogue({})
    for path in sorted(Path(folder).glob("*.toml")):
        merged = merged.with_entries(Catalogue.load(path))
    return merged


def _row_values(entry: CatalogueEntry) -> dict:
    return {"med_list_codg": entry.med_list_codg, "med_list_name": entry.med_list_name,
            "item_class": entry.item_class, "preselfpay_prop": entry.preselfpay_prop,
            "covid_only": entry.covid_only, "price_cap": entry.price_cap,
            "account_excluded": entry.account_excluded}


def _entry(row) -> CatalogueEntry:
    return CatalogueEntry(med_list_codg=row.med_list_codg, med_list_name=row.med_list_name,
                          item_class=row.item_class,
                          preselfpay_prop=Decimal(row.preselfpay_prop) if row.preselfpay_prop is not None else None,
                          covid_only=row.covid_only, price_cap=row.price_cap,
                          account_excluded=row.account_excluded)


def entry_json(entry: CatalogueEntry) -> dict:
    """The wire form of one entry."""
    return {"med_list_codg": entry.med_list_codg, "med_list_name": entry.med_list_name,
            "item_class": entry.item_class,
            "preselfpay_prop": None if entry.preselfpay_prop is None else str(entry.preselfpay_prop),
            "covid_only": entry.covid_only,
            "price_cap": None if entry.price_cap is None else f"{entry.price_cap:.2f}",
            "account_excluded": entry.account_excluded}


async def seed(session: AsyncSession, reference: Catalogue) -> int:
    """Insert the reference entries that are not there yet (an admin's edits stay)."""
    rows = [_row_values(entry) for entry in reference]
    if not rows:
        return 0
    result = await session.execute(insert(table).values(rows).on_conflict_do_nothing())
    return result.rowcount or 0


async def _stamp(session: AsyncSession) -> tuple:
    return tuple((await session.execute(select(func.count(), func.max(table.c.updated_at)))).one())


class CatalogueCache:
    """The catalogue in memory; `current` is what settlements use."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.current = Catalogue({})
        self.stamp: tuple | None = None

    async def reload(self) -> None:
        async with self.sessions() as session:
            stamp = await _stamp(session)
            rows = (await session.execute(select(table))).all()
        self.current = Catalogue.from_entries(_entry(row) for row in rows)
        self.stamp = stamp

    async def refresh_if_changed(self) -> None:
        async with self.sessions() as session:
            stamp = await _stamp(session)
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


async def put_entry(session: AsyncSession, code: str, body: CatalogueIn) -> tuple[dict, bool]:
    """Create or replace one entry; True when it is new."""
    values = {"med_list_name": body.med_list_name, "item_class": body.item_class,
              "preselfpay_prop": body.preselfpay_prop, "covid_only": body.covid_only, "price_cap": body.price_cap,
              "account_excluded": body.account_excluded}
    existed = await session.scalar(select(table.c.med_list_codg).where(table.c.med_list_codg == code)
                                   .with_for_update())
    stmt = insert(table).values(med_list_codg=code, source="admin", **values)
    row = (await session.execute(stmt.on_conflict_do_update(
        index_elements=["med_list_codg"], set_={**values, "source": "admin", "updated_at": func.clock_timestamp()})
        .returning(*table.c))).one()
    return entry_json(_entry(row)), existed is None


async def search(session: AsyncSession, *, q: str | None, limit: int, offset: int) -> dict:
    """Codes or names containing `q` (all when empty), ordered by code."""
    stmt = select(table)
    count = select(func.count()).select_from(table)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond = or_(table.c.med_list_codg.ilike(pattern, escape="\\"), table.c.med_list_name.ilike(pattern, escape="\\"))
        stmt = stmt.where(cond)
        count = count.where(cond)
    rows = (await session.execute(stmt.order_by(table.c.med_list_codg).limit(limit).offset(offset))).all()
    total = await session.scalar(count)
    return {"items": [entry_json(_entry(row)) for row in rows], "count": total, "limit": limit, "offset": offset}
