"""The policy in force for one region and period, as plain frozen values (see policy_book for loading)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .errors import ClaimError


@dataclass(frozen=True, slots=True)
class PoolRule:
    """One basic-fund pool of one scheme (DOMAIN §3)."""

    pool: str  # "outpatient" | "chronic" | "inpatient"
    path: str  # key path in the policy file, for the trace (e.g. "schemes.310.inpatient")
    deductible_kind: str  # "annual" (累计补差 for outpatient) | "per_admission"
    deductible_by_level: Mapping[int | None, Decimal]  # level (None = any) → amount
    ratio_by: Mapping[tuple[str | None, int | None], Decimal]  # (psn_type, level) → ratio
    annual_cap: Decimal
    accumulator: str  # key of the fund-paid accumulator of this pool
    deductible_accumulator: str | None  # key of the annual deductible paid (None: per admission)

    def deductible_for(self, level: int | None) -> Decimal:
        try:
            return self.deductible_by_level[level]
        except KeyError:
            raise ClaimError(
                f"{self.path}: no deductible for institution level {level!r}", code="INSTITUTION_LEVEL_REQUIRED"
            ) from None

    def ratio_for(self, *, psn_type: str | None, level: int | None) -> Decimal:
        try:
            return self.ratio_by[(psn_type, level)]
        except KeyError:
            raise ClaimError(
                f"{self.path}: no ratio for person type {psn_type!r} at level {level!r}",
                code="RATIO_NOT_DEFINED",
            ) from None


@dataclass(frozen=True, slots=True)
class SchemeRules:
    """Basic-fund rules of one scheme (insutype 310 employee, 390 resident)."""

    insutype: str
    outpatient: PoolRule
    chronic: PoolRule
    chronic_per_disease: Mapping[str, PoolRule]  # 两病: disease → own pool
    inpatient: PoolRule


@dataclass(frozen=True, slots=True)
class Segment:
    """A band of the critical-illness burden above the threshold; width None = unbounded."""

    width: Decimal | None
    ratio: Decimal


@dataclass(frozen=True, slots=True)
class CriticalIllnessRule:
    """DOMAIN §4."""

    threshold: Decimal
    segments: tuple[Segment, ...]
    annual_cap: Decimal | None
    aid_categories: frozenset[str]  # holders get the tilt below
    aid_threshold: Decimal
    aid_ratio_bonus: Decimal
    aid_annual_cap: Decimal | None


@dataclass(frozen=True, slots=True)
class AidCategory:
    """One medical-aid category (DOMAIN §5 table)."""

    name: str
    annual_deductible: Decimal
    ratio: Decimal
    order: int  # position in the policy file: last tie-break


@dataclass(frozen=True, slots=True)
class TiltRule:
    """倾斜救助 (DOMAIN §5)."""

    threshold: Decimal
    ratio: Decimal
    annual_cap: Decimal | None


@dataclass(frozen=True, slots=True)
class MedicalAidRule:
    """DOMAIN §5."""

    categories: Mapping[str, AidCategory]
    outpatient_annual_cap: Decimal
    chronic_inpatient_annual_cap: Decimal
    noncompliant_referral_reduction: Decimal
    identity_window: str  # "end_of_loss_month"
    tilt: TiltRule
    without_aid: frozenset[str] = frozenset()  # identities that carry no aid (防返贫监测对象: watched only, DOMAIN §13)


@dataclass(frozen=True, slots=True)
class SubsidySplit:
    """Who advances the COVID subsidy and the final shares (payer → fraction, summing to 1)."""

    advance_payer: str  # "affiliation" | "city" | "county"
    shares: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class CovidRule:
    """DOMAIN §6."""

    confirmed_diagnoses: frozenset[str]
    suspected_diagnoses: frozenset[str]
    confirmed: SubsidySplit
    suspected_city: SubsidySplit  # city-level insured, or outsider in a city-managed hospital
    suspected_shared: SubsidySplit  # county-insured, or outsider in a county hospital
    offsite_reduction_exempt: bool


@dataclass(frozen=True, slots=True)
class AccountRule:
    """DOMAIN §7 credits."""

    in_service_monthly_rate: Decimal
    retired_monthly_amount: Decimal


@dataclass(frozen=True, slots=True)
class PrescriptionRule:
    """DOMAIN §8."""

    validity_days: int
    max_days_supply: int
    max_days_supply_chronic: int


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the engine needs for one region in one period. Built by `PolicyBook`."""

    region: str  # 6-digit admdvs of the pooling area (e.g. "621000")
    name: str
    effective_from: date
    effective_to: date | None  # inclusive; None = until replaced
    source: str  # file it came from
    default_preselfpay_prop: Decimal
    schemes: Mapping[str, SchemeRules]
    offsite_unregistered_reduction: Decimal
    pre_admission_merge_days: int
    max_lines_per_claim: int
    critical_illness: CriticalIllnessRule
    medical_aid: MedicalAidRule
    covid: CovidRule
    account: AccountRule
    prescription: PrescriptionRule

    @property
    def version(self) -> str:
        return f"{self.region}@{self.effective_from.isoformat()}"

    def scheme(self, insutype: str) -> SchemeRules:
        try:
            return self.schemes[insutype]
        except KeyError:
            raise ClaimError(f"policy {self.version} has no scheme {insutype}", code="INVALID_INSUTYPE") from None

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)
