"""Eligibility rules as pure functions: windows, months, schemes, deferrals, arrears, case status.

Nothing here does I/O; the store loads rows, calls these, and writes what they allow.
A broken rule raises `RuleViolation`, which the service turns into problem+json.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

INSUTYPES = ("310", "390")  # 310 employee, 390 urban-rural resident
EMPLOYEE = "310"
PSN_TYPES = ("in_service", "retired")
MONITORED = "monitored"  # 防返贫监测对象: watched for high costs (DOMAIN §13); carries no medical aid of its own
AID_CATEGORIES = ("tekun", "orphan", "tekun_worker", "dibao", "dibian", "fanpin", MONITORED)
TWO_DISEASE_CLASSES = {"hypertension": (1, 2), "diabetes": (2,)}  # DOMAIN §9: diabetes is class 2
INVERSE_RELATION = {"spouse": "spouse", "parent": "child", "child": "parent"}
CASE_STATUSES = ("suspected", "confirmed", "excluded")
MAX_DEFERRAL_MONTHS = 6
SUSPEND_AFTER_ARREARS_MONTHS = 3
EMPLOYER_ARREARS = "EMPLOYER_ARREARS"
SINCE_EVER = date(1900, 1, 1)  # effective date of the person type given at registration
_DISEASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class RuleViolation(Exception):
    """A domain rule refused the input: a stable code, a detail, optionally the field at fault."""

    def __init__(
        self, code: str, detail: str, *, field: str | None = None, status: int = 422, sub_code: str | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field
        self.status = status
        self.sub_code = sub_code or code


# ------------------------------------------------------------------ months and windows


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def end_of_month(day: date) -> date:
    """Last day of the month of `day`."""
    return add_months(day, 1) - timedelta(days=1)


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def parse_month(text: str) -> date:
    """'YYYY-MM' → the first day of that month."""
    year, month = text.split("-")
    return date(int(year), int(month), 1)


@dataclass(frozen=True, slots=True)
class Window:
    """Days from `start` to `end` inclusive; `end` None = still open."""

    start: date
    end: date | None = None

    def covers(self, on: date) -> bool:
        return self.start <= on and (self.end is None or on <= self.end)

    def overlaps(self, other: Window) -> bool:
        return self.start <= (other.end or date.max) and other.start <= (self.end or date.max)


def window(start: date, end: date | None, *, end_field: str = "end_date") -> Window:
    """A window, refusing one that ends before it starts."""
    if end is not None and end < start:
        raise RuleViolation("END_BEFORE_START", f"{end_field} {end} is before start_date {start}", field=end_field)
    return Window(start, end)


def aid_window(start_date: date, lost_on: date | None) -> Window:
    """An aid identity counts from its start to the end of the month it was lost in (次月起不再享受)."""
    window(start_date, lost_on, end_field="lost_on")
    return Window(start_date, None if lost_on is None else end_of_month(lost_on))


def refuse_overlap(new: Window, existing: Iterable[Window], what: str) -> None:
    """OVERLAPPING_WINDOW when `new` shares a day with any existing window of the same kind."""
    for other in existing:
        if new.overlaps(other):
            raise RuleViolation(
                "OVERLAPPING_WINDOW",
                f"{what} {new.start}…{new.end or 'open'} overlaps {other.start}…{other.end or 'open'}",
            )


# ------------------------------------------------------------------ persons


def check_scheme(insutype: str, psn_type: str | None) -> str | None:
    """The person type to record: employees default to in service, residents have none."""
    if insutype not in INSUTYPES:
        raise RuleViolation("UNKNOWN_INSUTYPE", f"insutype {insutype!r} is not one of 310, 390", field="insutype")
    if insutype != EMPLOYEE:
        if psn_type is not None:
            raise RuleViolation(
                "PSN_TYPE_NOT_APPLICABLE", "psn_type applies to employees (insutype 310) only", field="psn_type"
            )
        return None
    psn_type = psn_type or "in_service"
    if psn_type not in PSN_TYPES:
        raise RuleViolation("INVALID_PSN_TYPE", f"psn_type {psn_type!r} is not in_service or retired", field="psn_type")
    return psn_type


def psn_type_on(history: Iterable[tuple[str, date]], on: date) -> str | None:
    """The person type in force on `on`, from (psn_type, effective_from) entries."""
    found: tuple[str, date] | None = None
    for psn_type, effective_from in history:
        if effective_from <= on and (found is None or effective_from > found[1]):
            found = (psn_type, effective_from)
    return found[0] if found else None


def retirement_effective_from(*, insutype: str, retired_on: date, latest: tuple[str, date] | None) -> date:
    """In service → retired takes effect on the first day of the next month."""
    if insutype != EMPLOYEE:
        raise RuleViolation("NOT_AN_EMPLOYEE", "only employees (insutype 310) retire")
    if latest is not None and latest[0] == "retired":
        raise RuleViolation("ALREADY_RETIRED", f"retired since {latest[1]}", status=409)
    effective = add_months(retired_on, 1)
    if latest is not None and effective <= latest[1]:
        raise RuleViolation(
            "RETIRED_ON_TOO_EARLY", f"the current person type holds from {latest[1]}", field="retired_on"
        )
    return effective


def check_aid_category(category: str) -> None:
    if category not in AID_CATEGORIES:
        raise RuleViolation(
            "UNKNOWN_AID_CATEGORY", f"category {category!r} is not one of {', '.join(AID_CATEGORIES)}", field="category"
        )


def check_qualification(disease: str, two_disease_class: int | None) -> int | None:
    """Disease code and 两病 class; diabetes is always class 2."""
    if not _DISEASE.fullmatch(disease):
        raise RuleViolation(
            "INVALID_DISEASE", "disease is hypertension, diabetes or a code (letters, digits, . _ -)", field="disease"
        )
    classes = TWO_DISEASE_CLASSES.get(disease)
    if classes is None:
        if two_disease_class is not None:
            raise RuleViolation(
                "TWO_DISEASE_CLASS_NOT_APPLICABLE",
                "two_disease_class applies to hypertension and diabetes only",
                field="two_disease_class",
            )
        return None
    if two_disease_class is None:
        return classes[0] if len(classes) == 1 else None
    if two_disease_class not in classes:
        raise RuleViolation(
            "INVALID_TWO_DISEASE_CLASS",
            f"{disease} takes two_disease_class {' or '.join(map(str, classes))}",
            field="two_disease_class",
        )
    return two_disease_class


def inverse_relation(relation: str) -> str:
    """spouse ↔ spouse, parent ↔ child."""
    if relation not in INVERSE_RELATION:
        raise RuleViolation(
            "UNKNOWN_RELATION", f"relation {relation!r} is not spouse, parent or child", field="relation"
        )
    return INVERSE_RELATION[relation]


# ------------------------------------------------------------------ employers


def deferral_end(*, start_month: date, months: int, existing: Iterable[tuple[date, date]]) -> date:
    """First day of the last deferred month; refuses overlaps and runs above six months (缓缴)."""
    if months < 1:
        raise RuleViolation("INVALID_DEFERRAL_MONTHS", "months is 1 to 6", field="months")
    if months > MAX_DEFERRAL_MONTHS:
        raise RuleViolation(
            "DEFERRAL_TOO_LONG", f"a deferral lasts at most {MAX_DEFERRAL_MONTHS} months", field="months"
        )
    end_month = add_months(start_month, months - 1)
    taken: set[int] = set()
    for start, end in existing:
        if Window(start, end).overlaps(Window(start_month, end_month)):
            raise RuleViolation("OVERLAPPING_WINDOW", f"the employer already has a deferral {start:%Y-%m}…{end:%Y-%m}")
        taken.update(range(month_index(start), month_index(end) + 1))
    first, last = month_index(start_month), month_index(end_month)
    while first - 1 in taken:
        first -= 1
    while last + 1 in taken:
        last += 1
    if last - first + 1 > MAX_DEFERRAL_MONTHS:
        raise RuleViolation(
            "DEFERRAL_TOO_LONG",
            f"with adjacent deferrals the employer would defer {last - first + 1} months in a row",
            field="months",
        )
    return end_month


def months_in_arrears(
    *, on: date, since_month: date, settled_on: date | None, deferrals: Iterable[tuple[date, date]]
) -> int:
    """Unpaid months from `since_month` through the month of `on`, less months under a deferral."""
    if since_month > on or (settled_on is not None and settled_on <= on):
        return 0
    first, last = month_index(since_month), month_index(on)
    deferred = 0
    for start, end in deferrals:
        low, high = max(first, month_index(start)), min(last, month_index(end))
        deferred += max(0, high - low + 1)
    return last - first + 1 - deferred


def benefit_status(
    *, on: date, arrears: Iterable[tuple[date, date | None]], deferrals: Iterable[tuple[date, date]]
) -> tuple[bool, str | None, int]:
    """(active, inactive_reason, months in arrears): benefits stop beyond 3 uncovered months."""
    deferrals = list(deferrals)
    months = max(
        (
            months_in_arrears(on=on, since_month=since, settled_on=settled, deferrals=deferrals)
            for since, settled in arrears
        ),
        default=0,
    )
    if months > SUSPEND_AFTER_ARREARS_MONTHS:
        return False, EMPLOYER_ARREARS, months
    return True, None, months


def check_arrears(*, since_month: date, existing: Iterable[tuple[date, date | None]]) -> None:
    """One open arrears per employer; a new one starts after the month the last one was settled."""
    for since, settled in existing:
        if settled is None:
            raise RuleViolation("ARREARS_OPEN", f"arrears since {since:%Y-%m} are not settled yet", status=409)
        if since_month <= settled:
            raise RuleViolation(
                "OVERLAPPING_WINDOW", f"arrears since {since:%Y-%m} were settled on {settled}", field="since_month"
            )


# ------------------------------------------------------------------ COVID cases


def check_case_status(status: str) -> None:
    if status not in CASE_STATUSES:
        raise RuleViolation(
            "UNKNOWN_CASE_STATUS", f"status {status!r} is not suspected, confirmed or excluded", field="status"
        )


def check_case_transition(current: str, new: str) -> None:
    """suspected → confirmed | excluded; a confirmed or excluded case stays as it is."""
    check_case_status(new)
    if new == current or current == "suspected":
        return
    if current == "confirmed":
        raise RuleViolation("CASE_ALREADY_CONFIRMED", f"a confirmed case cannot become {new}", status=409)
    raise RuleViolation("CASE_ALREADY_EXCLUDED", f"an excluded case cannot become {new}", status=409)
