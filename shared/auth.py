"""X-Api-Key authentication and the roles of the contract."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from shared.problems import Problem


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role and, for HIS and pharmacy keys, an institution."""

    role: str
    fixmedins_code: str | None
    key_hint: str

    def may_act_for(self, fixmedins_code: str) -> bool:
        """Admin acts for anyone; an institution's key only for itself."""
        return self.role == "admin" or self.fixmedins_code == fixmedins_code

    def require_institution(self, fixmedins_code: str) -> None:
        """403 unless this principal may act for the institution."""
        if not self.may_act_for(fixmedins_code):
            raise Problem(403, "INSTITUTION_FORBIDDEN", f"this key may act only for institution {self.fixmedins_code}")


def mask_key(key: str) -> str:
    """A key as it may appear in logs: first 4 characters."""
    return key[:4] + "…" if key else ""


def principal_for(keys: dict[str, dict[str, Any]], key: str) -> Principal | None:
    """The principal of an API key, None for a key nobody configured."""
    for known, spec in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            return Principal(role=spec["role"], fixmedins_code=spec.get("fixmedins_code"), key_hint=mask_key(key))
    return None


def authenticate(request: Request) -> Principal:
    """Resolve X-Api-Key to a principal, or 401."""
    key = request.headers.get("x-api-key")
    if not key:
        raise Problem(401, "UNAUTHENTICATED", "missing X-Api-Key header", headers={"WWW-Authenticate": "ApiKey"})
    principal = principal_for(request.app.state.settings.api_keys, key)
    if principal is None:
        raise Problem(401, "UNAUTHENTICATED", "unknown API key", headers={"WWW-Authenticate": "ApiKey"})
    return principal


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting the given roles (admin is always admitted). Async on purpose: FastAPI runs a plain
    function in its thread pool, a hand-off that cost every request ~0.5 ms of CPU under load (benchmarks/settle.py:
    eligibility's two snapshot calls per settlement 1.2 → 2.2 ms when its routes lost their async twin of this)."""
    allowed = frozenset(roles) | {"admin"}

    async def _check(request: Request) -> Principal:
        principal = authenticate(request)
        if principal.role not in allowed:
            raise Problem(403, "FORBIDDEN", f"role {principal.role} may not do this")
        return principal

    return _check


Admin = Annotated[Principal, Depends(require("admin"))]
Reader = Annotated[Principal, Depends(require("ops", "his", "pharmacy"))]
