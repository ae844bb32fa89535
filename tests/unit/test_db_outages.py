"""Which database failures are outages (503 DATABASE_UNAVAILABLE, retried by consumers and relays), not bugs (500)."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import DatabaseUnavailable, is_outage


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        DatabaseUnavailable("away"),
        # seen in the chaos run (seed 106): PostgreSQL SIGKILLed while a COMMIT was on its way
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    ],
)
def test_the_database_going_away_is_an_outage(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.UndefinedColumnError("column does not exist"),
        ValueError("a bug"),
    ],
)
def test_a_wrong_statement_is_not(exc: BaseException) -> None:
    assert not is_outage(exc)
