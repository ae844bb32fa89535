"""The catalogue (医保目录) and the classification of fee lines into A / B / C (DOMAIN §2)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from .errors import PolicyError
from .model import ITEM_CLASSES, FeeLine, LineResult, SettlementWarning, Violation
from .money import CENT, ZERO
from .toml_reader import read_toml
from .validation import DUPLICATE_LINE, line_violations

# Warning codes of this step.
CLASS_OVERRIDDEN_BY_CATALOGUE = "CLASS_OVERRIDDEN_BY_CATALOGUE"
CLASS_NOT_DECLARED = "CLASS_NOT_DECLARED"
COVID_DRUG_RESTRICTED = "COVID_DRUG_RESTRICTED"
CATALOGUE_ENTRY_NOT_IN_FORCE = "CATALOGUE_ENTRY_NOT_IN_FORCE"

_BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

# What supervision (DOMAIN §13) reads of a code: its category, and for drugs whether it is an essential drug (基本药物).
CATEGORIES = ("drug", "examination", "treatment", "material")
_NOT_SAID: tuple[str | None, bool, bool] = (
    None,
    False,
    False,
)  # a code the catalogue does not know (or not on the line's day)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the catalogue says about one code."""

    med_list_codg: str
    med_list_name: str
    item_class: str
    preselfpay_prop: Decimal | None = None  # class B first self-pay; None = policy default
    covid_only: bool = False  # class A for COVID patients only, else C
    price_cap: Decimal | None = None
    account_excluded: bool = False  # the personal account may not pay it (public health, fitness …)
    valid_from: date | None = None  # a temporary entry (e.g. the COVID drugs, added for the epidemic): first day
    valid_to: date | None = None  # … and last day (inclusive) it is in the catalogue
    category: str | None = None  # drug | examination | treatment | material (None: not said)
    essential: bool = False  # an essential drug 基本药物 (drugs only)
    watched: bool = False  # watched goods of the price and sales watch (epidemic drugs, kits, masks)

    def __post_init__(self) -> None:
        if self.item_class not in ITEM_CLASSES:
            raise ValueError(f"catalogue {self.med_list_codg}: item_class {self.item_class!r}")
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ValueError(f"catalogue {self.med_list_codg}: preselfpay_prop outside 0..1")
        if self.price_cap is not None and self.price_cap < 0:
            raise ValueError(f"catalogue {self.med_list_codg}: negative price_cap")
        if self.valid_from is not None and self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"catalogue {self.med_list_codg}: valid_to before valid_from")
        if self.category is not None and self.category not in CATEGORIES:
            raise ValueError(f"catalogue {self.med_list_codg}: category {self.category!r}")
        if self.essential and self.category != "drug":
            raise ValueError(f"catalogue {self.med_list_codg}: only a drug is an essential drug")

    def in_force_on(self, day: date) -> bool:
        """The entry is in the catalogue on `day` (always, unless it is a temporary one)."""
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


def line_date(line: FeeLine, default: date) -> date:
    """The business day (Asia/Shanghai) a fee line is dated: its fee_ocur_time, else `default` (the visit's)."""
    moment = line.fee_ocur_time
    if moment is None:
        return default
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(_BUSINESS_TZ).date()


def entry_on(catalogue: Catalogue, code: str, day: date | None) -> tuple[CatalogueEntry | None, bool]:
    """(the catalogue's entry for `code` if it is in force on `day`, whether an entry exists but is not in force)."""
    entry = catalogue.get(code)
    if entry is None or day is None or (entry.valid_from is None and entry.valid_to is None):
        return entry, False
    if entry.in_force_on(day):
        return entry, False
    return None, True


class Catalogue:
    """Immutable lookup code → entry."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[str, CatalogueEntry]) -> None:
        self._entries = entries

    @classmethod
    def from_entries(cls, entries: Iterable[CatalogueEntry]) -> Catalogue:
        """Build from entries (e.g. rows from the service's database); a later duplicate wins."""
        return cls({entry.med_list_codg: entry for entry in entries})

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read a catalogue TOML file ([[entries]] tables), validated."""
        doc = read_toml(Path(path))
        if doc.has("meta"):
            doc.table("meta").string("name")
        entries: dict[str, CatalogueEntry] = {}
        for row in doc.tables("entries"):
            code = row.string("med_list_codg")
            if code in entries:
                raise PolicyError("duplicate code", file=str(path), key=f"{row.path}.med_list_codg")
            category = row.string("category", choices=CATEGORIES) if row.has("category") else None
            essential = row.boolean("essential") if row.has("essential") else False
            if essential and category != "drug":
                raise PolicyError("only a drug (category drug) is an essential drug", file=str(path), key=f"{row.path}")
            entries[code] = CatalogueEntry(
                med_list_codg=code,
                med_list_name=row.string("med_list_name"),
                item_class=row.string("item_class", choices=ITEM_CLASSES),
                preselfpay_prop=row.ratio("preselfpay_prop") if row.has("preselfpay_prop") else None,
                covid_only=row.boolean("covid_only") if row.has("covid_only") else False,
                price_cap=row.amount("price_cap") if row.has("price_cap") else None,
                account_excluded=row.boolean("account_excluded") if row.has("account_excluded") else False,
                valid_from=row.day("valid_from") if row.has("valid_from") else None,
                valid_to=row.day("valid_to") if row.has("valid_to") else None,
                category=category,
                essential=essential,
                watched=row.boolean("watched") if row.has("watched") else False,
            )
        doc.finish()
        return cls(entries)

    def with_entries(self, entries: Iterable[CatalogueEntry]) -> Catalogue:
        """A new catalogue where `entries` replace or add codes."""
        merged = dict(self._entries)
        merged.update((entry.med_list_codg, entry) for entry in entries)
        return Catalogue(merged)

    def get(self, code: str) -> CatalogueEntry | None:
        return self._entries.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._entries

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Classified:
    """Per-line results and their sums."""

    lines: tuple[LineResult, ...]
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    account_excluded_amt: Decimal  # amounts the personal account may not pay
    warnings: tuple[SettlementWarning, ...]
    violations: tuple[Violation, ...]  # per-line hard violations (validation.line_violations, duplicates)


def classify_lines(
    *,
    lines: tuple[FeeLine, ...],
    catalogue: Catalogue,
    default_preselfpay_prop: Decimal,
    covid: bool,
    max_days_supply: int,
    on: date | None = None,
) -> Classified:
    """One pass over the lines: classify (catalogue, else declared, else C), split, and check each line.

    `on`: the visit's date, for lines without their own time: a temporary catalogue entry (valid_from / valid_to)
    that is not in force on a line's date leaves that line outside the catalogue (class C, with a warning)."""
    results = []
    warnings = []
    violations: list[Violation] = []
    seen: set[str] = set()
    medfee = ownpay = preselfpay = inscope = excluded = ZERO
    lookup = catalogue._entries.get
    for line in lines:
        amount = (line.pric * line.cnt).quantize(CENT, rounding=ROUND_HALF_UP)  # to_fen, inlined (hot loop)
        entry = lookup(line.med_list_codg)
        lapsed = False
        if entry is not None and on is not None and (entry.valid_from is not None or entry.valid_to is not None):
            day = line_date(line, on)
            if not entry.in_force_on(day):
                lapsed = True
                warnings.append(
                    SettlementWarning(
                        CATALOGUE_ENTRY_NOT_IN_FORCE,
                        f"{line.med_list_codg} is in the catalogue from {entry.valid_from or '-'} "
                        f"to {entry.valid_to or '-'}, not on {day.isoformat()}: outside the catalogue (class C)",
                        line.feedetl_sn,
                    )
                )
                entry = None
        if line.feedetl_sn in seen:
            violations.append(Violation(DUPLICATE_LINE, "the same feedetl_sn twice", line.feedetl_sn))
        seen.add(line.feedetl_sn)
        if (
            line.days_supply is not None
            or line.det_item_fee_sumamt is not None
            or (entry is not None and entry.price_cap is not None)
        ):
            violations.extend(line_violations(line, entry=entry, amount=amount, max_days_supply=max_days_supply))
        if entry is not None:
            item_class = entry.item_class
            if line.item_class is not None and line.item_class != item_class:
                warnings.append(
                    SettlementWarning(
                        CLASS_OVERRIDDEN_BY_CATALOGUE,
                        f"{line.med_list_codg}: declared {line.item_class}, catalogue {item_class}",
                        line.feedetl_sn,
                    )
                )
            if entry.covid_only and not covid:
                item_class = "C"
                warnings.append(
                    SettlementWarning(
                        COVID_DRUG_RESTRICTED,
                        f"{line.med_list_codg} is covered for suspected/confirmed COVID patients only; self-paid",
                        line.feedetl_sn,
                    )
                )
            prop = entry.preselfpay_prop if entry.preselfpay_prop is not None else default_preselfpay_prop
            if entry.account_excluded:
                excluded += amount
        elif lapsed:
            item_class, prop = "C", default_preselfpay_prop
        else:
            item_class = line.item_class or "C"
            if line.item_class is None:
                warnings.append(
                    SettlementWarning(
                        CLASS_NOT_DECLARED,
                        f"{line.med_list_codg}: unknown code without class; class C",
                        line.feedetl_sn,
                    )
                )
            prop = line.preselfpay_prop if line.preselfpay_prop is not None else default_preselfpay_prop
        said = (entry.category, entry.essential, entry.watched) if entry is not None else _NOT_SAID
        if item_class == "A":
            line_pre, line_own, line_in, line_prop = ZERO, ZERO, amount, ZERO
        elif item_class == "B":
            line_pre = (amount * prop).quantize(CENT, rounding=ROUND_HALF_UP)
            line_own, line_in, line_prop = ZERO, amount - line_pre, prop
        else:
            line_pre, line_own, line_in, line_prop = ZERO, amount, ZERO, ZERO
        results.append(
            LineResult(
                line.feedetl_sn,
                line.med_list_codg,
                item_class,
                amount,
                line_in,
                line_pre,
                line_own,
                line_prop,
                line.med_list_name,
                line.pric,
                line.cnt,
                line.days_supply,
                line.fee_ocur_time,
                *said,
            )
        )
        medfee += amount
        ownpay += line_own
        preselfpay += line_pre
        inscope += line_in
    return Classified(
        lines=tuple(results),
        medfee_sumamt=medfee,
        fulamt_ownpay_amt=ownpay,
        preselfpay_amt=preselfpay,
        inscp_scp_amt=inscope,
        account_excluded_amt=excluded,
        warnings=tuple(warnings),
        violations=tuple(violations),
    )
