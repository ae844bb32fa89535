"""Administrative divisions (admdvs): 6 digits, a known province, city and province tests."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

# GB/T 2260 province-level codes.
PROVINCES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    }
)


def check_admdvs(value: str) -> str:
    """Six ASCII digits whose first two name a province (str.isdigit alone would take ６ and ٦)."""
    if len(value) != 6 or not (value.isascii() and value.isdigit()):
        raise ValueError("admdvs must be 6 digits")
    if value[:2] not in PROVINCES:
        raise ValueError(f"admdvs {value}: unknown province {value[:2]}")
    return value


def same_city(a: str, b: str) -> bool:
    """Same pooling city: the first four digits agree."""
    return a[:4] == b[:4]


def same_province(a: str, b: str) -> bool:
    """Same province: the first two digits agree."""
    return a[:2] == b[:2]


Admdvs = Annotated[str, AfterValidator(check_admdvs)]
