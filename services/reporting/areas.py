"""Pooling areas of the reports (county filing): one county, the city level (市本级) alone, or the city with its
counties rolled up.

`admdvs=621002` is that county; `admdvs=621000` the city level alone; `admdvs=621000&rollup=true` the city and every
county of it (the same first four digits); a province code (…0000) rolled up is every area of the province. A
report is filtered by the pooling area of the institution that treated (附件4: of the institution prepaid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

ADMDVS = r"^[0-9]{6}$"
_CODE = re.compile(ADMDVS)


@dataclass(frozen=True, slots=True)
class Area:
    """A pooling-area filter: `like` is the SQL LIKE pattern a 6-digit code column must match."""

    admdvs: str
    rollup: bool = False

    def __post_init__(self) -> None:
        if not _CODE.fullmatch(self.admdvs):
            raise ValueError("admdvs is a 6-digit division code")

    @property
    def like(self) -> str:
        if self.rollup and self.admdvs.endswith("0000"):
            return self.admdvs[:2] + "%"
        if self.rollup and self.admdvs.endswith("00"):
            return self.admdvs[:4] + "%"
        return self.admdvs

    def covers(self, code: str | None) -> bool:
        """Whether an area code falls inside the filter (the same rule as `like`, in Python)."""
        if code is None:
            return False
        pattern = self.like
        return code.startswith(pattern[:-1]) if pattern.endswith("%") else code == pattern

    def to_json(self) -> dict:
        return {"admdvs": self.admdvs, "rollup": self.rollup}


def area_of(admdvs: str | None, rollup: bool) -> Area | None:
    """The filter of the query parameters (None: every area)."""
    return None if admdvs is None else Area(admdvs, rollup)


AdmdvsQuery = Annotated[
    str | None,
    Query(pattern=ADMDVS, description="pooling area: a county, or the city (with rollup=true: and its counties)"),
]
RollupQuery = Annotated[bool, Query(description="with admdvs of a city: the city and its counties together")]


def sql_filter(column: str, param: str = "area") -> str:
    """A condition on `column` for the area parameter `:param` (NULL: every area)."""
    return f"(CAST(:{param} AS text) IS NULL OR {column} LIKE :{param})"


def pattern(area: Area | None) -> str | None:
    """The `:area` parameter of `sql_filter`."""
    return None if area is None else area.like
