"""What every service accepts from outside, so that nothing accepted can fail later.

- `Body`: the base of every request body. Extra fields are refused, and so is any text PostgreSQL cannot store
  (a NUL character; a lone UTF-16 surrogate, which JSON's \\ud800 escape can carry but UTF-8 cannot encode),
  wherever it sits in the body: bad input is a 422, never a 500 from the database or the encoder.
- `BusinessDay`, `BusinessTime`, `Month`: dates, RFC 3339 times and months as text, within FIRST_DAY..LAST_DAY
  (years 1900..2099), so that no later date arithmetic or time-zone conversion can overflow.
- `PRINTABLE`, `MAX_OFFSET`, `MAX_QUERY_INT`: bounds for query parameters (text without control characters,
  paging offsets, any integer that reaches PostgreSQL).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from shared.events.envelope import BUSINESS_TZ

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_QUERY_INT = 2**63 - 1  # PostgreSQL's bigint
MAX_OFFSET = 10_000_000  # a paging offset: far beyond any list, far below bigint
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # a query parameter's text: no control characters (and so no NUL)

_SURROGATE = re.compile("[\ud800-\udfff]")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.,]+([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?")
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_MAX_DEPTH = 32


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text (no NUL, no lone surrogate)."""
    return "\x00" not in text and (text.isascii() or _SURROGATE.search(text) is None)


def all_storable(value: Any) -> bool:
    """Whether every text in a parsed JSON value (keys included) can be stored: one quick pass, no paths."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def first_unstorable(value: Any, where: str = "", depth: int = 0) -> str | None:
    """The path of the first text in a parsed JSON value (keys included) that PostgreSQL cannot store, or None
    (also when it lies deeper than _MAX_DEPTH: such a body fails validation anyway)."""
    if isinstance(value, str):
        return None if storable(value) else (where or "body")
    if depth > _MAX_DEPTH:
        return None  # a body nested this deep fails validation anyway
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and not storable(key):
                return where or "body"
            found = first_unstorable(item, path, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable(item, f"{where}[{index}]", depth + 1)
            if found is not None:
                return found
    return None


def _holds_body(annotation: Any) -> bool:
    """Whether a field's type is (a list or union of) a `Body`, which checks its own text."""
    if isinstance(annotation, type) and issubclass(annotation, Body):
        return True
    return any(_holds_body(arg) for arg in get_args(annotation))


class Body(BaseModel):
    """A request body: no extra fields, no text that PostgreSQL cannot store."""

    model_config = ConfigDict(extra="forbid")
    _nested: ClassVar[frozenset[str]] = frozenset()  # fields holding bodies of their own (they check themselves)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._nested = frozenset(name for name, f in cls.model_fields.items() if _holds_body(f.annotation))

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        own = {k: v for k, v in data.items() if k not in cls._nested} if isinstance(data, dict) else data
        if not all_storable(own) or (isinstance(data, dict) and not all_storable(list(data.keys()))):
            where = first_unstorable(data) or "body"
            raise ValueError(f"{where}: text with a NUL character or a lone surrogate cannot be stored")
        return data


def in_window(day: date) -> date:
    """A business date between FIRST_DAY and LAST_DAY."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"date out of range ({FIRST_DAY} … {LAST_DAY})")
    return day


def _day_text(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        return value  # the date parser says what is wrong with 2024-02-30
    raise ValueError("a date is text 'YYYY-MM-DD'")


def _time_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _TIME.fullmatch(value):
        return value
    raise ValueError("a time is RFC 3339 text, e.g. 2024-03-01T09:30:00+08:00")


def time_in_window(moment: datetime) -> datetime:
    """A time whose business day (Asia/Shanghai; a time without offset is business time) lies in the window."""
    if not FIRST_DAY.year <= moment.year <= LAST_DAY.year:  # before converting, which overflows at year 1 and 9999
        raise ValueError(f"time out of range ({FIRST_DAY} … {LAST_DAY})")
    local = moment.astimezone(BUSINESS_TZ) if moment.tzinfo is not None else moment
    in_window(local.date())
    return moment


def month_in_window(month: str) -> str:
    """A 'YYYY-MM' (already matched by MONTH_PATTERN) of the years FIRST_DAY … LAST_DAY."""
    if not FIRST_DAY.year <= int(month[:4]) <= LAST_DAY.year:
        raise ValueError(f"month out of range ({FIRST_DAY.year}-01 … {LAST_DAY.year}-12)")
    return month


_DAY_SCHEMA = WithJsonSchema({"type": "string", "format": "date", "example": "2024-03-01"})
_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time", "example": "2024-03-01T09:30:00+08:00"})

BusinessDay = Annotated[date, BeforeValidator(_day_text), AfterValidator(in_window), _DAY_SCHEMA]
"""A date as 'YYYY-MM-DD' text, 1900-01-01 … 2099-12-31."""

BusinessTime = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(time_in_window), _TIME_SCHEMA]
"""An RFC 3339 time as text whose business day lies in 1900 … 2099 (no offset: business time)."""

Month = Annotated[str, Field(pattern=MONTH_PATTERN, description="YYYY-MM"), AfterValidator(month_in_window)]
"""A month 'YYYY-MM', 1900-01 … 2099-12."""
