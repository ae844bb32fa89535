"""A settlement's fee lines as the `settled` event carries them (docs/events.md `lines`): read, checked, and turned
into rows of `settlement_lines` and the amounts a move keeps by what the catalogue says of each code.

A line's day (`fee_day`) is the business day of its fee_ocur_time, else the day the visit began, else the settlement's.
Events published before lines existed carry none: their moves keep 0 for the line amounts. `Settled` is what the
supervision rules read of a settlement just applied; LIVE_MOVE / LIVE_LINE say "its settlement is not reversed".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from services.reporting.domain import business_day
from services.reporting.models import LINE_AMOUNTS
from shared.events.envelope import BUSINESS_TZ

MAX_LINES = 5000  # a settlement holds at most the policy's max_lines_per_claim (1,000); merged visits add some
CATEGORIES = ("drug", "examination", "treatment", "material")
_ZERO = Decimal("0.00")

_LIVE = "NOT EXISTS (SELECT 1 FROM settlement_moves r WHERE r.setl_id = {alias}.setl_id AND r.kind = 'reverse')"
LIVE_MOVE = _LIVE.format(alias="s")
LIVE_LINE = _LIVE.format(alias="l")


class BadLines(ValueError):
    """The event's lines are not what docs/events.md says."""


class Line(NamedTuple):
    """One line of a settlement (a NamedTuple: a settlement has up to a thousand, parsed on every `settled`)."""

    feedetl_sn: str
    med_list_codg: str
    med_list_name: str
    item_class: str
    category: str | None
    essential: bool
    watched: bool
    pric: Decimal
    cnt: Decimal
    amount: Decimal
    days_supply: int | None
    fee_day: date
    fee_ocur_time: datetime | None


_LIMIT = Decimal(10) ** 12
_CLASSES = frozenset({"A", "B", "C"})
_CATEGORIES = frozenset({None, *CATEGORIES})
_BUSINESS_OFFSET = "+08:00"


def _text(value: Any, limit: int) -> bool:
    return type(value) is str and 0 < len(value) <= limit


def _day_of(value: Any, default: date) -> tuple[date, datetime | None]:
    """The business day of a line's time (and the time), else `default` (no time)."""
    if value is None:
        return default, None
    if type(value) is not str or len(value) > 40:
        raise BadLines("line fee_ocur_time is not a time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadLines("line fee_ocur_time is not a time") from None
    if value.endswith(_BUSINESS_OFFSET) or moment.tzinfo is None:
        return moment.date(), moment if moment.tzinfo else moment.replace(tzinfo=BUSINESS_TZ)
    return business_day(moment), moment


def parse_lines(payload: dict[str, Any], *, default_day: date) -> list[Line]:
    """The lines of a `settled` payload (none when it has no `lines`), checked."""
    raw = payload.get("lines")
    if raw is None:
        return []
    if type(raw) is not list or len(raw) > MAX_LINES:
        raise BadLines(f"lines must be a list of at most {MAX_LINES}")
    lines = []
    append = lines.append
    for item in raw:
        if type(item) is not dict:
            raise BadLines("a line is an object")
        sn, codg, name = item.get("feedetl_sn"), item.get("med_list_codg"), item.get("med_list_name") or ""
        if not (_text(sn, 130) and _text(codg, 64) and type(name) is str and len(name) <= 200):
            raise BadLines("line feedetl_sn, med_list_codg or med_list_name is not text of its length")
        item_class, category, days = item.get("item_class"), item.get("category"), item.get("days_supply")
        if (
            type(item_class) is not str
            or item_class not in _CLASSES
            or not (category is None or (type(category) is str and category in _CATEGORIES))
        ):
            raise BadLines("line item_class is A, B or C; category drug, examination, treatment, material or null")
        if days is not None and (type(days) is not int or not 0 <= days <= 100_000):
            raise BadLines("line days_supply is not a whole number of days")
        try:
            pric, cnt, amount = Decimal(item["pric"]), Decimal(item["cnt"]), Decimal(item["amount"])
            if not (-_LIMIT < pric < _LIMIT and -_LIMIT < cnt < _LIMIT and -_LIMIT < amount < _LIMIT):
                raise BadLines("line pric, cnt or amount is out of range")
        except (KeyError, TypeError, InvalidOperation):
            raise BadLines("line pric, cnt and amount are numbers as text") from None
        day, moment = _day_of(item.get("fee_ocur_time"), default_day)
        append(
            Line(
                sn,
                codg,
                name,
                item_class,
                category,
                item.get("essential") is True,
                item.get("watched") is True,
                pric,
                cnt,
                amount,
                days,
                day,
                moment,
            )
        )
    return lines


def line_amounts(lines: list[Line], sign: int) -> dict[str, Decimal]:
    """What a move keeps of its lines: examination, drug and essential-drug amounts (negated for a reversal)."""
    exam = drug = essential = _ZERO
    for line in lines:
        if line.category == "examination":
            exam += line.amount
        elif line.category == "drug":
            drug += line.amount
            if line.essential:
                essential += line.amount
    return dict(zip(LINE_AMOUNTS, (sign * exam, sign * drug, sign * essential), strict=True))


def line_columns(lines: list[Line]) -> dict[str, list[Any]]:
    """The lines as the arrays the insert statement unnests."""
    return {
        "l_sn": [line.feedetl_sn for line in lines],
        "l_codg": [line.med_list_codg for line in lines],
        "l_name": [line.med_list_name for line in lines],
        "l_class": [line.item_class for line in lines],
        "l_category": [line.category for line in lines],
        "l_essential": [line.essential for line in lines],
        "l_watched": [line.watched for line in lines],
        "l_pric": [line.pric for line in lines],
        "l_cnt": [line.cnt for line in lines],
        "l_amount": [line.amount for line in lines],
        "l_days": [line.days_supply for line in lines],
        "l_day": [line.fee_day for line in lines],
    }


@dataclass(frozen=True, slots=True)
class Settled:
    """What the rules read of the settlement just applied."""

    setl_id: str
    mdtrt_id: str | None
    psn_no: str
    fixmedins_code: str
    fixmedins_admdvs: str | None
    insuplc_admdvs: str | None
    med_type: str
    setl_date: date
    begndate: date
    enddate: date | None
    aid_categories: tuple[str, ...]
    lines: tuple[Line, ...]
