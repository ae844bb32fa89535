"""Pure rules of the reports: business days, cutoffs, the rows of the official forms, units, masking.

No I/O here; the queries (daily.py, ledgers.py, stats.py) and the renderers (forms.py) build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.events.envelope import BUSINESS_TZ
from shared.logs import mask_certno, mask_name
from shared.money import ZERO

CUTOFF_TIME = time(17, 0)  # 附件3 / 附件4: data up to 17:00 of the day before the filing date
WAN = Decimal(10000)
WAN_PLACES = Decimal("0.0001")

CASE_STATUSES = ("confirmed", "suspected")
ORIGINS = ("local", "province", "other_province")
INSUTYPES = ("310", "390")
TWO_DISEASES = ("hypertension", "diabetes")
FINANCE_LEVELS = ("central", "provincial", "city", "county")  # who pays COVID subsidies (subsidy-paid `payer`)

CASE_LABELS = {"confirmed": "确诊病例", "suspected": "疑似病例"}
ORIGIN_LABELS = {"local": "本市参保患者", "province": "收治省内其它市州参保患者", "other_province": "收治外省参保患者"}
INSUTYPE_LABELS = {"310": "职工医保", "390": "居民医保"}
DISEASE_LABELS = {"hypertension": "高血压", "diabetes": "糖尿病"}
GEND_LABELS = {"1": "男", "2": "女"}
BUDGET_STATUS_LABELS = {"ok": "正常", "warning": "预警", "exceeded": "超支"}
# 专项预付金 of 附件4: the special COVID prepayment and its emergency top-ups (seed 001, 三(一)).
SPECIAL_KINDS = ("covid_special", "top_up")

# The reference pooling areas (DOMAIN §1): the city level and its counties.
AREA_NAMES = {
    "621000": "市本级(市直)",
    "621002": "西峰区",
    "621021": "庆城县",
    "621022": "环县",
    "621023": "华池县",
    "621024": "合水县",
    "621025": "正宁县",
    "621026": "宁县",
    "621027": "镇原县",
}

DAILY_MONEY = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "psn_burden")


def area_name(admdvs: str | None) -> str:
    """A pooling area as the forms name it (its code when it is not one of the reference areas)."""
    if not admdvs:
        return ""
    return AREA_NAMES.get(admdvs, admdvs)


def business_day(moment: datetime) -> date:
    """The business day (Asia/Shanghai) of a moment; a moment without offset is business time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BUSINESS_TZ)
    return moment.astimezone(BUSINESS_TZ).date()


def parse_moment(value: str | None) -> datetime | None:
    """An RFC 3339 time of an event (a missing offset means business time)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=BUSINESS_TZ)


def cutoff_for(filing_date: date) -> datetime:
    """17:00 business time on the day before the filing date (附件3 and 附件4)."""
    return datetime.combine(filing_date - timedelta(days=1), CUTOFF_TIME, BUSINESS_TZ)


def prepayment_effective_at(*, disbursed_on: date, recorded_at: datetime) -> datetime:
    """When a disbursement counts for the cutoff.

    Recorded on its disbursement day: the moment it was recorded (so 16:59 is in, 17:01 is out).
    Recorded on another day (back-dated, or a scheduled one run later): the start of the disbursement
    day, since no time of day is known for it.
    """
    if business_day(recorded_at) == disbursed_on:
        return recorded_at.astimezone(BUSINESS_TZ)
    return datetime.combine(disbursed_on, time(0, 0), BUSINESS_TZ)


def to_wan(amount: Decimal) -> Decimal:
    """Yuan → 万元 with four decimals (half-up), as the forms are filled."""
    return (Decimal(amount) / WAN).quantize(WAN_PLACES, rounding=ROUND_HALF_UP)


def psn_burden(*, medfee: Decimal, hifp: Decimal, hifmi: Decimal, maf: Decimal, tilt_aid: Decimal) -> Decimal:
    """应由个人负担的费用: what is left after the basic fund, critical illness and aid (before finance)."""
    return medfee - hifp - hifmi - maf - tilt_aid


@dataclass(frozen=True, slots=True)
class DailyKey:
    """One row of 附件2: case status × patient origin × scheme."""

    case_status: str
    origin: str
    insutype: str


DAILY_KEYS: tuple[DailyKey, ...] = tuple(DailyKey(c, o, i) for c in CASE_STATUSES for o in ORIGINS for i in INSUTYPES)


@dataclass(frozen=True, slots=True)
class DailyFigures:
    """The six columns of 附件2 (money in yuan)."""

    persons: int = 0
    medfee_sumamt: Decimal = ZERO
    hifp_pay: Decimal = ZERO
    hifmi_pay: Decimal = ZERO
    maf_pay: Decimal = ZERO
    psn_burden: Decimal = ZERO

    def __add__(self, other: DailyFigures) -> DailyFigures:
        return DailyFigures(self.persons + other.persons, *(getattr(self, f) + getattr(other, f) for f in DAILY_MONEY))


def age_on(brdy: date | None, day: date) -> int | None:
    """Full years of age on a day."""
    if brdy is None:
        return None
    return day.year - brdy.year - ((day.month, day.day) < (brdy.month, brdy.day))


def ledger_person(*, psn_name: str | None, certno: str | None, unmasked: bool) -> tuple[str, str]:
    """Name and ID number on 附件3: in full for admin, masked for everyone else (张**, 621002********123X)."""
    name, number = psn_name or "", certno or ""
    if unmasked:
        return name, number
    return mask_name(name), mask_certno(number) if number else ""


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole as a ratio with four decimals (None when there is no whole)."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(WAN_PLACES, rounding=ROUND_HALF_UP)
