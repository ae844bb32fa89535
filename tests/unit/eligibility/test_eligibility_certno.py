"""GB 11643 resident ID numbers: checksum, birth date, sex."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.eligibility.certno import check_char, make_certno, parse_certno
from services.eligibility.domain import RuleViolation

TODAY = date(2024, 6, 15)


@pytest.mark.parametrize(
    "certno, gend, brdy",
    [
        ("11010519491231002X", "2", date(1949, 12, 31)),  # the standard's own example (check X)
        ("11010519491231002x", "2", date(1949, 12, 31)),  # lower-case x accepted, stored upper-case
        ("110101200001010010", "1", date(2000, 1, 1)),
        ("620102200002290022", "2", date(2000, 2, 29)),  # leap day
    ],
)
def test_valid_numbers_give_sex_and_birth_date(certno, gend, brdy):
    parsed = parse_certno(certno, today=TODAY)
    assert (parsed.gend, parsed.brdy, parsed.certno) == (gend, brdy, certno.upper())


@pytest.mark.parametrize(
    "first17, expected",
    [
        ("11010519491231002", "X"),
        ("11010120000101001", "0"),
        ("62010220000229002", "2"),  # worked by hand,
    ],
)
def test_check_char_table(first17, expected):
    assert check_char(first17) == expected


def _code(certno: str) -> str:
    with pytest.raises(RuleViolation) as caught:
        parse_certno(certno, today=TODAY)
    assert caught.value.code == "INVALID_CERTNO" and caught.value.status == 422
    return caught.value.sub_code


@pytest.mark.parametrize(
    "certno, sub_code",
    [
        ("110105194912310021", "CERTNO_CHECKSUM"),  # X expected
        ("110101200001010016", "CERTNO_CHECKSUM"),  # 0 expected
        (make_certno(region="110101", brdy=date(2000, 1, 1), serial=1)[:17] + "X", "CERTNO_CHECKSUM"),
        ("11010519491231002", "CERTNO_FORMAT"),  # 17 characters
        ("11010519491231002XX", "CERTNO_FORMAT"),
        ("1101051949123100AX", "CERTNO_FORMAT"),
        ("X10105194912310021", "CERTNO_FORMAT"),
        ("１１０１０５１９４９１２３１００２Ｘ", "CERTNO_FORMAT"),  # full-width digits
        ("", "CERTNO_FORMAT"),
    ],
)
def test_malformed_numbers_are_refused(certno, sub_code):
    assert _code(certno) == sub_code


@pytest.mark.parametrize("birth", ["19990230", "19990229", "20010431", "19991301", "19990000", "18991231"])
def test_impossible_birth_dates_are_refused(birth):
    first17 = f"110101{birth}001"
    assert _code(first17 + check_char(first17)) == "CERTNO_BIRTH_DATE"


def test_birth_date_in_the_future_is_refused_and_today_is_fine():
    tomorrow = make_certno(region="110101", brdy=date(2024, 6, 16), serial=1)
    assert _code(tomorrow) == "CERTNO_BIRTH_DATE_IN_FUTURE"
    assert parse_certno(make_certno(region="110101", brdy=TODAY, serial=1), today=TODAY).brdy == TODAY


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY), st.integers(0, 999), st.sampled_from(["110101", "621002"])
)
def test_every_made_number_parses_back(brdy, serial, region):
    parsed = parse_certno(make_certno(region=region, brdy=brdy, serial=serial), today=TODAY)
    assert parsed.brdy == brdy
    assert parsed.gend == ("1" if serial % 2 else "2")


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY), st.integers(0, 999), st.integers(0, 16), st.integers(1, 9)
)
def test_any_single_digit_change_breaks_the_checksum_or_the_date(brdy, serial, position, delta):
    good = make_certno(region="110101", brdy=brdy, serial=serial)
    digit = (int(good[position]) + delta) % 10
    bad = good[:position] + str(digit) + good[position + 1 :]
    with pytest.raises(RuleViolation) as caught:
        parse_certno(bad, today=TODAY)
    assert caught.value.sub_code in ("CERTNO_CHECKSUM", "CERTNO_BIRTH_DATE", "CERTNO_BIRTH_DATE_IN_FUTURE")
