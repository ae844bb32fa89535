"""What the fuzz conftest and tests share (imported by name: keep this file name unique)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
SENT: Counter[str] = Counter()  # requests sent per service, for the terminal summary
ANSWERS: dict[str, Counter[int]] = {service: Counter() for service in SERVICES}  # statuses seen per service


@dataclass
class Seeds:
    """Valid values the fuzzer mixes into what it generates, to get past the first lookups."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        if value is not None:
            self.values.setdefault(name, []).append(str(value))


@dataclass
class Fuzzed:
    """The four in-process apps of the fuzz database, a client of each, and the seeds."""

    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, Any]
    seeds: Seeds
