"""Request bodies of the settlement service (CONTRACT.md "Settlement service"); answers are plain dicts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.money import Money, Quantity

CODE = r"^[A-Za-z0-9_-]+$"
IDENT = r"^[A-Za-z0-9_.:/-]+$"
MAX_LINES_PER_REQUEST = 1000

Code = Field(min_length=1, max_length=32, pattern=CODE)
PsnNo = Field(min_length=1, max_length=40, pattern=IDENT)
CertType = Literal["01", "02", "03"]


def check_diagnoses(value: list[str]) -> list[str]:
    """ICD-10 codes: letters, digits, dot and dash, at most 16 characters each."""
    for code in value:
        if not code or len(code) > 16 or not all(c.isalnum() or c in ".-" for c in code):
            raise ValueError("a diagnosis is an ICD-10 code such as U07.1")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FeeItemIn(Strict):
    feedetl_sn: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_codg: str = Field(min_length=1, max_length=64, pattern=IDENT)
    med_list_name: str = Field(default="", max_length=200)
    item_class: Literal["A", "B", "C"] | None = None
    pric: Money
    cnt: Quantity
    det_item_fee_sumamt: Money | None = None
    preselfpay_prop: Quantity | None = None
    days_supply: int | None = Field(default=None, ge=0, le=366)
    fee_ocur_time: datetime | None = None

    @model_validator(mode="after")
    def _amounts(self) -> FeeItemIn:
        if self.pric < 0:
            raise ValueError("pric must not be negative")
        if self.cnt <= 0:
            raise ValueError("cnt must be positive")
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ValueError("preselfpay_prop must be between 0 and 1")
        if self.det_item_fee_sumamt is not None and self.det_item_fee_sumamt < 0:
            raise ValueError("det_item_fee_sumamt must not be negative")
        return self


class VisitIn(Strict):
    psn_no: str = PsnNo
    mdtrt_cert_type: CertType
    mdtrt_cert_no: str = Field(min_length=1, max_length=64)
    fixmedins_code: str = Code
    med_type: Literal["11", "14", "21"]
    begntime: datetime
    diagnoses: list[str] = Field(default_factory=list, max_length=50)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)
    referral_compliant: bool = True

    @field_validator("diagnoses")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return check_diagnoses(value)


class FeesIn(Strict):
    items: list[FeeItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)


class DischargeIn(Strict):
    endtime: datetime


class SettleIn(Strict):
    acct_used_flag: bool = False
    acct_payer_psn_no: str | None = Field(default=None, min_length=1, max_length=40, pattern=IDENT)


class CatalogueIn(Strict):
    med_list_name: str = Field(min_length=1, max_length=200)
    item_class: Literal["A", "B", "C"]
    preselfpay_prop: Quantity | None = None
    covid_only: bool = False
    price_cap: Money | None = None
    account_excluded: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> CatalogueIn:
        if self.preselfpay_prop is not None and not (0 <= self.preselfpay_prop <= 1):
            raise ValueError("preselfpay_prop must be between 0 and 1")
        if self.price_cap is not None and self.price_cap < 0:
            raise ValueError("price_cap must not be negative")
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
    issued_at: datetime
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
    mdtrt_cert_no: str = Field(min_length=1, max_length=64)
    fixmedins_code: str = Code
    items: list[FeeItemIn] = Field(min_length=1, max_length=MAX_LINES_PER_REQUEST)
    acct_used_flag: bool = False
    acct_payer_psn_no: str | None = Field(default=None, min_length=1, max_length=40, pattern=IDENT)


class ClaimVisitIn(Strict):
    psn_no: str = PsnNo
    fixmedins_code: str = Code
    med_type: Literal["11", "14", "21"]
    begntime: datetime
    endtime: datetime | None = None
    mdtrt_cert_type: CertType | None = None
    mdtrt_cert_no: str | None = Field(default=None, min_length=1, max_length=64)
    diagnoses: list[str] = Field(default_factory=list, max_length=50)
    chronic_disease: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)
    referral_compliant: bool = True

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
    amount: Money
    period: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("amount must be positive")
        return value
