"""The shared input types (shared.money, shared.inputs): one definition of what every service accepts."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.admdvs import check_admdvs
from shared.inputs import Body, BusinessDay, BusinessTime, Month, first_unstorable
from shared.money import Money, MoneyIn, NonNegativeMoneyIn, PositiveMoneyIn, Quantity

PLAIN = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")


class Amounts(BaseModel):
    signed: MoneyIn | None = None
    non_negative: NonNegativeMoneyIn | None = None
    positive: PositiveMoneyIn | None = None


class Answer(BaseModel):
    amount: Money


class Dated(Body):
    day: BusinessDay | None = None
    at: BusinessTime | None = None
    month: Month | None = None
    note: str | None = None
    lines: list[dict] | None = None
    cnt: Quantity | None = None


@pytest.mark.parametrize(
    "field, raw, wire",
    [
        ("signed", "12", "12.00"),
        ("signed", "12.5", "12.50"),
        ("signed", "-3.00", "-3.00"),
        ("non_negative", "0.00", "0.00"),
        ("non_negative", "1000000000.00", "1000000000.00"),
        ("positive", "0.01", "0.01"),
    ],
)
def test_plain_decimal_strings_are_money(field, raw, wire):
    assert Amounts(**{field: raw}).model_dump(mode="json")[field] == wire


@pytest.mark.parametrize(
    "raw",
    [
        "１２.００",
        "1_000.00",
        "+5.00",
        " 5.00",
        "5.00\n",
        "5.001",
        "5e2",
        "NaN",
        "-Infinity",
        "٥",
        ".5",
        "5.",
        "",
        "0x1",
    ]
    + ["1000000000.01", 5, 5.0, True, [], {"amount": "1.00"}],
)
def test_anything_else_is_refused_for_every_money_field(raw):
    for field in ("signed", "non_negative", "positive"):
        with pytest.raises(ValidationError):
            Amounts(**{field: raw})


@pytest.mark.parametrize("field, raw", [("non_negative", "-0.00"), ("non_negative", "-1.00"), ("positive", "0.00")])
def test_signs_where_they_are_not_allowed(field, raw):
    with pytest.raises(ValidationError):
        Amounts(**{field: raw})


@given(st.text(max_size=24))
def test_money_in_takes_exactly_the_plain_strings(text):
    try:
        amount = Amounts(signed=text).signed
    except ValidationError:
        assert not PLAIN.fullmatch(text) or abs(Decimal(text)) > Decimal("1000000000")
    else:
        assert PLAIN.fullmatch(text) and amount == Decimal(text)


def test_answers_still_take_what_code_builds():
    assert Answer(amount=7).model_dump(mode="json") == {"amount": "7.00"}
    assert Answer(amount=Decimal("123456789012.3")).model_dump(mode="json") == {"amount": "123456789012.30"}
    with pytest.raises(ValidationError):
        Answer(amount="1_000.00")


@pytest.mark.parametrize("raw, value", [("1.5", "1.5"), (2, "2"), (0.25, "0.25"), ("0.0001", "0.0001")])
def test_quantities(raw, value):
    assert Dated(cnt=raw).cnt == Decimal(value)


@pytest.mark.parametrize("raw", ["１", "1_0", "+1", "-1", "1e2", " 1", "0.00001", -1, 1e-05, float("nan"), 10**7])
def test_quantities_refused(raw):
    with pytest.raises(ValidationError):
        Dated(cnt=raw)


@pytest.mark.parametrize("text", ["\x00", "a\x00", "\ud800", "x\udfffy"])
def test_text_postgresql_cannot_store_is_refused_anywhere_in_a_body(text):
    for body in ({"note": text}, {"lines": [{"name": text}]}, {"lines": [{text: 1}]}, {text: 1}):
        with pytest.raises(ValidationError):
            Dated.model_validate(body)
    assert first_unstorable({"lines": [{"a": "ok"}, {"b": ["x", text]}]}) == "lines[1].b[1]"


def test_storable_text_passes():
    assert Dated(note="药品 ① \t tab é 😀").note and first_unstorable({"a": ["b", {"c": "d"}]}) is None


@pytest.mark.parametrize("day", ["1900-01-01", "2024-02-29", "2099-12-31", date(2024, 3, 1)])
def test_business_days(day):
    assert Dated(day=day).day


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "2100-01-01", "2023-02-29", "20240301"])
def test_business_days_refused(day):
    with pytest.raises(ValidationError):
        Dated(day=day)


@pytest.mark.parametrize(
    "at",
    ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "2099-12-31T20:00:00-08:00", "1899-12-31T23:00:00Z"]
    + [0, 1709254800, "1709254800", "yesterday", "2024-03-01T09:00:00+08:00x"],
)
def test_business_times_refused(at):
    with pytest.raises(ValidationError):
        Dated(at=at)


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00+08:00", "2099-12-31T23:59:59+08:00", "2024-03-01T01:00:00Z"])
def test_business_times(at):
    assert isinstance(Dated(at=at).at, datetime)


@pytest.mark.parametrize("month, ok", [("1900-01", True), ("2099-12", True), ("0000-01", False), ("2100-01", False)])
def test_months(month, ok):
    if ok:
        assert Dated(month=month).month == month
    else:
        with pytest.raises(ValidationError):
            Dated(month=month)


@pytest.mark.parametrize("value", ["62١٠٠٠", "６２１０００", "62100０"])
def test_admdvs_digits_are_ascii(value):
    with pytest.raises(ValueError):
        check_admdvs(value)
