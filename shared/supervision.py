"""Supervision policy (监测预警, DOMAIN §13): the thresholds, windows and lists of the alerts, as versioned data.

`deploy/policy/supervision/<effective_from>.toml`, one file per version; read and checked once at the reporting
service's start (a missing or wrong file stops it, like budget.toml). `SupervisionBook.on(day)` is the version in force
on a day (the first version also judges the days before it); every alert names the version that raised it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

SUPERVISION_FOLDER = "supervision"  # in the policy folder (POLICY_DIR, default deploy/policy)
DEFAULT_POLICY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "policy"
LEVELS = (1, 2, 3)
MAX_DAYS = 366
LARGEST = Decimal(10) ** 12  # a threshold above a trillion yuan is a typing error


class SupervisionPolicyError(ValueError):
    """A supervision policy file is missing or wrong: the reporting service does not start."""


@dataclass(frozen=True, slots=True)
class HighCostRules:
    """防返贫: the identities watched and the yearly personal-burden thresholds (each raises once per person-year)."""

    categories: frozenset[str]
    thresholds: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class PriceRules:
    """Watched goods: monitoring caps per code, and the rise over the median of the previous days."""

    rise_ratio: Decimal
    baseline_days: int
    baseline_min_lines: int
    caps: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class FraudRules:
    """Patterns across settlements: windows in days and the counts that raise."""

    visit_window_days: int
    visit_max: int
    exam_window_days: int
    idle_stay_days: int
    supply_window_days: int
    supply_max_days: int
    institutions_per_day: int


@dataclass(frozen=True, slots=True)
class IndicatorRules:
    """Monthly institution indicators (seed 002) and their thresholds."""

    min_settlements: int
    growth_max: Decimal
    self_pay_max: Decimal
    exam_share_max: Decimal
    outside_catalogue_max: Decimal
    aid_self_pay_max: Decimal
    essential_min: Mapping[int, Decimal]
    check_minutes: int


@dataclass(frozen=True, slots=True)
class FilingRules:
    """County filing: the pooling areas that file, the reports, the deadline on the next day."""

    areas: tuple[str, ...]
    reports: tuple[str, ...]
    deadline: time
    lookback_days: int
    check_seconds: int


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """One version of the supervision policy."""

    version: str
    effective_from: date
    high_cost: HighCostRules
    price: PriceRules
    fraud: FraudRules
    indicators: IndicatorRules
    filing: FilingRules


class SupervisionBook:
    """Every version, by the day it takes effect."""

    def __init__(self, versions: list[SupervisionPolicy]) -> None:
        if not versions:
            raise SupervisionPolicyError("no supervision policy versions")
        self.versions = tuple(sorted(versions, key=lambda v: v.effective_from))
        days = [v.effective_from for v in self.versions]
        if len(set(days)) != len(days):
            raise SupervisionPolicyError("two supervision policy versions take effect on the same day")
        if len({v.version for v in self.versions}) != len(self.versions):
            raise SupervisionPolicyError("two supervision policy files carry the same version name")

    def on(self, day: date) -> SupervisionPolicy:
        """The version in force on `day` (the first version for the days before it)."""
        chosen = self.versions[0]
        for version in self.versions:
            if version.effective_from <= day:
                chosen = version
        return chosen

    @property
    def latest(self) -> SupervisionPolicy:
        return self.versions[-1]


class _Table:
    """A TOML table read strictly: every key is used once; wrong types or values name the file and the key."""

    def __init__(self, data: Any, *, source: str, path: str) -> None:
        if not isinstance(data, dict):
            raise SupervisionPolicyError(f"{source}: [{path}] must be a table")
        self.data = data
        self.source = source
        self.path = path
        self.used: set[str] = set()

    def _fail(self, key: str, message: str) -> SupervisionPolicyError:
        return SupervisionPolicyError(f"{self.source}: {self.path}.{key}: {message}")

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise self._fail(key, "missing")
        self.used.add(key)
        return self.data[key]

    def table(self, key: str) -> _Table:
        return _Table(self.get(key), source=self.source, path=f"{self.path}.{key}")

    def decimal(self, key: str, *, places: int, value: Any = None, at_most: Decimal | None = None) -> Decimal:
        raw = self.get(key) if value is None else value
        number: Decimal | None = None
        try:
            number = Decimal(raw) if isinstance(raw, str) else None
            step = Decimal(1).scaleb(-places)
            exact = number is not None and 0 < number < LARGEST and number == number.quantize(step)
        except InvalidOperation:
            exact = False
        if number is None or not exact:
            raise self._fail(key, f'a positive number as a string with at most {places} decimals, e.g. "0.10"')
        if at_most is not None and number > at_most:
            raise self._fail(key, f"at most {at_most}")
        return number

    def integer(self, key: str, *, low: int = 1, high: int = MAX_DAYS) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self._fail(key, f"a whole number {low} … {high}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise self._fail(key, "a non-empty list of strings")
        if len(set(value)) != len(value):
            raise self._fail(key, "a list without repeats")
        return tuple(value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise SupervisionPolicyError(f"{self.source}: [{self.path}] has unknown keys {', '.join(unknown)}")


def _money_map(table: _Table) -> dict[str, Decimal]:
    caps = {}
    for code in table.data:
        caps[code] = table.decimal(code, places=2)
    return caps


def parse_policy(doc: dict[str, Any], *, source: str) -> SupervisionPolicy:
    """One version from its TOML document, checked."""
    root = _Table(doc, source=source, path="")
    meta = root.table("meta")
    version = meta.get("version")
    effective_from = meta.get("effective_from")
    if not isinstance(version, str) or not version.strip() or len(version) > 40:
        raise SupervisionPolicyError(f"{source}: meta.version must be a name of at most 40 characters")
    if type(effective_from) is not date:
        raise SupervisionPolicyError(f"{source}: meta.effective_from must be a TOML date (2022-01-01)")
    meta.finish()

    cost = root.table("high_cost")
    categories = cost.strings("categories")
    thresholds = tuple(cost.decimal("thresholds", places=2, value=v) for v in cost.strings("thresholds"))
    if list(thresholds) != sorted(thresholds):
        raise SupervisionPolicyError(f"{source}: high_cost.thresholds must rise")
    cost.finish()

    price = root.table("price")
    caps_table = price.table("caps")
    price_rules = PriceRules(
        rise_ratio=price.decimal("rise_ratio", places=4),
        baseline_days=price.integer("baseline_days"),
        baseline_min_lines=price.integer("baseline_min_lines", high=100_000),
        caps=_money_map(caps_table),
    )
    caps_table.finish()
    if price_rules.rise_ratio <= 1:
        raise SupervisionPolicyError(f"{source}: price.rise_ratio must be above 1")
    price.finish()

    fraud = root.table("fraud")
    fraud_rules = FraudRules(
        visit_window_days=fraud.integer("visit_window_days"),
        visit_max=fraud.integer("visit_max", high=10_000),
        exam_window_days=fraud.integer("exam_window_days"),
        idle_stay_days=fraud.integer("idle_stay_days"),
        supply_window_days=fraud.integer("supply_window_days"),
        supply_max_days=fraud.integer("supply_max_days", high=10_000),
        institutions_per_day=fraud.integer("institutions_per_day", low=2, high=1_000),
    )
    fraud.finish()

    indicators = root.table("indicators")
    essential = indicators.table("essential_min")
    if set(essential.data) != {str(level) for level in LEVELS}:
        raise SupervisionPolicyError(f"{source}: indicators.essential_min must give the levels 1, 2 and 3")
    indicator_rules = IndicatorRules(
        min_settlements=indicators.integer("min_settlements", high=1_000_000),
        growth_max=indicators.decimal("growth_max", places=4),
        self_pay_max=indicators.decimal("self_pay_max", places=4, at_most=Decimal(1)),
        exam_share_max=indicators.decimal("exam_share_max", places=4, at_most=Decimal(1)),
        outside_catalogue_max=indicators.decimal("outside_catalogue_max", places=4, at_most=Decimal(1)),
        aid_self_pay_max=indicators.decimal("aid_self_pay_max", places=4, at_most=Decimal(1)),
        essential_min={level: essential.decimal(str(level), places=4, at_most=Decimal(1)) for level in LEVELS},
        check_minutes=indicators.integer("check_minutes", high=24 * 60),
    )
    essential.finish()
    indicators.finish()

    filing = root.table("filing")
    areas = filing.strings("areas")
    if not all(len(a) == 6 and a.isdigit() for a in areas):
        raise SupervisionPolicyError(f"{source}: filing.areas must be 6-digit pooling areas")
    deadline = filing.get("deadline")
    try:
        at = time.fromisoformat(deadline) if isinstance(deadline, str) and len(deadline) == 5 else None
    except ValueError:
        at = None
    if at is None:
        raise SupervisionPolicyError(f'{source}: filing.deadline must be a time "HH:MM"')
    reports = filing.strings("reports")
    if not set(reports) <= {"daily", "covid-ledger", "prepayments"}:
        raise SupervisionPolicyError(f"{source}: filing.reports are daily, covid-ledger or prepayments")
    filing_rules = FilingRules(
        areas=areas,
        reports=reports,
        deadline=at,
        lookback_days=filing.integer("lookback_days", high=31),
        check_seconds=filing.integer("check_seconds", high=3600),
    )
    filing.finish()
    root.finish()
    return SupervisionPolicy(
        version=version,
        effective_from=effective_from,
        high_cost=HighCostRules(categories=frozenset(categories), thresholds=thresholds),
        price=price_rules,
        fraud=fraud_rules,
        indicators=indicator_rules,
        filing=filing_rules,
    )


def load_supervision(policy_dir: str | Path | None) -> SupervisionBook:
    """Every `supervision/<YYYY-MM-DD>.toml` of the policy folder (default deploy/policy), read and checked."""
    folder = Path(policy_dir or DEFAULT_POLICY_DIR) / SUPERVISION_FOLDER
    paths = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not paths:
        raise SupervisionPolicyError(f"{folder}: no supervision policy files (<YYYY-MM-DD>.toml)")
    versions = []
    for path in paths:
        try:
            with path.open("rb") as file:
                doc = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SupervisionPolicyError(f"{path}: {exc}") from None
        policy = parse_policy(doc, source=str(path))
        if path.stem != policy.effective_from.isoformat():
            raise SupervisionPolicyError(f"{path}: the file is named by meta.effective_from ({policy.effective_from})")
        versions.append(policy)
    return SupervisionBook(versions)
