"""Pure eligibility rules: month ends, windows, person types, deferrals, arrears, case status."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.eligibility import domain
from services.eligibility.domain import RuleViolation, Window


def _violation(call, *args, **kwargs) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "day, end",
    [
        (date(2024, 1, 15), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2023, 2, 28), date(2023, 2, 28)),
        (date(2100, 2, 10), date(2100, 2, 28)),
        (date(2000, 2, 10), date(2000, 2, 29)),
        (date(2024, 4, 30), date(2024, 4, 30)),
        (date(2024, 12, 31), date(2024, 12, 31)),
        (date(2199, 12, 1), date(2199, 12, 31)),
    ],
)
def test_end_of_month(day, end):
    assert domain.end_of_month(day) == end


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
def test_end_of_month_is_the_day_before_the_next_month(day):
    end = domain.end_of_month(day)
    assert end.month == day.month and (end + timedelta(days=1)).day == 1 and end >= day


@pytest.mark.parametrize(
    "lost_on, last_in, first_out",
    [
        (date(2024, 3, 10), date(2024, 3, 31), date(2024, 4, 1)),
        (date(2024, 2, 1), date(2024, 2, 29), date(2024, 3, 1)),  # leap February
        (date(2023, 2, 28), date(2023, 2, 28), date(2023, 3, 1)),
        (date(2024, 12, 31), date(2024, 12, 31), date(2025, 1, 1)),  # year end
    ],
)
def test_aid_window_lasts_to_the_end_of_the_loss_month(lost_on, last_in, first_out):
    window = domain.aid_window(date(2020, 1, 1), lost_on)
    assert window.covers(last_in) and not window.covers(first_out)
    assert window.covers(date(2020, 1, 1)) and not window.covers(date(2019, 12, 31))


def test_open_aid_window_and_loss_before_start():
    assert domain.aid_window(date(2024, 1, 1), None).covers(date(2199, 1, 1))
    assert domain.aid_window(date(2024, 1, 5), date(2024, 1, 5)).end == date(2024, 1, 31)
    assert _violation(domain.aid_window, date(2024, 1, 5), date(2024, 1, 4)).code == "END_BEFORE_START"


@pytest.mark.parametrize(
    "a, b, overlap",
    [
        (Window(date(2024, 1, 1), date(2024, 1, 31)), Window(date(2024, 2, 1), None), False),
        (Window(date(2024, 1, 1), date(2024, 1, 31)), Window(date(2024, 1, 31), None), True),
        (Window(date(2024, 1, 1), None), Window(date(2030, 1, 1), date(2030, 1, 2)), True),
        (Window(date(2024, 3, 1), date(2024, 3, 5)), Window(date(2024, 1, 1), date(2024, 2, 29)), False),
    ],
)
def test_window_overlap_is_symmetric(a, b, overlap):
    assert a.overlaps(b) is overlap and b.overlaps(a) is overlap


def test_refuse_overlap():
    existing = [domain.aid_window(date(2024, 1, 1), date(2024, 3, 10))]
    domain.refuse_overlap(domain.aid_window(date(2024, 4, 1), None), existing, "dibao")
    assert (
        _violation(domain.refuse_overlap, domain.aid_window(date(2024, 3, 31), None), existing, "dibao").code
        == "OVERLAPPING_WINDOW"
    )


@pytest.mark.parametrize(
    "insutype, given, recorded",
    [
        ("310", None, "in_service"),
        ("310", "retired", "retired"),
        ("310", "in_service", "in_service"),
        ("390", None, None),
    ],
)
def test_scheme_and_person_type(insutype, given, recorded):
    assert domain.check_scheme(insutype, given) == recorded


@pytest.mark.parametrize(
    "insutype, given, code",
    [
        ("320", None, "UNKNOWN_INSUTYPE"),
        ("390", "retired", "PSN_TYPE_NOT_APPLICABLE"),
        ("310", "student", "INVALID_PSN_TYPE"),
    ],
)
def test_scheme_refusals(insutype, given, code):
    assert _violation(domain.check_scheme, insutype, given).code == code


def test_retirement_takes_effect_next_month():
    latest = ("in_service", domain.SINCE_EVER)
    for retired_on, effective in (
        (date(2024, 3, 15), date(2024, 4, 1)),
        (date(2024, 12, 1), date(2025, 1, 1)),
        (date(2024, 3, 31), date(2024, 4, 1)),
        (date(2024, 3, 1), date(2024, 4, 1)),
    ):
        assert domain.retirement_effective_from(insutype="310", retired_on=retired_on, latest=latest) == effective
    history = [("in_service", domain.SINCE_EVER), ("retired", date(2024, 4, 1))]
    assert domain.psn_type_on(history, date(2024, 3, 31)) == "in_service"
    assert domain.psn_type_on(history, date(2024, 4, 1)) == "retired"
    assert domain.psn_type_on([], date(2024, 4, 1)) is None


def test_retirement_refusals():
    assert (
        _violation(domain.retirement_effective_from, insutype="390", retired_on=date(2024, 1, 1), latest=None).code
        == "NOT_AN_EMPLOYEE"
    )
    again = _violation(
        domain.retirement_effective_from,
        insutype="310",
        retired_on=date(2024, 6, 1),
        latest=("retired", date(2024, 4, 1)),
    )
    assert (again.code, again.status) == ("ALREADY_RETIRED", 409)


@pytest.mark.parametrize(
    "disease, given, recorded",
    [
        ("hypertension", 1, 1),
        ("hypertension", 2, 2),
        ("hypertension", None, None),
        ("diabetes", None, 2),
        ("diabetes", 2, 2),
        ("M03900", None, None),
        ("C34.9", None, None),
    ],
)
def test_qualification_classes(disease, given, recorded):
    assert domain.check_qualification(disease, given) == recorded


@pytest.mark.parametrize(
    "disease, given, code",
    [
        ("diabetes", 1, "INVALID_TWO_DISEASE_CLASS"),
        ("hypertension", 3, "INVALID_TWO_DISEASE_CLASS"),
        ("M03900", 1, "TWO_DISEASE_CLASS_NOT_APPLICABLE"),
        ("高血压", None, "INVALID_DISEASE"),
        ("a b", None, "INVALID_DISEASE"),
    ],
)
def test_qualification_refusals(disease, given, code):
    assert _violation(domain.check_qualification, disease, given).code == code


def test_relations_invert():
    assert [domain.inverse_relation(r) for r in ("spouse", "parent", "child")] == ["spouse", "child", "parent"]
    assert _violation(domain.inverse_relation, "cousin").code == "UNKNOWN_RELATION"


def test_aid_categories():
    for category in ("tekun", "orphan", "tekun_worker", "dibao", "dibian", "fanpin"):
        domain.check_aid_category(category)
    assert _violation(domain.check_aid_category, "wubao").code == "UNKNOWN_AID_CATEGORY"


M = domain.parse_month


@pytest.mark.parametrize(
    "months, code",
    [
        (7, "DEFERRAL_TOO_LONG"),
        (10**12, "DEFERRAL_TOO_LONG"),
        (0, "INVALID_DEFERRAL_MONTHS"),
        (-3, "INVALID_DEFERRAL_MONTHS"),
    ],
)
def test_deferral_length(months, code):
    assert _violation(domain.deferral_end, start_month=M("2024-01"), months=months, existing=()).code == code


def test_deferral_ends_and_chains():
    assert domain.deferral_end(start_month=M("2024-09"), months=6, existing=()) == M("2025-02")
    assert domain.deferral_end(start_month=M("2024-01"), months=1, existing=()) == M("2024-01")
    existing = [(M("2024-01"), M("2024-03"))]
    assert domain.deferral_end(start_month=M("2024-04"), months=3, existing=existing) == M("2024-06")  # run of 6
    assert (
        _violation(domain.deferral_end, start_month=M("2024-04"), months=4, existing=existing).code
        == "DEFERRAL_TOO_LONG"
    )  # run of 7 with the adjacent one
    assert (
        _violation(domain.deferral_end, start_month=M("2024-03"), months=2, existing=existing).code
        == "OVERLAPPING_WINDOW"
    )
    assert domain.deferral_end(start_month=M("2024-05"), months=6, existing=existing) == M("2024-10")  # a gap


@pytest.mark.parametrize(
    "on, months",
    [
        (date(2023, 12, 31), 0),
        (date(2024, 1, 1), 1),
        (date(2024, 3, 31), 3),
        (date(2024, 4, 1), 4),
        (date(2025, 1, 10), 13),
    ],
)
def test_months_in_arrears(on, months):
    assert domain.months_in_arrears(on=on, since_month=M("2024-01"), settled_on=None, deferrals=()) == months


def test_arrears_suspend_beyond_three_months_unless_deferred_or_settled():
    arrears = [(M("2024-01"), None)]
    assert domain.benefit_status(on=date(2024, 3, 31), arrears=arrears, deferrals=()) == (True, None, 3)
    assert domain.benefit_status(on=date(2024, 4, 1), arrears=arrears, deferrals=()) == (False, "EMPLOYER_ARREARS", 4)
    deferred = [(M("2024-01"), M("2024-06"))]
    assert domain.benefit_status(on=date(2024, 6, 30), arrears=arrears, deferrals=deferred) == (True, None, 0)
    assert domain.benefit_status(on=date(2024, 9, 30), arrears=arrears, deferrals=deferred) == (True, None, 3)
    assert domain.benefit_status(on=date(2024, 10, 1), arrears=arrears, deferrals=deferred)[0] is False
    settled = [(M("2024-01"), date(2024, 5, 20))]
    assert domain.benefit_status(on=date(2024, 5, 19), arrears=settled, deferrals=())[0] is False
    assert domain.benefit_status(on=date(2024, 5, 20), arrears=settled, deferrals=()) == (True, None, 0)


def test_arrears_episodes():
    domain.check_arrears(since_month=M("2024-06"), existing=[(M("2024-01"), date(2024, 5, 20))])
    open_one = _violation(domain.check_arrears, since_month=M("2024-06"), existing=[(M("2024-01"), None)])
    assert (open_one.code, open_one.status) == ("ARREARS_OPEN", 409)
    assert (
        _violation(domain.check_arrears, since_month=M("2024-05"), existing=[(M("2024-01"), date(2024, 5, 20))]).code
        == "OVERLAPPING_WINDOW"
    )


@pytest.mark.parametrize(
    "current, new, code",
    [
        ("suspected", "confirmed", None),
        ("suspected", "excluded", None),
        ("confirmed", "confirmed", None),
        ("confirmed", "excluded", "CASE_ALREADY_CONFIRMED"),
        ("confirmed", "suspected", "CASE_ALREADY_CONFIRMED"),
        ("excluded", "confirmed", "CASE_ALREADY_EXCLUDED"),
        ("suspected", "cured", "UNKNOWN_CASE_STATUS"),
    ],
)
def test_case_transitions(current, new, code):
    if code is None:
        domain.check_case_transition(current, new)
    else:
        assert _violation(domain.check_case_transition, current, new).code == code
