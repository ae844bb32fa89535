"""The Idempotency-Key contract (shared.idempotency), the same assertions for every service that takes the header.

A service's test module describes its calls with `IdempotentCall`s (a fresh one per check, from `make(caller)`) and
runs `check_contract(make, callers)`. Each check counts the call's effects in the service's own tables.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx


@dataclass
class IdempotentCall:
    """One request that creates or moves something, and how to count what it did."""

    client: httpx.AsyncClient
    path: str
    headers: dict[str, str]
    body: dict
    effects: Callable[[], Awaitable[int]]  # how many times the request took effect
    other_body: dict | None = None  # a different request (this body, or this path): the same key must refuse it
    other_path: str | None = None


Make = Callable[[str], Awaitable[IdempotentCall]]  # caller → a fresh call made by that caller


def _key() -> str:
    return f"contract-{uuid.uuid4().hex}"


async def _post(call: IdempotentCall, key: str | None, *, other: bool = False) -> httpx.Response:
    headers = call.headers | ({"Idempotency-Key": key} if key is not None else {})
    path = (call.other_path or call.path) if other else call.path
    body = (call.other_body or call.body) if other else call.body
    return await call.client.post(path, json=body, headers=headers)


async def replay_is_byte_for_byte(make: Make, caller: str) -> None:
    call = await make(caller)
    key = _key()
    first = await _post(call, key)
    assert first.status_code < 300, first.text
    again = await _post(call, key)
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert await call.effects() == 1


async def another_request_under_the_key_is_refused(make: Make, caller: str) -> None:
    call = await make(caller)
    key = _key()
    first = await _post(call, key)
    assert first.status_code < 300, first.text
    refused = await _post(call, key, other=True)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await call.effects() == 1


async def simultaneous_requests_take_effect_once(make: Make, caller: str) -> None:
    call = await make(caller)
    key = _key()
    answers = await asyncio.gather(*(_post(call, key) for _ in range(8)))
    assert {a.status_code for a in answers} <= {200, 201, 202}, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert await call.effects() == 1


async def a_bad_key_is_refused_and_nothing_is_written(make: Make, caller: str) -> None:
    call = await make(caller)
    for bad in ("", "k" * 201, "tab\there"):
        refused = await _post(call, bad)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert await call.effects() == 0


async def keys_are_scoped_by_caller(make: Make, caller: str, other_caller: str) -> None:
    mine, theirs = await make(caller), await make(other_caller)
    key = _key()
    first = await _post(mine, key)
    assert first.status_code < 300, first.text
    second = await _post(theirs, key)  # the same key string from someone else is a key of its own
    assert second.status_code < 300, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.content != first.content
    assert await mine.effects() == 1 and await theirs.effects() == 1


async def check_contract(make: Make, *, caller: str, other_caller: str | None) -> None:
    """Every clause of the contract, each on fresh calls. Keys are scoped by the calling party (an institution, or
    the bureau for admin keys): `other_caller` is another party that may make the same kind of request, if any."""
    await replay_is_byte_for_byte(make, caller)
    await another_request_under_the_key_is_refused(make, caller)
    await simultaneous_requests_take_effect_once(make, caller)
    await a_bad_key_is_refused_and_nothing_is_written(make, caller)
    if other_caller is not None:
        await keys_are_scoped_by_caller(make, caller, other_caller)
