"""Resident ID numbers (GB 11643): checksum, birth date, sex. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.eligibility.domain import RuleViolation

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = date(1900, 1, 1)
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")  # ASCII only: str.isdigit() would admit other scripts' digits

MALE = "1"  # national platform code for gend
FEMALE = "2"


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A checked ID number and what it tells: sex (gend "1"/"2") and birth date (brdy)."""

    certno: str
    gend: str
    brdy: date


def check_char(first17: str) -> str:
    """The 18th character of an ID number whose first 17 digits are given."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _reject(sub_code: str, detail: str) -> RuleViolation:
    return RuleViolation("INVALID_CERTNO", detail, field="certno", sub_code=sub_code)


def parse_certno(raw: str, *, today: date) -> ResidentId:
    """Check an ID number (lower-case x accepted) and derive gend and brdy; raise INVALID_CERTNO."""
    certno = raw.strip().upper()
    if not _SHAPE.fullmatch(certno):
        raise _reject("CERTNO_FORMAT", "certno must be 17 digits followed by a digit or X")
    if check_char(certno[:17]) != certno[17]:
        raise _reject("CERTNO_CHECKSUM", "certno check character does not match (GB 11643)")
    try:
        brdy = date(int(certno[6:10]), int(certno[10:12]), int(certno[12:14]))
    except ValueError:
        raise _reject("CERTNO_BIRTH_DATE", f"certno digits 7-14 ({certno[6:14]}) are not a real date") from None
    if brdy > today:
        raise _reject("CERTNO_BIRTH_DATE_IN_FUTURE", "certno birth date is in the future")
    if brdy < EARLIEST_BIRTH:
        raise _reject("CERTNO_BIRTH_DATE", "certno birth date is before 1900")
    gend = MALE if int(certno[16]) % 2 == 1 else FEMALE
    return ResidentId(certno=certno, gend=gend, brdy=brdy)


def make_certno(*, region: str, brdy: date, serial: int) -> str:
    """A valid ID number (for tests, demos, benchmarks); `serial` 0..999, odd = male."""
    if len(region) != 6 or not region.isdigit() or not 0 <= serial <= 999:
        raise ValueError("region is 6 digits, serial 0..999")
    first17 = f"{region}{brdy:%Y%m%d}{serial:03d}"
    return first17 + check_char(first17)
