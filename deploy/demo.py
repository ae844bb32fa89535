"""Demo data for a first-time user, written through the public APIs only."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

# The institutions of the worked examples (shared/examples): a level-3 city hospital, level-2 and
# level-1 county hospitals, a hospital in another province, and two pharmacies.
INSTITUTIONS = [
    {"fixmedins_code": "H1", "fixmedins_name": "市人民医院", "kind": "hospital", "level": 3,
     "affiliation": "city", "admdvs": "621000"},
    {"fixmedins_code": "H2", "fixmedins_name": "县人民医院", "kind": "hospital", "level": 2,
     "affiliation": "county", "admdvs": "621022"},
    {"fixmedins_code": "H3", "fixmedins_name": "乡镇卫生院", "kind": "hospital", "level": 1,
     "affiliation": "county", "admdvs": "621027"},
    {"fixmedins_code": "H4", "fixmedins_name": "省外三甲医院", "kind": "hospital", "level": 3,
     "affiliation": "city", "admdvs": "610100"},
    {"fixmedins_code": "P1", "fixmedins_name": "市中心大药房", "kind": "pharmacy", "level": None,
     "affiliation": "city", "admdvs": "621000"},
    {"fixmedins_code": "P2", "fixmedins_name": "县城药店", "kind": "pharmacy", "level": None,
     "affiliation": "county", "admdvs": "621022"},
]


def _admin_key(api_keys: str) -> str:
    for key, spec in json.loads(api_keys).items():
        if spec["role"] == "admin":
            return key
    raise RuntimeError("no admin key in API_KEYS; the demo needs one")


def seed_demo(*, urls: dict[str, str], api_keys: str, say: Callable[[str], None]) -> None:
    """Register the demo institutions (idempotent: a second run changes nothing)."""
    headers = {"X-Api-Key": _admin_key(api_keys)}
    with httpx.Client(base_url=urls["eligibility"], headers=headers, timeout=10) as client:
        for institution in INSTITUTIONS:
            response = client.post("/v1/institutions", json=institution)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"demo: {institution['fixmedins_code']}: {response.status_code} {response.text}")
    say(f"demo: {len(INSTITUTIONS)} institutions registered")
