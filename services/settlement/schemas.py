"""Request bodies of the settlement service (CONTRACT.md "Settlement service"); answers are plain dicts.

Everything is bounded where it enters, so that nothing accepted can fail later: text PostgreSQL can store
(shared.inputs.Body), times in 1900 … 2099, money as plain strings (shared.money), and a fee line's amount
(pric × cnt) at most MAX_LINE_AMOUNT, so that a whole visit (at most 1,000 lines, the policy's
max_lines_per_claim) stays far below what a settlement's NUMERIC(14, 2) columns hold: a visit whose lines
were taken can always be settled.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from shared.inputs import PRINTABLE, Body, BusinessDay, BusinessTime, Month
from shared.money import NonNegativeMoneyIn, PositiveMoneyIn, Quantity, to_fen

CODE = r"^[A-Za-z0-9_-]+$"
IDENT = r"^[A-Za-z0-9_.:/-]+$"
MAX_LINES_PER_REQUEST = 1000
MAX_LINE_AMOUNT = Decimal("9999999.99")  # pric, and pric × cnt: × 1,000 lines = 9,999,999,990.00 < 10**12

Code = Field(min_length=1, max_length=32, pattern=CODE)
PsnNo = Field(min_length=1, max_length=40, pattern=CODE)  # as eligibility registers them
CertNo = Field(min_length=1, max_length=64, pattern=PRINTABLE)  # any printable text: eligibility decides
CertType = Literal["01", "02", "03"]


def check_diagnoses(value: list[str]) -> list[str]:
    """ICD-10 codes: letters, digits, dot and dash, at most 16 characters each."""
    for code in value:
        if not code or len(code) > 16 or not all(c.isalnum() or c in ".-" for c in code):
            raise ValueError("a diagnosis is an ICD-10 code such as U07.1")
    return value


class Strict(Body):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FeeItemIn(Strict):
    feedetl_sn: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_codg: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_name: str = Field(default="", max_length=200)
    item_class: Literal["A", "B", "C"] | None = None
    pric: NonNegativeMoneyIn
    cnt: Quantity
    det_item_fee_sumamt: NonNegativeMoneyIn | None = None
    preselfpay_prop: Quantity | None = None
    days_supply: int | None = Field(default=None, ge=0, le=366)
    fee_ocur_time: BusinessTime | None = None

    @model_validator(mode="after")
    def _amounts(self) -> FeeItemIn:
        if self.cnt <= 0:
            raise ValueError("cnt must be positive")
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ValueError("preselfpay_prop must be between 0 and 1")
        for name, amount in (("pric", self.pric), ("pric × cnt", to_fen(self.pric * self.cnt))):
            if amount > MAX_LINE_AMOUNT:
                raise ValueError(f"{name} above {MAX_LINE_AMOUNT}")
        if self.det_item_fee_sumamt is not None and self.det_item_fee_sumamt > MAX_LINE_AMOUNT:
            raise ValueError(f"det_item_fee_sumamt above {MAX_LINE_AMOUNT}")
        return self


class VisitIn(Strict):
    psn_no: str = PsnNo
    mdtrt_cert_type: CertType
    mdtrt_cert_no: str = CertNo
    fixmedins_code: str = Code
    med_type: Literal["11", "14", "21"]
    begntime: BusinessTime
    diagnoses: list[str] = Field(default_factory=list, max_length=50)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)
    referral_compliant: StrictBool = True

    @field_validator("diagnoses")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return check_diagnoses(value)


class FeesIn(Strict):
    items: list[FeeItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)


class DischargeIn(Strict):
    endtime: BusinessTime


class SettleIn(Strict):
    acct_used_flag: StrictBool = False
    acct_payer_psn_no: str | None = Field(default=None, min_length=1, max_length=40, pattern=CODE)


class CatalogueIn(Strict):
    med_list_name: str = Field(min_length=1, max_length=200)
    item_class: Literal["A", "B", "C"]
    preselfpay_prop: Quantity | None = None
    covid_only: StrictBool = False
    price_cap: NonNegativeMoneyIn | None = None
    account_excluded: StrictBool = False
    valid_from: BusinessDay | None = None  # a temporary entry: the first day it is in the catalogue
    valid_to: BusinessDay | None = None  # … and the last
    category: Literal["drug", "examination", "treatment", "material"] | None = None  # what supervision reads (§13)
    essential: StrictBool = False  # an essential drug 基本药物 (category drug only)
    watched: StrictBool = False  # watched goods of the price and sales watch

    @model_validator(mode="after")
    def _ranges(self) -> CatalogueIn:
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ValueError("preselfpay_prop must be between 0 and 1")
        if self.valid_from is not None and self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if self.essential and self.category != "drug":
            raise ValueError("only a drug (category drug) is an essential drug")
        return self


class PrescriptionItemIn(Strict):
    med_list_codg: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_name: str = Field(default="", max_length=200)
    item_class: Literal["A", "B", "C"] | None = None
    cnt: Quantity
    days_supply: int = Field(ge=1, le=366)

    @field_validator("cnt")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("cnt must be positive")
        return value


class PrescriptionIn(Strict):
    rx_no: str = Field(min_length=1, max_length=64, pattern=IDENT)
    psn_no: str = PsnNo
    fixmedins_code: str = Code
    issued_at: BusinessTime
    valid_days: int | None = Field(default=None, ge=1, le=366)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)
    items: list[PrescriptionItemIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_line_per_drug(self) -> PrescriptionIn:
        codes = [item.med_list_codg for item in self.items]
        if len(codes) != len(set(codes)):
            raise ValueError("each drug appears once on a prescription")
        return self


class PharmacySettleIn(Strict):
    rx_no: str = Field(min_length=1, max_length=64, pattern=IDENT)
    mdtrt_cert_type: CertType
    mdtrt_cert_no: str = CertNo
    fixmedins_code: str = Code
    items: list[FeeItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)
    acct_used_flag: StrictBool = False
    acct_payer_psn_no: str | None = Field(default=None, min_length=1, max_length=40, pattern=CODE)


class ClaimVisitIn(Strict):
    psn_no: str = PsnNo
    fixmedins_code: str = Code
    med_type: Literal["11", "14", "21"]
    begntime: BusinessTime
    endtime: BusinessTime | None = None
    mdtrt_cert_type: CertType | None = None
    mdtrt_cert_no: str | None = Field(default=None, min_length=1, max_length=64, pattern=PRINTABLE)
    diagnoses: list[str] = Field(default_factory=list, max_length=50)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)
    referral_compliant: StrictBool = True

    @field_validator("diagnoses")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return check_diagnoses(value)

    @model_validator(mode="after")
    def _dates(self) -> ClaimVisitIn:
        if self.endtime is not None and self.endtime < self.begntime:
            raise ValueError("endtime is before begntime")
        if self.med_type == "21" and self.endtime is None:
            raise ValueError("a declared inpatient claim needs endtime (the discharge)")
        return self


class ClaimIn(Strict):
    psn_no: str | None = Field(default=None, max_length=40)
    fixmedins_code: str | None = Field(default=None, max_length=32)
    visit: ClaimVisitIn
    items: list[FeeItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)

    @model_validator(mode="after")
    def _consistent(self) -> ClaimIn:
        if self.psn_no is not None and self.psn_no != self.visit.psn_no:
            raise ValueError("psn_no differs from visit.psn_no")
        if self.fixmedins_code is not None and self.fixmedins_code != self.visit.fixmedins_code:
            raise ValueError("fixmedins_code differs from visit.fixmedins_code")
        return self


class CreditIn(Strict):
    amount: PositiveMoneyIn
    period: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class PurchaseItemIn(Strict):
    """A line of a retail purchase: no class, no ratio (the catalogue decides what the account may pay)."""

    feedetl_sn: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_codg: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_name: str = Field(default="", max_length=200)
    pric: NonNegativeMoneyIn
    cnt: Quantity

    @model_validator(mode="after")
    def _amounts(self) -> PurchaseItemIn:
        if self.cnt <= 0:
            raise ValueError("cnt must be positive")
        for name, amount in (("pric", self.pric), ("pric × cnt", to_fen(self.pric * self.cnt))):
            if amount > MAX_LINE_AMOUNT:
                raise ValueError(f"{name} above {MAX_LINE_AMOUNT}")
        return self


class PurchaseIn(Strict):
    """定点药店购药 without a prescription (med_type 41): paid from the personal account only, the rest cash."""

    mdtrt_cert_type: CertType
    mdtrt_cert_no: str = CertNo
    fixmedins_code: str = Code
    items: list[PurchaseItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)
    acct_payer_psn_no: str | None = Field(default=None, min_length=1, max_length=40, pattern=CODE)

    @model_validator(mode="after")
    def _one_line_each(self) -> PurchaseIn:
        if len({i.feedetl_sn for i in self.items}) != len(self.items):
            raise ValueError("the same feedetl_sn twice")
        return self


class CreditRunIn(Strict):
    period: Month  # "YYYY-MM": the month credited


class ClosureIn(Strict):
    reason: Literal["transfer_out", "death"]
    closed_on: BusinessDay
