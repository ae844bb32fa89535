"""Rules outside the money tables: classification warnings, validators, dates, helpers, errors, trace."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from engine_support import CATALOGUE, INSTITUTIONS, POLICY, build_claim, build_eligibility, settle

from services.settlement.engine import (
    Accumulators,
    AidIdentity,
    CatalogueEntry,
    ClaimError,
    FeeLine,
    PendingVisit,
    accumulator_year,
    adjudicate,
    covid_status,
    max_days_supply_for,
    monthly_account_credit,
    prescription_is_valid,
    split_amount,
    validate_claim,
    validate_line,
    visits_to_merge,
)
from services.settlement.engine.medical_aid import choose_aid_category
from services.settlement.engine.policy import AidCategory

EMP = build_eligibility({"insutype": "310", "psn_type": "in_service", "insuplc_admdvs": "621000"})


def _op(*lines: tuple, **extra) -> object:
    return build_claim(
        {"inst": "CITY_L1", "med_type": "11", "date": "2024-03-01", "lines": list(lines), **extra},
        institutions=INSTITUTIONS,
    )


def test_catalogue_class_wins_with_warning() -> None:
    catalogue = CATALOGUE.with_entries([CatalogueEntry("X-B", "x", "B", preselfpay_prop=Decimal("0.20"))])
    claim = _op(("A", "100.00", "1", "X-B"))
    result = adjudicate(claim=claim, eligibility=EMP, accumulators=Accumulators(), policy=POLICY, catalogue=catalogue)
    assert result.warning_codes == ("CLASS_OVERRIDDEN_BY_CATALOGUE",)
    assert result.lines[0].item_class == "B"
    assert result.preselfpay_amt == Decimal("20.00")  # the catalogue's 20 %, not the default 10 %
    assert result.warnings[0].feedetl_sn == "L1"


def test_unknown_code_without_class_is_c() -> None:
    line = FeeLine(feedetl_sn="1", med_list_codg="NEW", pric=Decimal("10.00"), cnt=Decimal("2"))
    claim = replace(_op(("A", "1.00")), lines=(line,))
    result = settle(claim=claim, eligibility=EMP)
    assert result.fulamt_ownpay_amt == Decimal("20.00")
    assert result.warning_codes == ("CLASS_NOT_DECLARED",)


def test_declared_preselfpay_for_unknown_code() -> None:
    line = FeeLine(
        feedetl_sn="1",
        med_list_codg="NEW",
        item_class="B",
        pric=Decimal("100.00"),
        cnt=Decimal("1"),
        preselfpay_prop=Decimal("0.05"),
    )
    result = settle(claim=replace(_op(("A", "1.00")), lines=(line,)), eligibility=EMP)
    assert result.preselfpay_amt == Decimal("5.00")


def test_covid_status() -> None:
    rule = POLICY.covid
    assert covid_status(("J18.9", "U07.2"), rule) == "suspected"
    assert covid_status(("U07.2", "U07.1"), rule) == "confirmed"
    assert covid_status(("J18.9",), rule) is None


def test_validate_line_codes() -> None:
    antigen = FeeLine(feedetl_sn="1", med_list_codg="COVID-AGT", pric=Decimal("8.01"), cnt=Decimal("1"))
    assert validate_line(antigen, catalogue=CATALOGUE, max_days_supply=30) == ("PRICE_ABOVE_CAP",)
    at_cap = replace(antigen, pric=Decimal("8.00"), det_item_fee_sumamt=Decimal("8.00"))
    assert validate_line(at_cap, catalogue=CATALOGUE, max_days_supply=30) == ()
    long = FeeLine(
        feedetl_sn="2",
        med_list_codg="D",
        pric=Decimal("3.00"),
        cnt=Decimal("3"),
        days_supply=31,
        det_item_fee_sumamt=Decimal("9.01"),
    )
    assert validate_line(long, catalogue=CATALOGUE, max_days_supply=30) == (
        "SUPPLY_DAYS_ABOVE_LIMIT",
        "LINE_TOTAL_MISMATCH",
    )


def test_long_prescription_limits() -> None:
    claim = _op(("A", "10.00"))
    chronic = replace(
        EMP,
        chronic_qualifications=(
            build_eligibility(
                {"insutype": "390", "chronic": [{"disease": "diabetes", "start_date": "2023-01-01"}]}
            ).chronic_qualifications
        ),
    )
    assert max_days_supply_for(claim=claim, eligibility=EMP, policy=POLICY) == 30
    assert max_days_supply_for(claim=claim, eligibility=chronic, policy=POLICY) == 84
    lines = (FeeLine("1", "D", Decimal("1"), Decimal("84"), item_class="A", days_supply=84),)
    long_claim = replace(claim, lines=lines)
    assert validate_claim(claim=long_claim, eligibility=chronic, policy=POLICY, catalogue=CATALOGUE) == ()
    codes = [
        v.code
        for v in validate_claim(claim=replace(claim, lines=lines), eligibility=EMP, policy=POLICY, catalogue=CATALOGUE)
    ]
    assert codes == ["SUPPLY_DAYS_ABOVE_LIMIT"]


def test_validate_claim_duplicates_and_prescriber() -> None:
    line = FeeLine(feedetl_sn="1", med_list_codg="D", item_class="A", pric=Decimal("1"), cnt=Decimal("1"))
    claim = replace(_op(("A", "1.00")), lines=(line, line))
    assert [v.code for v in validate_claim(claim=claim, eligibility=EMP, policy=POLICY, catalogue=CATALOGUE)] == [
        "DUPLICATE_LINE"
    ]
    pharmacy = replace(claim, med_type="41", institution=INSTITUTIONS["PHARMACY"], lines=(line,))
    assert [v.code for v in validate_claim(claim=pharmacy, eligibility=EMP, policy=POLICY, catalogue=CATALOGUE)] == [
        "PRESCRIBER_REQUIRED"
    ]
    with pytest.raises(ClaimError) as info:
        settle(claim=pharmacy, eligibility=EMP)
    assert info.value.code == "PRESCRIBER_REQUIRED"


def test_adjudication_reports_violations() -> None:
    claim = replace(
        _op(("A", "1.00")),
        lines=(FeeLine(feedetl_sn="9", med_list_codg="COVID-AGT", pric=Decimal("9.00"), cnt=Decimal("1")),),
    )
    result = settle(claim=claim, eligibility=EMP)
    assert [(v.code, v.feedetl_sn) for v in result.violations] == [("PRICE_ABOVE_CAP", "9")]


def test_hospital_without_level_is_a_claim_error() -> None:
    claim = replace(_op(("A", "1.00")), institution=INSTITUTIONS["PHARMACY"])
    with pytest.raises(ClaimError) as info:
        settle(claim=claim, eligibility=EMP)
    assert info.value.code == "INSTITUTION_LEVEL_REQUIRED"


def test_policy_not_in_force() -> None:
    claim = build_claim(
        {"inst": "CITY_L1", "med_type": "11", "date": "2021-06-01", "lines": [("A", "1.00")]}, institutions=INSTITUTIONS
    )
    with pytest.raises(ClaimError) as info:
        adjudicate(claim=claim, eligibility=EMP, accumulators=Accumulators(), policy=POLICY, catalogue=CATALOGUE)
    assert info.value.code == "POLICY_NOT_IN_FORCE"


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        FeeLine(feedetl_sn="1", med_list_codg="D", pric=1.5, cnt=Decimal("1"))  # type: ignore[arg-type]


def test_accumulator_year_uses_discharge_for_inpatient() -> None:
    stay = build_claim(
        {"inst": "CITY_L3", "med_type": "21", "date": "2023-12-20", "end_date": "2024-01-05", "lines": [("A", "1.00")]},
        institutions=INSTITUTIONS,
    )
    assert accumulator_year(stay) == 2024
    visit = build_claim(
        {"inst": "CITY_L3", "med_type": "11", "date": "2023-12-31", "lines": [("A", "1.00")]}, institutions=INSTITUTIONS
    )
    assert accumulator_year(visit) == 2023


def test_visits_to_merge_window() -> None:
    visits = [
        PendingVisit("a", "H1", "11", date(2024, 3, 7)),  # admission − 3: in
        PendingVisit("b", "H1", "11", date(2024, 3, 6)),  # admission − 4: out
        PendingVisit("c", "H1", "11", date(2024, 3, 10)),  # admission day: in
        PendingVisit("d", "H2", "11", date(2024, 3, 9)),  # other institution
        PendingVisit("e", "H1", "11", date(2024, 3, 9), settled=True),  # already settled
        PendingVisit("f", "H1", "14", date(2024, 3, 9)),  # chronic visit stays on its own
    ]
    merged = visits_to_merge(
        admission_date=date(2024, 3, 10), fixmedins_code="H1", outpatient_visits=visits, policy=POLICY
    )
    assert [v.mdtrt_id for v in merged] == ["a", "c"]


def test_prescription_validity() -> None:
    issued = date(2024, 3, 1)
    assert prescription_is_valid(issued_on=issued, used_on=date(2024, 3, 3), policy=POLICY)
    assert not prescription_is_valid(issued_on=issued, used_on=date(2024, 3, 4), policy=POLICY)
    assert not prescription_is_valid(issued_on=issued, used_on=date(2024, 2, 29), policy=POLICY)


def test_aid_tie_takes_lower_deductible() -> None:
    rule = replace(
        POLICY.medical_aid,
        categories={
            "x": AidCategory("x", Decimal("3000.00"), Decimal("0.70"), 0),
            "y": AidCategory("y", Decimal("1000.00"), Decimal("0.70"), 1),
        },
    )
    identities = (AidIdentity("x", date(2023, 1, 1)), AidIdentity("y", date(2023, 1, 1)))
    category, unknown = choose_aid_category(identities=identities, rule=rule)
    assert category is not None and category.name == "y" and unknown == ()


def test_unknown_aid_category_is_ignored_with_warning() -> None:
    person = build_eligibility({"insutype": "390", "aid": [{"category": "martian", "start_date": "2023-01-01"}]})
    result = settle(claim=_op(("A", "500.00")), eligibility=person)
    assert result.maf_pay == 0 and result.warning_codes == ("AID_CATEGORY_UNKNOWN",)


def test_account_never_pays_excluded_items() -> None:
    catalogue = CATALOGUE.with_entries([CatalogueEntry("GYM", "fitness", "C", account_excluded=True)])
    claim = _op(("A", "300.00"), ("C", "100.00", "1", "GYM"), acct_used_flag=True, account_balance="1000.00")
    result = adjudicate(claim=claim, eligibility=EMP, accumulators=Accumulators(), policy=POLICY, catalogue=catalogue)
    assert (result.psn_pay, result.acct_pay, result.psn_cash_pay) == (
        Decimal("260.00"),
        Decimal("160.00"),
        Decimal("100.00"),
    )


def test_split_amount_is_exact() -> None:
    shares = (("central", Decimal("0.60")), ("provincial", Decimal("0.40")))
    assert split_amount(Decimal("0.01"), shares) == (("central", Decimal("0.01")), ("provincial", Decimal("0.00")))
    assert split_amount(Decimal("100.05"), shares) == (("central", Decimal("60.03")), ("provincial", Decimal("40.02")))


def test_monthly_account_credit() -> None:
    base = Decimal("5123.45")  # 2 % = 102.469 → 102.47
    assert monthly_account_credit(policy=POLICY, psn_type="in_service", contribution_base=base) == Decimal("102.47")
    assert monthly_account_credit(policy=POLICY, psn_type="retired") == Decimal("60.00")


def test_breakdown_strings_and_trace() -> None:
    result = settle(claim=_op(("A", "350.00"), ("B", "60.00", "3")), eligibility=EMP)
    breakdown = result.to_breakdown()
    assert breakdown["hifp_pay"] == "288.40" and breakdown["pool_prop"] == "0.70"
    assert all(
        isinstance(breakdown[k], str) and breakdown[k].count(".") == 1 and len(breakdown[k].split(".")[1]) == 2
        for k in ("medfee_sumamt", "psn_cash_pay", "balc")
    )
    steps = {step["step"]: step for step in breakdown["trace"]}
    assert steps["basic_fund.deductible"]["detail"]["parameter"] == "schemes.310.outpatient.deductible.1"
    assert steps["basic_fund.hifp_pay"]["amount"] == "288.40"  # (350 + 162 - 100) * 70 %
    assert steps["cash.psn_cash_pay"]["amount"] == breakdown["psn_cash_pay"]


def test_accumulators_mapping() -> None:
    acc = Accumulators({"a": Decimal("1.00"), "z": Decimal("0")})
    assert acc["missing"] == 0 and "z" not in acc and len(acc) == 1
    delta = Accumulators({"a": Decimal("2.00"), "b": Decimal("3.00")})
    after = acc.apply(delta)
    assert after == {"a": Decimal("3.00"), "b": Decimal("3.00")}
    assert after.apply(-delta) == acc
    with pytest.raises(ValueError, match="negative"):
        acc.apply(-delta)
    with pytest.raises(AttributeError):
        acc._values = {}  # type: ignore[misc]


def test_adjudicate_reports_what_validate_claim_reports() -> None:
    lines = (
        FeeLine("1", "COVID-AGT", Decimal("9.00"), Decimal("1")),
        FeeLine("2", "D", Decimal("3.00"), Decimal("3"), item_class="A", det_item_fee_sumamt=Decimal("9.01")),
        FeeLine("2", "D", Decimal("1.00"), Decimal("40"), item_class="A", days_supply=40),
    )
    claim = replace(_op(("A", "1.00")), lines=lines)
    expected = validate_claim(claim=claim, eligibility=EMP, policy=POLICY, catalogue=CATALOGUE)
    assert [(v.code, v.feedetl_sn) for v in expected] == [
        ("PRICE_ABOVE_CAP", "1"),
        ("LINE_TOTAL_MISMATCH", "2"),
        ("DUPLICATE_LINE", "2"),
        ("SUPPLY_DAYS_ABOVE_LIMIT", "2"),
    ]
    assert settle(claim=claim, eligibility=EMP).violations == expected
