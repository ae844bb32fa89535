"""The eligibility unit of work: rules broken inside it roll back and become problem+json."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.eligibility.domain import RuleViolation
from shared.db import unit_of_work
from shared.events.envelope import now
from shared.problems import Problem

log = logging.getLogger("yibao.eligibility")


def as_problem(exc: RuleViolation) -> Problem:
    """The problem+json for a broken rule; `errors[0].code` may be finer than the top-level code."""
    return Problem(exc.status, exc.code, exc.detail,
                   errors=[{"field": exc.field, "code": exc.sub_code, "detail": exc.detail}])


def business_today() -> date:
    """Today in business time (Asia/Shanghai)."""
    return now().date()


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """`unit_of_work`, turning a RuleViolation (and a lost race on a unique key) into a 4xx."""
    try:
        async with unit_of_work(sessions) as session:
            yield session
    except RuleViolation as exc:
        raise as_problem(exc) from None
    except IntegrityError as exc:  # a concurrent request took the same key first
        log.info("integrity conflict: %s", type(exc.orig).__name__ if exc.orig else "unknown")
        raise Problem(409, "CONFLICT", "a concurrent change took the same key; retry") from None
