"""Request and response bodies of the eligibility service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.admdvs import Admdvs

Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class InstitutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fixmedins_code: str = Code
    fixmedins_name: str = Field(min_length=1, max_length=200)
    kind: Literal["hospital", "pharmacy"]
    level: Literal[1, 2, 3] | None = None
    affiliation: Literal["city", "county"]
    admdvs: Admdvs

    @model_validator(mode="after")
    def _level_for_hospitals(self) -> "InstitutionIn":
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
