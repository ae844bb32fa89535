"""Request bodies of the reporting service (supervision: resolving alerts, checks, filings); answers are dicts."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from services.reporting.alerts import RESOLUTIONS
from services.reporting.areas import ADMDVS
from shared.inputs import PRINTABLE, Body, BusinessDay, Month
from shared.money import NonNegativeMoneyIn

Resolution = Literal["helped", "confirmed", "dismissed", "corrected", "referred"]
if set(get_args(Resolution)) != set(RESOLUTIONS):  # one list of what a person records, in alerts.py
    raise RuntimeError("the resolutions of AlertResolveIn differ from alerts.RESOLUTIONS")


class AlertResolveIn(Body):
    """What was done about an alert: `helped` (化解: the help given, in the note and optionally its amount),
    `confirmed` (查实), `dismissed` (排除), `corrected` (已整改), `referred` (移交)."""

    resolution: Resolution
    note: str = Field(min_length=1, max_length=2000)
    amount: NonNegativeMoneyIn | None = None


class CheckIn(Body):
    """Run a check now: the late filings of a day, or the institution indicators of a month."""

    check: Literal["filing", "indicators"]
    date: BusinessDay | None = None
    month: Month | None = None

    @model_validator(mode="after")
    def _what(self) -> CheckIn:
        if self.check == "filing" and self.date is None:
            raise ValueError("a filing check needs date (the report's day)")
        if self.check == "indicators" and self.month is None:
            raise ValueError("an indicators check needs month (YYYY-MM)")
        return self


class FilingIn(Body):
    """A report filed for a day and a pooling area: who filled it in (填报人) and who approved it (审核人)."""

    report: Literal["daily", "covid-ledger", "prepayments"]
    date: BusinessDay
    admdvs: str = Field(pattern=ADMDVS)
    filled_by: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    approved_by: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    note: str | None = Field(default=None, max_length=2000)
