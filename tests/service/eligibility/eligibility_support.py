"""Helpers of the eligibility service tests (imported by name: keep this file name unique)."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from services.eligibility.certno import make_certno
from shared.testing import ADMIN_KEY

ADMIN = {"X-Api-Key": ADMIN_KEY}
REGIONS = ("621002", "621021", "621022", "110101", "320102", "440305", "510104")


def fresh_certno(*, brdy: date | None = None, male: bool | None = None) -> str:
    """A valid ID number unlikely to be taken by any other test."""
    brdy = brdy or date(1940, 1, 1) + timedelta(days=random.randrange(365 * 65))
    serial = random.randrange(500) * 2 + (random.randrange(2) if male is None else int(male))
    return make_certno(region=random.choice(REGIONS), brdy=brdy, serial=serial)


def fresh_code(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"
