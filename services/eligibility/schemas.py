"""Request and response bodies of the eligibility service.

Shape is checked here (types, required fields, lengths → 422 VALIDATION_FAILED); meaning is
checked by the domain rules, each with its own code (INVALID_CERTNO, UNKNOWN_AID_CATEGORY, …),
so those fields are plain bounded strings here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from shared import inputs
from shared.admdvs import Admdvs
from shared.events.envelope import BUSINESS_TZ
from shared.money import MoneyIn

CODE_PATTERN = r"^[A-Za-z0-9_-]+$"
Code = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2199, 12, 31)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_text(value: str) -> str:
    """Free text without control characters (PostgreSQL refuses NUL), not blank."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters are not allowed")
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _iso_day(value: Any) -> date:
    """A date as 'YYYY-MM-DD' text (no numbers, no times), between 1900 and 2199."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and _DAY.fullmatch(value):
        day = date.fromisoformat(value)  # ValueError for 1999-02-30
    else:
        raise ValueError("a date is 'YYYY-MM-DD'")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError("date out of range (1900-01-01 … 2199-12-31)")
    return day


def _instant(value: Any) -> datetime:
    """An RFC 3339 time; without an offset it is business time (Asia/Shanghai)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("a time is RFC 3339 text, e.g. 2022-04-01T08:30:00+08:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BUSINESS_TZ)
    if not FIRST_DAY.year <= moment.year <= LAST_DAY.year:
        raise ValueError("time out of range")
    return moment


Amount = MoneyIn  # signed: a negative is refused by the domain rule with its own code
Day = Annotated[date, BeforeValidator(_iso_day)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain_text)]
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain_text)]
Word = Annotated[str, Field(min_length=1, max_length=64)]  # checked by a domain rule
PsnNo = Annotated[str, Code]
Month = inputs.Month  # 1900-01 … 2099-12


class Body(inputs.Body):
    """No extra fields, no text PostgreSQL cannot store."""


# ------------------------------------------------------------------ institutions


class InstitutionIn(Body):
    fixmedins_code: str = Code
    fixmedins_name: Text
    kind: Literal["hospital", "pharmacy"]
    level: Literal[1, 2, 3] | None = None
    affiliation: Literal["city", "county"]
    admdvs: Admdvs

    @model_validator(mode="after")
    def _level_for_hospitals(self) -> InstitutionIn:
        if self.kind == "hospital" and self.level is None:
            raise ValueError("a hospital needs a level (1, 2 or 3)")
        if self.kind == "pharmacy" and self.level is not None:
            raise ValueError("a pharmacy has no level")
        return self


class InstitutionOut(BaseModel):
    fixmedins_code: str
    fixmedins_name: str
    kind: str
    level: int | None
    affiliation: str
    admdvs: str
    suspended: bool
    version: int


# ------------------------------------------------------------------ persons


class PersonIn(Body):
    psn_no: PsnNo | None = None
    certno: Annotated[str, Field(max_length=64)]
    psn_name: Name
    insutype: Word
    psn_type: Word | None = None
    insuplc_admdvs: Word
    emp_no: Annotated[str, Code] | None = None
    contribution_base: Amount | None = None
    card_no: Annotated[str, Code] | None = None


class PersonPatch(Body):
    """Fields that change without a history: employer, contribution base, social-security card."""

    emp_no: Annotated[str, Code] | None = None
    contribution_base: Amount | None = None
    card_no: Annotated[str, Code] | None = None

    @model_validator(mode="after")
    def _something(self) -> PersonPatch:
        if not self.model_fields_set:
            raise ValueError("give emp_no, contribution_base and/or card_no")
        return self


class RetireIn(Body):
    retired_on: Day


class AidIdentityIn(Body):
    category: Word
    start_date: Day
    lost_on: Day | None = None


class AidIdentityPatch(Body):
    lost_on: Day | None  # required; null reopens the identity


class ChronicQualificationIn(Body):
    disease: Word
    two_disease_class: StrictInt | None = None
    start_date: Day
    end_date: Day | None = None
    certified_by: str = Code


class EndDatePatch(Body):
    end_date: Day | None  # required; null reopens


class OffsiteRegistrationIn(Body):
    mdtrtarea_admdvs: Word
    start_date: Day
    end_date: Day | None = None


class FamilyIn(Body):
    relation: Word
    member_psn_no: PsnNo


# ------------------------------------------------------------------ employers


class EmployerIn(Body):
    emp_no: str = Code
    emp_name: Text | None = None
    admdvs: Word | None = None


class DeferralIn(Body):
    start_month: Month
    months: StrictInt


class ArrearsIn(Body):
    since_month: Month


class ArrearsSettleIn(Body):
    settled_on: Day


# ------------------------------------------------------------------ COVID cases


class CovidCaseIn(Body):
    psn_no: PsnNo
    status: Word
    diagnosed_at: Instant
    fixmedins_code: str = Code
    diagnosis: Text
    published: StrictBool = False


class CovidCasePatch(Body):
    status: Word | None = None
    published: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> CovidCasePatch:
        if self.status is None and self.published is None:
            raise ValueError("give status and/or published")
        return self


# ------------------------------------------------------------------ the snapshot (documentation of the answer)


class AidIdentityOn(BaseModel):
    category: str
    start_date: date
    lost_on: date | None


class ChronicQualificationOn(BaseModel):
    disease: str
    two_disease_class: int | None
    start_date: date
    end_date: date | None
    certified_by: str


class OffsiteRegistrationOn(BaseModel):
    mdtrtarea_admdvs: str
    start_date: date
    end_date: date | None


class FamilyMember(BaseModel):
    relation: str
    member_psn_no: str


class CovidCaseOn(BaseModel):
    case_id: str
    status: str
    diagnosed_at: datetime
    fixmedins_code: str
    diagnosis: str
    published: bool


class SnapshotOut(BaseModel):
    """Everything a settlement needs about a person on one date."""

    psn_no: str
    on: date
    active: bool
    inactive_reason: str | None
    arrears_months: int
    insutype: str
    psn_type: str | None
    insuplc_admdvs: str
    gend: str
    brdy: date
    emp_no: str | None
    contribution_base: str | None
    aid_identities: list[AidIdentityOn]
    chronic_qualifications: list[ChronicQualificationOn]
    offsite_registrations: list[OffsiteRegistrationOn]
    family: list[FamilyMember]
    covid_cases: list[CovidCaseOn]
    credential_matches: bool | None = None
