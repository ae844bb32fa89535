"""Plain values the engine takes and returns (frozen dataclasses, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ClaimError
from .money import ZERO, as_decimal, format_amount, format_ratio

if TYPE_CHECKING:
    from .accumulators import Accumulators

MED_TYPES = frozenset({"11", "14", "21", "41"})
INSUTYPES = frozenset({"310", "390"})
PSN_TYPES = frozenset({"in_service", "retired"})
ITEM_CLASSES = frozenset({"A", "B", "C"})

# Benefit pools of DOMAIN §3.
OUTPATIENT = "outpatient"
CHRONIC = "chronic"
INPATIENT = "inpatient"


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Institution:
    """A designated hospital or pharmacy (定点医药机构)."""

    code: str
    kind: str  # "hospital" | "pharmacy"
    level: int | None  # 1 | 2 | 3 for hospitals, None for pharmacies
    affiliation: str  # "city" 市管 | "county" 县管
    admdvs: str

    def __post_init__(self) -> None:
        if self.kind not in ("hospital", "pharmacy"):
            raise ClaimError(f"institution {self.code}: kind {self.kind!r}", code="INVALID_INSTITUTION")
        if self.level not in (None, 1, 2, 3):
            raise ClaimError(f"institution {self.code}: level {self.level!r}", code="INVALID_INSTITUTION")
        if self.affiliation not in ("city", "county"):
            raise ClaimError(f"institution {self.code}: affiliation {self.affiliation!r}", code="INVALID_INSTITUTION")
        if len(self.admdvs) != 6 or not self.admdvs.isdigit():
            raise ClaimError(f"institution {self.code}: admdvs {self.admdvs!r}", code="INVALID_INSTITUTION")


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One fee line (费用明细) as uploaded by the HIS or pharmacy."""

    feedetl_sn: str
    med_list_codg: str
    pric: Decimal
    cnt: Decimal
    med_list_name: str = ""
    item_class: str | None = None  # declared by the HIS: "A" | "B" | "C" | None
    det_item_fee_sumamt: Decimal | None = None  # declared line total
    preselfpay_prop: Decimal | None = None  # declared first self-pay ratio (unknown codes only)
    days_supply: int | None = None
    fee_ocur_time: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pric", as_decimal(self.pric, field="pric"))
        object.__setattr__(self, "cnt", as_decimal(self.cnt, field="cnt"))
        if self.det_item_fee_sumamt is not None:
            object.__setattr__(
                self, "det_item_fee_sumamt", as_decimal(self.det_item_fee_sumamt, field="det_item_fee_sumamt")
            )
        if self.preselfpay_prop is not None:
            object.__setattr__(self, "preselfpay_prop", as_decimal(self.preselfpay_prop, field="preselfpay_prop"))
        if self.item_class is not None and self.item_class not in ITEM_CLASSES:
            raise ClaimError(f"line {self.feedetl_sn}: item_class {self.item_class!r}", code="INVALID_ITEM_CLASS")
        if not self.pric.is_finite() or self.pric < 0:
            raise ClaimError(f"line {self.feedetl_sn}: price {self.pric}", code="INVALID_PRICE")
        if not self.cnt.is_finite() or self.cnt <= 0:
            raise ClaimError(f"line {self.feedetl_sn}: quantity {self.cnt}", code="INVALID_QUANTITY")
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ClaimError(
                f"line {self.feedetl_sn}: preselfpay_prop {self.preselfpay_prop}", code="INVALID_PRESELFPAY_PROP"
            )
        if self.days_supply is not None and self.days_supply < 0:
            raise ClaimError(f"line {self.feedetl_sn}: days_supply {self.days_supply}", code="INVALID_DAYS_SUPPLY")


@dataclass(frozen=True, slots=True)
class Claim:
    """A visit to settle: where, when, why, and its fee lines."""

    med_type: str  # "11" | "14" | "21" | "41"
    institution: Institution
    begin_date: date
    lines: tuple[FeeLine, ...]
    mdtrt_id: str | None = None
    prescriber: Institution | None = None  # med_type 41: the hospital that wrote the prescription
    end_date: date | None = None  # discharge date (inpatient)
    diagnoses: tuple[str, ...] = ()
    chronic_disease: str | None = None
    referral_compliant: bool = True
    acct_used_flag: bool = False
    account_balance: Decimal = ZERO  # balance of whoever pays: the person or the family payer
    acct_payer_psn_no: str | None = None
    admissions: tuple[tuple[date, date | None], ...] = ()  # the person's OTHER inpatient stays

    def __post_init__(self) -> None:
        if self.med_type not in MED_TYPES:
            raise ClaimError(f"med_type {self.med_type!r} is not one of 11, 14, 21, 41", code="INVALID_MED_TYPE")
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "diagnoses", tuple(self.diagnoses))
        object.__setattr__(self, "admissions", tuple(tuple(a) for a in self.admissions))
        object.__setattr__(self, "account_balance", as_decimal(self.account_balance, field="account_balance"))
        if self.end_date is not None and self.end_date < self.begin_date:
            raise ClaimError("end_date is before begin_date", code="INVALID_DATES")


@dataclass(frozen=True, slots=True)
class AidIdentity:
    """A medical-aid identity (救助身份); `lost_on` is the day it was lost, if any."""

    category: str
    start_date: date
    lost_on: date | None = None


@dataclass(frozen=True, slots=True)
class ChronicQualification:
    """A chronic / 两病 qualification (门诊慢特病资格)."""

    disease: str
    start_date: date
    end_date: date | None = None
    two_disease_class: int | None = None


@dataclass(frozen=True, slots=True)
class OffsiteRegistration:
    """An off-site registration (异地备案)."""

    mdtrtarea_admdvs: str
    start_date: date
    end_date: date | None = None


@dataclass(frozen=True, slots=True)
class EligibilitySnapshot:
    """What eligibility knows about the person; the engine applies the windows itself."""

    psn_no: str
    insutype: str  # "310" | "390"
    insuplc_admdvs: str
    psn_type: str | None = None  # employees: "in_service" | "retired"
    aid_identities: tuple[AidIdentity, ...] = ()
    chronic_qualifications: tuple[ChronicQualification, ...] = ()
    offsite_registrations: tuple[OffsiteRegistration, ...] = ()

    def __post_init__(self) -> None:
        if self.insutype not in INSUTYPES:
            raise ClaimError(f"insutype {self.insutype!r}", code="INVALID_INSUTYPE")
        if self.psn_type is not None and self.psn_type not in PSN_TYPES:
            raise ClaimError(f"psn_type {self.psn_type!r}", code="INVALID_PSN_TYPE")
        object.__setattr__(self, "aid_identities", tuple(self.aid_identities))
        object.__setattr__(self, "chronic_qualifications", tuple(self.chronic_qualifications))
        object.__setattr__(self, "offsite_registrations", tuple(self.offsite_registrations))


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Finding:
    """What smart monitoring found (DOMAIN §11), of the claim or of one fee line."""

    code: str
    detail: str
    feedetl_sn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.feedetl_sn is not None:
            out["feedetl_sn"] = self.feedetl_sn
        return out


@dataclass(frozen=True, slots=True)
class SettlementWarning(Finding):
    """A soft finding: settlement goes on, the HIS is told why."""


@dataclass(frozen=True, slots=True)
class Violation(Finding):
    """A hard finding: the service must reject the settlement (nothing is written)."""


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One explained number: which rule, which parameters, which accumulators."""

    step: str
    rule: str
    amount: Decimal
    detail: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "rule": self.rule, "amount": format_amount(self.amount), "detail": dict(self.detail)}


class LineResult(NamedTuple):
    """How one fee line was classified and split (a NamedTuple: built 20× per claim, must be cheap)."""

    feedetl_sn: str
    med_list_codg: str
    item_class: str  # class applied
    amount: Decimal  # price × quantity, to the fen
    inscp_amt: Decimal  # in policy scope
    preselfpay_amt: Decimal  # class B first self-pay
    fulamt_ownpay_amt: Decimal  # class C fully self-paid
    preselfpay_prop: Decimal  # ratio used for class B (0 otherwise)
    # What supervision reads of the line (the `settled` event's `lines`, DOMAIN §13): the line as uploaded and what
    # the catalogue says of its code (category drug|examination|treatment|material, essential drug, watched goods).
    med_list_name: str = ""
    pric: Decimal = ZERO
    cnt: Decimal = ZERO
    days_supply: int | None = None
    fee_ocur_time: datetime | None = None
    category: str | None = None
    essential: bool = False
    watched: bool = False


@dataclass(frozen=True, slots=True)
class Subsidy:
    """COVID finance subsidy: who advances it and who finally owes which part."""

    case_status: str  # "confirmed" | "suspected"
    amount: Decimal
    advance_payer: str  # "city" | "county"
    shares: tuple[tuple[str, Decimal], ...]  # (payer, amount), amounts sum to `amount`

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_status": self.case_status,
            "amount": format_amount(self.amount),
            "advance_payer": self.advance_payer,
            "shares": [{"payer": p, "amount": format_amount(a)} for p, a in self.shares],
        }


MONEY_FIELDS = (  # the amounts of the CONTRACT breakdown
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "tilt_aid_pay",
    "fin_subsidy_pay",
    "fund_pay_sumamt",
    "psn_pay",
    "acct_pay",
    "psn_cash_pay",
)


@dataclass(frozen=True, slots=True)
class Adjudication:
    """The result of one adjudication: the CONTRACT breakdown plus trace and accumulator delta."""

    psn_no: str
    insutype: str
    med_type: str  # effective: chronic without qualification → "11"
    pool: str  # "outpatient" | "chronic" | "inpatient"
    year: int  # accumulator year
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    pool_prop: Decimal
    hifp_pay: Decimal
    hifmi_pay: Decimal
    maf_pay: Decimal
    tilt_aid_pay: Decimal
    fin_subsidy_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_pay: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    balc: Decimal  # account balance after this settlement
    covid_status: str | None
    offsite: bool
    aid_category: str | None
    acct_payer_psn_no: str | None
    mdtrt_id: str | None
    policy_version: str
    warnings: tuple[SettlementWarning, ...]
    violations: tuple[Violation, ...]
    trace: tuple[TraceStep, ...]
    accumulator_delta: Accumulators
    subsidy: Subsidy | None
    lines: tuple[LineResult, ...] = field(default=())

    @property
    def warning_codes(self) -> tuple[str, ...]:
        return tuple(w.code for w in self.warnings)

    def to_breakdown(self) -> dict[str, Any]:
        """The CONTRACT "Breakdown" fields (money as strings with two decimals)."""
        out: dict[str, Any] = {
            "mdtrt_id": self.mdtrt_id,
            "psn_no": self.psn_no,
            "insutype": self.insutype,
            "med_type": self.med_type,
        }
        for name in MONEY_FIELDS:
            out[name] = format_amount(getattr(self, name))
        out["pool_prop"] = format_ratio(self.pool_prop)
        out["balc"] = format_amount(self.balc)
        out["covid_status"] = self.covid_status
        out["offsite"] = self.offsite
        out["warnings"] = [w.to_dict() for w in self.warnings]
        out["trace"] = [t.to_dict() for t in self.trace]
        out["subsidy"] = self.subsidy.to_dict() if self.subsidy is not None else None
        return out
