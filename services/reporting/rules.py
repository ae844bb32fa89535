"""The supervision rules as pure functions (DOMAIN §13): windows, thresholds, runs of days, medians, shares.

The thresholds come from the policy version in force (shared.supervision); the queries (person_watch.py,
price_watch.py, indicators.py, filing.py) load the facts and call these. Each comparison is exact (Decimal) and says
at the threshold what the policy says: "reaches" is ≥, "more than" / "above" / "exceeds" is >, "below" is <.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.events.envelope import BUSINESS_TZ

OUTPATIENT_VISITS = ("11", "14")  # a visit to a hospital's outpatient department (general, chronic)
RATIO_PLACES = Decimal("0.0001")


def window_ending(day: date, days: int) -> tuple[date, date]:
    """The `days` consecutive days that end on `day` (30 days: day − 29 … day)."""
    return day - timedelta(days=days - 1), day


def year_of(day: date) -> tuple[date, date]:
    """The calendar year of a day: its first and last day."""
    return date(day.year, 1, 1), date(day.year, 12, 31)


def thresholds_reached(burden: Decimal, thresholds: Iterable[Decimal]) -> list[Decimal]:
    """The burden thresholds a year's personal burden reaches (10,000.00 reaches 10,000.00; 9,999.99 does not)."""
    return [t for t in thresholds if burden >= t]


def longest_idle_run(begndate: date, enddate: date, fee_days: Iterable[date]) -> tuple[date, date, int] | None:
    """The longest run of consecutive days of a stay (admission … discharge) without a fee line: (first, last,
    days), or None when every day has one."""
    charged = set(fee_days)
    best: tuple[date, date, int] | None = None
    start: date | None = None
    day = begndate
    while day <= enddate:
        if day in charged:
            start = None
        else:
            start = start or day
            length = (day - start).days + 1
            if best is None or length > best[2]:
                best = (start, day, length)
        day += timedelta(days=1)
    return best


def median(low: Decimal, high: Decimal) -> Decimal:
    """The median from the two middle values (equal for an odd count), exactly."""
    return (low + high) / 2


def above_cap(pric: Decimal, cap: Decimal) -> bool:
    """A unit price above its cap (the cap itself is not above)."""
    return pric > cap


def rise_threshold(baseline_median: Decimal, ratio: Decimal) -> Decimal:
    """The price above which a unit price has risen too far over its baseline (ratio × median, exact)."""
    return baseline_median * ratio


def share(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator ÷ denominator, exact (None without a denominator)."""
    if denominator == 0:
        return None
    return numerator / denominator


def ratio_text(value: Decimal | None) -> str | None:
    """A share as the alerts show it: four decimals, half-up."""
    return None if value is None else f"{value.quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)}"


def filing_deadline(day: date, at: time) -> datetime:
    """When the report of `day` is due: `at` on the next day, business time (附件2: 08:30)."""
    return datetime.combine(day + timedelta(days=1), at, BUSINESS_TZ)


def days_due(now: datetime, *, at: time, lookback: int) -> list[date]:
    """The report days whose deadline has passed by `now`, the newest `lookback` of them, oldest first."""
    today = now.astimezone(BUSINESS_TZ).date()
    days = [today - timedelta(days=n) for n in range(1, lookback + 2)]
    return sorted(d for d in days if filing_deadline(d, at) <= now)[-lookback:]


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def previous_month(first: date) -> date:
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
