"""Hand-worked cases covering every table row of DOMAIN §2–§8; the arithmetic is in each `note`.

Institutions (engine_support.INSTITUTIONS): CITY_L1/L2/L3 city-managed in 621000 (CITY_L1 in 621002),
COUNTY_L1 (621027), COUNTY_L2/L3 (621022) county-managed, PHARMACY (621022), OTHER_CITY_L3 (620100,
same province), OTHER_CITY_COUNTY_L2 (620102), OTHER_PROVINCE_L3 (610100).
Persons are insured in 621000 unless they say otherwise. Accumulators `before` default to 0.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from engine_support import BOOK, CATALOGUE, INSTITUTIONS, accumulators, build_claim, build_eligibility

from services.settlement.engine import MONEY_FIELDS, Accumulators, adjudicate

EMP = {"insutype": "310", "psn_type": "in_service"}
RET = {"insutype": "310", "psn_type": "retired"}
RES = {"insutype": "390"}


def person(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**base, "insuplc_admdvs": "621000", **extra}


def aid(category: str, start: str = "2023-01-01", lost: str | None = None) -> dict[str, Any]:
    return {"category": category, "start_date": start, "lost_on": lost}


def qual(disease: str, start: str = "2023-01-01", end: str | None = None) -> dict[str, Any]:
    return {"disease": disease, "start_date": start, "end_date": end}


def op(inst: str, *lines: tuple, date: str = "2024-03-01", **extra: Any) -> dict[str, Any]:
    """A general outpatient visit (11)."""
    return {"inst": inst, "med_type": "11", "date": date, "lines": list(lines), **extra}


def ip(inst: str, *lines: tuple, date: str = "2024-05-02", end: str = "2024-05-09", **extra: Any) -> dict[str, Any]:
    """An inpatient stay (21)."""
    return {"inst": inst, "med_type": "21", "date": date, "end_date": end, "lines": list(lines), **extra}


def chronic(inst: str, disease: str, *lines: tuple, date: str = "2024-03-01", **extra: Any) -> dict[str, Any]:
    return {"inst": inst, "med_type": "14", "chronic_disease": disease, "date": date, "lines": list(lines), **extra}


def rx(prescriber: str, *lines: tuple, date: str = "2024-03-01", **extra: Any) -> dict[str, Any]:
    """A pharmacy purchase (41) on an external prescription."""
    return {"inst": "PHARMACY", "prescriber": prescriber, "med_type": "41", "date": date, "lines": list(lines), **extra}


A10K = ("A", "10000.00")

CASES: list[dict[str, Any]] = [
    # ------------------------------------------------------------ §3 outpatient: scheme × person × level
    dict(
        name="op_employee_in_service_l1",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "500.00")),
        expect=dict(
            act_pay_dedc="100.00",
            pool_prop="0.70",
            hifp_pay="280.00",
            psn_cash_pay="220.00",
            delta={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "280.00"},
        ),
        note="deductible L1 100; (500-100)*70% = 280; cash 500-280 = 220",
    ),
    dict(
        name="op_employee_in_service_l2",
        person=person(EMP),
        visit=op("CITY_L2", ("A", "500.00")),
        expect=dict(act_pay_dedc="200.00", hifp_pay="180.00", psn_cash_pay="320.00"),
        note="deductible L2 200; (500-200)*60% = 180",
    ),
    dict(
        name="op_employee_in_service_l3",
        person=person(EMP),
        visit=op("CITY_L3", ("A", "500.00")),
        expect=dict(act_pay_dedc="300.00", hifp_pay="100.00", psn_cash_pay="400.00"),
        note="deductible L3 300; (500-300)*50% = 100",
    ),
    dict(
        name="op_employee_retired_l1",
        person=person(RET),
        visit=op("COUNTY_L1", ("A", "500.00")),
        expect=dict(act_pay_dedc="100.00", pool_prop="0.75", hifp_pay="300.00", psn_cash_pay="200.00"),
        note="retired L1: (500-100)*75% = 300",
    ),
    dict(
        name="op_employee_retired_l2",
        person=person(RET),
        visit=op("COUNTY_L2", ("A", "500.00")),
        expect=dict(act_pay_dedc="200.00", hifp_pay="195.00", psn_cash_pay="305.00"),
        note="retired L2: (500-200)*65% = 195",
    ),
    dict(
        name="op_employee_retired_l3",
        person=person(RET),
        visit=op("COUNTY_L3", ("A", "500.00")),
        expect=dict(act_pay_dedc="300.00", hifp_pay="110.00", psn_cash_pay="390.00"),
        note="retired L3: (500-300)*55% = 110",
    ),
    dict(
        name="op_resident_l1",
        person=person(RES),
        visit=op("CITY_L1", ("A", "500.00")),
        expect=dict(act_pay_dedc="50.00", pool_prop="0.50", hifp_pay="225.00", psn_cash_pay="275.00"),
        note="resident: deductible 50 any level; (500-50)*50% = 225",
    ),
    dict(
        name="op_resident_l2_deductible_already_paid",
        person=person(RES),
        visit=op("CITY_L2", ("A", "500.00")),
        before={"outpatient.deductible_paid": "50.00"},
        expect=dict(act_pay_dedc="0.00", hifp_pay="250.00", psn_cash_pay="250.00"),
        note="resident: 50 already paid this year → owes 0; 500*50% = 250",
    ),
    dict(
        name="op_resident_l3_county_insured",
        person=person(RES, insuplc_admdvs="621022"),
        visit=op("COUNTY_L3", ("A", "500.00")),
        expect=dict(act_pay_dedc="50.00", hifp_pay="225.00", psn_cash_pay="275.00"),
        note="resident L3: (500-50)*50% = 225",
    ),
    dict(
        name="op_deductible_topup_to_lower_level",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "200.00")),
        before={"outpatient.deductible_paid": "300.00"},
        expect=dict(act_pay_dedc="0.00", hifp_pay="140.00", psn_cash_pay="60.00"),
        note="累计补差: L1 deductible 100 - 300 paid < 0 → 0; 200*70% = 140",
    ),
    dict(
        name="op_b_and_c_rounding_per_line",
        person=person(EMP),
        visit=op("CITY_L1", ("B", "33.33", "3"), ("B", "0.05"), ("C", "20.00")),
        before={"outpatient.deductible_paid": "100.00"},
        expect=dict(
            medfee_sumamt="120.04",
            fulamt_ownpay_amt="20.00",
            preselfpay_amt="10.01",
            inscp_scp_amt="90.03",
            hifp_pay="63.02",
            psn_cash_pay="57.02",
        ),
        note="B 99.99*10% = 9.999 → 10.00; B 0.05*10% = 0.005 → 0.01 (half-up per line); "
        "in-scope 89.99+0.04 = 90.03; 90.03*70% = 63.021 → 63.02; cash 120.04-63.02",
    ),
    dict(
        name="op_cap_reached_exactly",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "1650.00"},
        expect=dict(
            act_pay_dedc="0.00", hifp_pay="350.00", psn_cash_pay="150.00", delta={"outpatient.fund_paid": "350.00"}
        ),
        note="500*70% = 350; 1650+350 = 2000 = cap exactly",
    ),
    dict(
        name="op_cap_crossed",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "1800.00"},
        expect=dict(hifp_pay="200.00", psn_cash_pay="300.00"),
        note="350 computed, cap 2000-1800 = 200 left",
    ),
    dict(
        name="op_cap_already_full",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "2000.00"},
        expect=dict(hifp_pay="0.00", psn_cash_pay="500.00", delta={}),
        note="cap used up: fund 0, nothing accumulates",
    ),
    dict(
        name="op_resident_cap_crossed",
        person=person(RES),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"outpatient.deductible_paid": "50.00", "outpatient.fund_paid": "300.00"},
        expect=dict(hifp_pay="100.00", psn_cash_pay="400.00"),
        note="500*50% = 250, resident cap 400-300 = 100",
    ),
    # ------------------------------------------------------------ §3/§8 pharmacy 41 at the prescriber's level
    dict(
        name="pharmacy_priced_at_prescriber_level_shares_cap",
        person=person(EMP),
        visit=rx("CITY_L2", ("A", "500.00")),
        before={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "1900.00"},
        expect=dict(
            act_pay_dedc="100.00",
            pool_prop="0.60",
            hifp_pay="100.00",
            psn_cash_pay="400.00",
            med_type="41",
            pool="outpatient",
            delta={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "100.00"},
        ),
        note="prescriber L2: deductible 200-100 = 100; (500-100)*60% = 240, cap 2000-1900 = 100 left",
    ),
    dict(
        name="pharmacy_shares_deductible_with_hospital_visit",
        person=person(EMP),
        steps=[
            dict(
                visit=op("CITY_L1", ("A", "60.00")),
                expect=dict(act_pay_dedc="60.00", hifp_pay="0.00", psn_cash_pay="60.00"),
            ),
            dict(
                visit=rx("CITY_L3", ("A", "500.00"), date="2024-03-05"),
                expect=dict(act_pay_dedc="240.00", hifp_pay="130.00", psn_cash_pay="370.00"),
            ),
        ],
        note="60 toward the deductible at L1; pharmacy on an L3 prescription owes 300-60 = 240; (500-240)*50% = 130",
    ),
    # ------------------------------------------------------------ §3 outpatient during an admission
    dict(
        name="op_during_admission",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), date="2024-03-05", admissions=[("2024-03-01", "2024-03-10")]),
        expect=dict(
            act_pay_dedc="0.00",
            pool_prop="0.00",
            hifp_pay="0.00",
            psn_cash_pay="300.00",
            warnings=["OUTPATIENT_DURING_ADMISSION"],
            delta={},
        ),
        note="03-01 ≤ 03-05 ≤ 03-10: no outpatient pooling, nothing counts toward the deductible",
    ),
    dict(
        name="op_on_discharge_day",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), date="2024-03-10", admissions=[("2024-03-01", "2024-03-10")]),
        expect=dict(hifp_pay="0.00", psn_cash_pay="300.00", warnings=["OUTPATIENT_DURING_ADMISSION"]),
        note="the discharge day is inside the admission",
    ),
    dict(
        name="op_during_open_admission",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), date="2024-03-20", admissions=[("2024-03-01", None)]),
        expect=dict(hifp_pay="0.00", psn_cash_pay="300.00", warnings=["OUTPATIENT_DURING_ADMISSION"]),
        note="not yet discharged: every later visit is inside",
    ),
    dict(
        name="op_day_after_discharge",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), date="2024-03-11", admissions=[("2024-03-01", "2024-03-10")]),
        expect=dict(act_pay_dedc="100.00", hifp_pay="140.00", psn_cash_pay="160.00"),
        note="after discharge: normal, (300-100)*70% = 140",
    ),
    # ------------------------------------------------------------ §3 chronic (14)
    dict(
        name="chronic_employee_in_service",
        person=person(EMP, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        expect=dict(
            act_pay_dedc="300.00",
            pool_prop="0.80",
            hifp_pay="560.00",
            psn_cash_pay="440.00",
            pool="chronic",
            delta={
                "chronic.deductible_paid": "300.00",
                "chronic.fund_paid": "560.00",
                "critical_illness.burden": "440.00",
            },
        ),
        note="chronic 300 deductible, 80%: (1000-300)*80% = 560; burden 440 counts toward critical illness",
    ),
    dict(
        name="chronic_employee_retired",
        person=person(RET, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        expect=dict(act_pay_dedc="300.00", hifp_pay="595.00", psn_cash_pay="405.00"),
        note="retired 85%: 700*85% = 595",
    ),
    dict(
        name="chronic_employee_cap_shared_by_diseases",
        person=person(EMP, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        before={"chronic.deductible_paid": "300.00", "chronic.fund_paid": "9800.00"},
        expect=dict(act_pay_dedc="0.00", hifp_pay="200.00", psn_cash_pay="800.00"),
        note="1000*80% = 800, shared cap 10000-9800 = 200",
    ),
    dict(
        name="chronic_resident_other_disease",
        person=person(RES, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        expect=dict(act_pay_dedc="300.00", pool_prop="0.65", hifp_pay="455.00", psn_cash_pay="545.00"),
        note="resident other chronic: (1000-300)*65% = 455",
    ),
    dict(
        name="chronic_resident_other_disease_cap",
        person=person(RES, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        before={"chronic.deductible_paid": "300.00", "chronic.fund_paid": "4700.00"},
        expect=dict(hifp_pay="300.00", psn_cash_pay="700.00"),
        note="1000*65% = 650, cap 5000-4700 = 300",
    ),
    dict(
        name="two_diseases_hypertension",
        person=person(RES, chronic=[qual("hypertension")]),
        visit=chronic("COUNTY_L1", "hypertension", ("A", "500.00")),
        expect=dict(
            act_pay_dedc="0.00",
            pool_prop="0.50",
            hifp_pay="250.00",
            psn_cash_pay="250.00",
            delta={"chronic.fund_paid.hypertension": "250.00", "critical_illness.burden": "250.00"},
        ),
        note="两病: no deductible, 50%: 250 (own cap 300)",
    ),
    dict(
        name="two_diseases_hypertension_cap",
        person=person(RES, chronic=[qual("hypertension")]),
        visit=chronic("COUNTY_L1", "hypertension", ("A", "500.00")),
        before={"chronic.fund_paid.hypertension": "200.00"},
        expect=dict(hifp_pay="100.00", psn_cash_pay="400.00"),
        note="250 computed, hypertension cap 300-200 = 100",
    ),
    dict(
        name="two_diseases_diabetes_cap_separate",
        person=person(RES, chronic=[qual("hypertension"), qual("diabetes")]),
        visit=chronic("COUNTY_L1", "diabetes", ("A", "500.00")),
        before={"chronic.fund_paid.hypertension": "300.00", "chronic.fund_paid.diabetes": "150.00"},
        expect=dict(
            hifp_pay="250.00",
            psn_cash_pay="250.00",
            delta={"chronic.fund_paid.diabetes": "250.00", "critical_illness.burden": "250.00"},
        ),
        note="hypertension cap used up does not touch diabetes: 250, 150+250 = 400 = diabetes cap exactly",
    ),
    dict(
        name="chronic_fallback_without_qualification",
        person=person(EMP),
        visit=chronic("CITY_L1", "copd", ("A", "500.00")),
        expect=dict(
            med_type="11",
            pool="outpatient",
            act_pay_dedc="100.00",
            hifp_pay="280.00",
            psn_cash_pay="220.00",
            warnings=["CHRONIC_NOT_QUALIFIED"],
            delta={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "280.00"},
        ),
        note="no qualification → general outpatient L1: (500-100)*70% = 280; no critical-illness burden",
    ),
    dict(
        name="chronic_fallback_qualification_ended",
        person=person(EMP, chronic=[qual("copd", end="2024-02-29")]),
        visit=chronic("CITY_L1", "copd", ("A", "500.00"), date="2024-03-01"),
        expect=dict(med_type="11", hifp_pay="280.00", warnings=["CHRONIC_NOT_QUALIFIED"]),
        note="qualification ended 02-29; visit 03-01 falls back to 11",
    ),
    dict(
        name="chronic_qualification_last_day",
        person=person(EMP, chronic=[qual("copd", end="2024-02-29")]),
        visit=chronic("CITY_L1", "copd", ("A", "1000.00"), date="2024-02-29"),
        expect=dict(med_type="14", pool="chronic", hifp_pay="560.00"),
        note="end date inclusive: (1000-300)*80% = 560",
    ),
    dict(
        name="pharmacy_chronic_prescription",
        person=person(RES, chronic=[qual("diabetes")]),
        visit=rx("CITY_L2", ("A", "300.00"), chronic_disease="diabetes"),
        expect=dict(
            med_type="41",
            pool="chronic",
            act_pay_dedc="0.00",
            hifp_pay="150.00",
            psn_cash_pay="150.00",
            delta={"chronic.fund_paid.diabetes": "150.00", "critical_illness.burden": "150.00"},
        ),
        note="chronic prescription at a pharmacy: diabetes pool, 300*50% = 150",
    ),
    # ------------------------------------------------------------ §3 inpatient: scheme × person × level
    dict(
        name="ip_employee_in_service_l1",
        person=person(EMP),
        visit=ip("CITY_L1", A10K),
        expect=dict(
            act_pay_dedc="200.00",
            pool_prop="0.90",
            hifp_pay="8820.00",
            psn_cash_pay="1180.00",
            delta={"inpatient.fund_paid": "8820.00", "critical_illness.burden": "1180.00"},
        ),
        note="(10000-200)*90% = 8820",
    ),
    dict(
        name="ip_employee_in_service_l2",
        person=person(EMP),
        visit=ip("CITY_L2", A10K),
        expect=dict(act_pay_dedc="400.00", hifp_pay="8160.00", psn_cash_pay="1840.00"),
        note="(10000-400)*85% = 8160",
    ),
    dict(
        name="ip_employee_in_service_l3",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        expect=dict(act_pay_dedc="600.00", hifp_pay="7520.00", psn_cash_pay="2480.00"),
        note="(10000-600)*80% = 7520",
    ),
    dict(
        name="ip_employee_retired_l1",
        person=person(RET),
        visit=ip("COUNTY_L1", A10K),
        expect=dict(act_pay_dedc="200.00", pool_prop="0.95", hifp_pay="9310.00", psn_cash_pay="690.00"),
        note="(10000-200)*95% = 9310",
    ),
    dict(
        name="ip_employee_retired_l2",
        person=person(RET),
        visit=ip("COUNTY_L2", A10K),
        expect=dict(act_pay_dedc="400.00", hifp_pay="8640.00", psn_cash_pay="1360.00"),
        note="(10000-400)*90% = 8640",
    ),
    dict(
        name="ip_employee_retired_l3",
        person=person(RET),
        visit=ip("COUNTY_L3", A10K),
        expect=dict(act_pay_dedc="600.00", hifp_pay="7990.00", psn_cash_pay="2010.00"),
        note="(10000-600)*85% = 7990",
    ),
    dict(
        name="ip_resident_l1",
        person=person(RES),
        visit=ip("COUNTY_L1", A10K),
        expect=dict(act_pay_dedc="200.00", pool_prop="0.85", hifp_pay="8330.00", psn_cash_pay="1670.00"),
        note="(10000-200)*85% = 8330",
    ),
    dict(
        name="ip_resident_l2",
        person=person(RES),
        visit=ip("COUNTY_L2", A10K),
        expect=dict(act_pay_dedc="500.00", hifp_pay="7125.00", psn_cash_pay="2875.00"),
        note="(10000-500)*75% = 7125",
    ),
    dict(
        name="ip_resident_l3",
        person=person(RES),
        visit=ip("CITY_L3", A10K),
        expect=dict(act_pay_dedc="800.00", hifp_pay="5520.00", psn_cash_pay="4480.00"),
        note="(10000-800)*60% = 5520",
    ),
    dict(
        name="ip_deductible_per_admission",
        person=person(EMP),
        steps=[
            dict(
                visit=ip("CITY_L3", A10K, date="2024-02-01", end="2024-02-05"),
                expect=dict(act_pay_dedc="600.00", hifp_pay="7520.00"),
            ),
            dict(
                visit=ip("CITY_L3", A10K, date="2024-06-01", end="2024-06-05"),
                expect=dict(act_pay_dedc="600.00", hifp_pay="7520.00"),
            ),
        ],
        note="each admission pays its own 600",
    ),
    dict(
        name="ip_cap_reached_exactly",
        person=person(EMP),
        visit=ip("CITY_L3", ("A", "6600.00")),
        before={"inpatient.fund_paid": "145200.00"},
        expect=dict(hifp_pay="4800.00", psn_cash_pay="1800.00"),
        note="(6600-600)*80% = 4800; 145200+4800 = 150000 = cap",
    ),
    dict(
        name="ip_cap_crossed",
        person=person(EMP),
        visit=ip("CITY_L3", ("A", "6600.00")),
        before={"inpatient.fund_paid": "148000.00"},
        expect=dict(
            hifp_pay="2000.00",
            hifmi_pay="0.00",
            psn_cash_pay="4600.00",
            delta={"inpatient.fund_paid": "2000.00", "critical_illness.burden": "4600.00"},
        ),
        note="4800 computed, cap leaves 2000; burden 6600-2000 = 4600 (below T)",
    ),
    # ------------------------------------------------------------ §4 critical illness segments
    dict(
        name="ci_burden_reaches_threshold_exactly",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "12520.00"},
        expect=dict(hifp_pay="7520.00", hifmi_pay="0.00", psn_cash_pay="2480.00"),
        note="burden 2480; 12520+2480 = 15000 = T → nothing above T",
    ),
    dict(
        name="ci_one_yuan_above_threshold",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "12521.00"},
        expect=dict(hifmi_pay="0.60", psn_cash_pay="2479.40"),
        note="after 15001: 1*60% = 0.60",
    ),
    dict(
        name="ci_reaches_t_plus_50000",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "62520.00"},
        expect=dict(hifmi_pay="1488.00", psn_cash_pay="992.00"),
        note="excess 47520 → 50000: 2480*60% = 1488 (all in band 1)",
    ),
    dict(
        name="ci_crosses_t_plus_50000",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "63520.00"},
        expect=dict(hifmi_pay="1588.00", psn_cash_pay="892.00"),
        note="excess 48520 → 51000: 1480*60% + 1000*70% = 888+700 = 1588",
    ),
    dict(
        name="ci_reaches_t_plus_100000",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "112520.00"},
        expect=dict(hifmi_pay="1736.00", psn_cash_pay="744.00"),
        note="excess 97520 → 100000: 2480*70% = 1736",
    ),
    dict(
        name="ci_crosses_t_plus_100000",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "113520.00"},
        expect=dict(hifmi_pay="1836.00", psn_cash_pay="644.00"),
        note="excess 98520 → 101000: 1480*70% + 1000*80% = 1036+800 = 1836",
    ),
    dict(
        name="ci_annual_cap_crossed",
        person=person(EMP),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "600000.00", "critical_illness.paid": "399000.00"},
        expect=dict(hifmi_pay="1000.00", psn_cash_pay="1480.00"),
        note="2480*80% = 1984, cap 400000-399000 = 1000",
    ),
    dict(
        name="ci_chronic_counts",
        person=person(EMP, chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        before={"critical_illness.burden": "15000.00"},
        expect=dict(hifp_pay="560.00", hifmi_pay="264.00", psn_cash_pay="176.00"),
        note="chronic burden 1000-560 = 440 above T: 440*60% = 264",
    ),
    dict(
        name="ci_outpatient_not_counted",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"critical_illness.burden": "20000.00"},
        expect=dict(
            hifp_pay="280.00",
            hifmi_pay="0.00",
            delta={"outpatient.deductible_paid": "100.00", "outpatient.fund_paid": "280.00"},
        ),
        note="general outpatient never counts toward critical illness",
    ),
    dict(
        name="ci_aid_recipient_half_threshold_plus_points",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("CITY_L3", ("A", "20000.00")),
        expect=dict(
            hifp_pay="11520.00",
            hifmi_pay="637.00",
            maf_pay="5132.25",
            tilt_aid_pay="0.00",
            psn_cash_pay="2710.75",
            aid_category="dibao",
        ),
        note="hifp (20000-800)*60% = 11520; burden 8480, T 7500: 980*65% = 637; aid base 20000-11520-637 = 7843, "
        "dibao deductible 1000: 6843*75% = 5132.25; tilt sum 2710.75 < 10000",
    ),
    dict(
        name="ci_aid_recipient_no_cap",
        person=person(RES, aid=[aid("tekun")]),
        visit=ip("CITY_L3", ("A", "20000.00")),
        before={"critical_illness.burden": "200000.00", "critical_illness.paid": "400000.00"},
        expect=dict(hifp_pay="11520.00", hifmi_pay="7208.00", maf_pay="1272.00", psn_cash_pay="0.00"),
        note="tekun: band 3 at 80+5 = 85%: 8480*85% = 7208 despite 400000 paid (no cap); aid 100% of 1272",
    ),
    dict(
        name="ci_dibian_not_tilted",
        person=person(RES, aid=[aid("dibian")]),
        visit=ip("CITY_L3", A10K),
        before={"critical_illness.burden": "10000.00"},
        expect=dict(hifp_pay="5520.00", hifmi_pay="0.00", maf_pay="1036.00", psn_cash_pay="3444.00"),
        note="低保边缘 is not in the tilt list: T stays 15000 (14480 below); aid (4480-3000)*70% = 1036",
    ),
    # ------------------------------------------------------------ §5 medical aid categories
    dict(
        name="aid_tekun_outpatient",
        person=person(RES, aid=[aid("tekun")]),
        visit=op("CITY_L1", ("A", "500.00")),
        expect=dict(
            hifp_pay="225.00",
            maf_pay="275.00",
            psn_cash_pay="0.00",
            aid_category="tekun",
            delta={
                "outpatient.deductible_paid": "50.00",
                "outpatient.fund_paid": "225.00",
                "aid.outpatient_paid": "275.00",
            },
        ),
        note="hifp 225; aid base 275 incl. the basic deductible, 100%",
    ),
    dict(
        name="aid_orphan_b_preselfpay_stays",
        person=person(RES, aid=[aid("orphan")]),
        visit=op("CITY_L1", ("A", "400.00"), ("B", "100.00")),
        expect=dict(inscp_scp_amt="490.00", hifp_pay="220.00", maf_pay="270.00", psn_cash_pay="10.00"),
        note="in-scope 400+90; (490-50)*50% = 220; aid 270; B first self-pay 10 stays with the patient",
    ),
    dict(
        name="aid_tekun_worker_employee",
        person=person(EMP, aid=[aid("tekun_worker")]),
        visit=ip("CITY_L2", A10K),
        expect=dict(
            hifp_pay="8160.00", hifmi_pay="0.00", maf_pay="1472.00", tilt_aid_pay="0.00", psn_cash_pay="368.00"
        ),
        note="特困职工 80%, no deductible: 1840*80% = 1472; tilt sum 368 < 10000",
    ),
    dict(
        name="aid_dibao_outpatient_deductible",
        person=person(RES, aid=[aid("dibao")]),
        visit=op("CITY_L1", ("A", "2000.00")),
        expect=dict(
            hifp_pay="400.00",
            maf_pay="450.00",
            psn_cash_pay="1150.00",
            delta={
                "outpatient.deductible_paid": "50.00",
                "outpatient.fund_paid": "400.00",
                "aid.deductible_paid": "1000.00",
                "aid.outpatient_paid": "450.00",
            },
        ),
        note="hifp 1950*50% = 975 cut to the resident cap 400; base 1600; (1600-1000)*75% = 450",
    ),
    dict(
        name="aid_dibao_deductible_partly_paid",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("CITY_L2", ("A", "5000.00")),
        before={"aid.deductible_paid": "600.00"},
        expect=dict(hifp_pay="3375.00", maf_pay="918.75", psn_cash_pay="706.25"),
        note="(5000-500)*75% = 3375; base 1625; owes 1000-600 = 400: 1225*75% = 918.75",
    ),
    dict(
        name="aid_dibian_outpatient",
        person=person(RES, aid=[aid("dibian")]),
        visit=op("CITY_L1", ("A", "4000.00")),
        expect=dict(hifp_pay="400.00", maf_pay="420.00", psn_cash_pay="3180.00"),
        note="hifp capped 400; base 3600; (3600-3000)*70% = 420",
    ),
    dict(
        name="aid_fanpin_inpatient_county",
        person=person(RES, insuplc_admdvs="621022", aid=[aid("fanpin")]),
        visit=ip("COUNTY_L2", ("A", "20000.00")),
        expect=dict(hifp_pay="14625.00", hifmi_pay="0.00", maf_pay="1662.50", psn_cash_pay="3712.50"),
        note="(20000-500)*75% = 14625; burden 5375 < 7500; (5375-3000)*70% = 1662.50",
    ),
    dict(
        name="aid_highest_ratio_wins",
        person=person(RES, aid=[aid("dibian"), aid("dibao")]),
        visit=ip("CITY_L3", A10K),
        expect=dict(hifp_pay="5520.00", maf_pay="2610.00", psn_cash_pay="1870.00", aid_category="dibao"),
        note="dibao 75% beats dibian 70%: (4480-1000)*75% = 2610",
    ),
    dict(
        name="aid_window_last_day_of_loss_month",
        person=person(RES, aid=[aid("tekun", lost="2024-03-10")]),
        visit=op("CITY_L1", ("A", "500.00"), date="2024-03-31"),
        expect=dict(maf_pay="275.00", psn_cash_pay="0.00"),
        note="lost 03-10, covered to 03-31",
    ),
    dict(
        name="aid_window_first_day_of_next_month",
        person=person(RES, aid=[aid("tekun", lost="2024-03-10")]),
        visit=op("CITY_L1", ("A", "500.00"), date="2024-04-01"),
        expect=dict(maf_pay="0.00", psn_cash_pay="275.00", aid_category=None),
        note="次月起不再享受: 04-01 not covered",
    ),
    dict(
        name="aid_admission_covered_by_admission_date",
        person=person(RES, aid=[aid("tekun", lost="2024-02-15")]),
        visit=ip("CITY_L3", A10K, date="2024-02-25", end="2024-03-05"),
        expect=dict(hifp_pay="5520.00", maf_pay="4480.00", psn_cash_pay="0.00"),
        note="window ends 02-29, covers the admission date 02-25",
    ),
    dict(
        name="aid_identity_gained_during_admission",
        person=person(RES, aid=[aid("dibao", start="2024-03-03")]),
        visit=ip("CITY_L3", A10K, date="2024-02-25", end="2024-03-05"),
        expect=dict(maf_pay="2610.00", psn_cash_pay="1870.00", aid_category="dibao"),
        note="window from 03-03 covers the discharge date 03-05: (4480-1000)*75% = 2610",
    ),
    dict(
        name="aid_identity_lost_during_admission",
        person=person(RES, aid=[aid("tekun", lost="2024-03-02")]),
        visit=ip("CITY_L3", A10K, date="2024-02-25", end="2024-04-03"),
        expect=dict(maf_pay="4480.00", psn_cash_pay="0.00"),
        note="lost 03-02 (window to 03-31) covers the admission date; this stay keeps the identity",
    ),
    dict(
        name="aid_identity_after_discharge",
        person=person(RES, aid=[aid("tekun", start="2024-03-06")]),
        visit=ip("CITY_L3", A10K, date="2024-02-25", end="2024-03-05"),
        expect=dict(maf_pay="0.00", psn_cash_pay="4480.00", aid_category=None),
        note="identity from 03-06 covers neither date",
    ),
    dict(
        name="aid_outpatient_cap_crossed",
        person=person(RES, aid=[aid("tekun")]),
        visit=op("CITY_L1", ("A", "500.00")),
        before={"aid.outpatient_paid": "9900.00"},
        expect=dict(maf_pay="100.00", psn_cash_pay="175.00"),
        note="275 computed, outpatient aid cap 10000-9900 = 100",
    ),
    dict(
        name="aid_inpatient_cap_crossed",
        person=person(RES, aid=[aid("tekun")]),
        visit=ip("CITY_L3", A10K),
        before={"aid.inpatient_paid": "89500.00"},
        expect=dict(maf_pay="500.00", tilt_aid_pay="0.00", psn_cash_pay="3980.00"),
        note="4480 computed, chronic+inpatient cap 90000-89500 = 500; tilt sum 3980 < 10000",
    ),
    dict(
        name="aid_chronic_shares_inpatient_cap",
        person=person(RES, aid=[aid("tekun")], chronic=[qual("copd")]),
        visit=chronic("CITY_L3", "copd", ("A", "1000.00")),
        before={"aid.inpatient_paid": "89900.00"},
        expect=dict(
            hifp_pay="455.00",
            maf_pay="100.00",
            psn_cash_pay="445.00",
            delta={
                "chronic.deductible_paid": "300.00",
                "chronic.fund_paid": "455.00",
                "critical_illness.burden": "545.00",
                "aid.inpatient_paid": "100.00",
            },
        ),
        note="chronic uses the chronic+inpatient aid cap: 545 computed, 100 left",
    ),
    dict(
        name="aid_noncompliant_referral_tekun",
        person=person(RES, aid=[aid("tekun")]),
        visit=ip("CITY_L3", A10K, referral_compliant=False),
        expect=dict(maf_pay="3584.00", tilt_aid_pay="0.00", psn_cash_pay="896.00"),
        note="100-20 = 80%: 4480*80% = 3584; no tilt without compliant referral",
    ),
    # ------------------------------------------------------------ §5 tilted aid
    dict(
        name="tilt_crosses_threshold",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("CITY_L3", A10K),
        before={"aid.deductible_paid": "1000.00", "tilt.burden": "9000.00"},
        expect=dict(
            maf_pay="3360.00",
            tilt_aid_pay="60.00",
            psn_cash_pay="1060.00",
            delta={
                "inpatient.fund_paid": "5520.00",
                "critical_illness.burden": "4480.00",
                "aid.inpatient_paid": "3360.00",
                "tilt.burden": "1120.00",
                "tilt.paid": "60.00",
            },
        ),
        note="aid 4480*75% = 3360; remaining 1120; sum 9000 → 10120: 120*50% = 60",
    ),
    dict(
        name="tilt_above_threshold",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("CITY_L3", A10K),
        before={"aid.deductible_paid": "1000.00", "tilt.burden": "12000.00"},
        expect=dict(tilt_aid_pay="560.00", psn_cash_pay="560.00"),
        note="sum already above 10000: 1120*50% = 560",
    ),
    dict(
        name="tilt_cap_crossed",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("CITY_L3", A10K),
        before={"aid.deductible_paid": "1000.00", "tilt.burden": "200000.00", "tilt.paid": "49800.00"},
        expect=dict(tilt_aid_pay="200.00", psn_cash_pay="920.00"),
        note="560 computed, cap 50000-49800 = 200",
    ),
    dict(
        name="tilt_not_out_of_province",
        person=person(RES, aid=[aid("dibao")]),
        visit=ip("OTHER_PROVINCE_L3", A10K),
        before={"aid.deductible_paid": "1000.00", "tilt.burden": "12000.00"},
        expect=dict(
            offsite=True,
            pool_prop="0.50",
            hifp_pay="4600.00",
            maf_pay="4050.00",
            tilt_aid_pay="0.00",
            psn_cash_pay="1350.00",
        ),
        note="unregistered other province 60-10 = 50%: 9200*50% = 4600; aid 5400*75% = 4050; "
        "no tilt outside the province",
    ),
    # ------------------------------------------------------------ §3 off-site
    dict(
        name="offsite_same_province_unregistered",
        person=person(EMP),
        visit=ip("OTHER_CITY_L3", A10K),
        expect=dict(offsite=True, pool_prop="0.70", hifp_pay="6580.00", psn_cash_pay="3420.00"),
        note="another city of the province, no registration: 80-10 = 70%: 9400*70% = 6580",
    ),
    dict(
        name="offsite_registered_city",
        person=person(
            EMP, offsite=[{"mdtrtarea_admdvs": "620100", "start_date": "2024-01-01", "end_date": "2024-12-31"}]
        ),
        visit=ip("OTHER_CITY_L3", A10K),
        expect=dict(offsite=True, pool_prop="0.80", hifp_pay="7520.00"),
        note="registered for 620100: local ratio 80%",
    ),
    dict(
        name="offsite_registration_covers_county_of_city",
        person=person(
            EMP, offsite=[{"mdtrtarea_admdvs": "620100", "start_date": "2024-01-01", "end_date": "2024-12-31"}]
        ),
        visit=ip("OTHER_CITY_COUNTY_L2", A10K),
        expect=dict(offsite=True, hifp_pay="8160.00"),
        note="620102 is in city 6201: local L2 85%: 9600*85% = 8160",
    ),
    dict(
        name="offsite_registered_whole_province",
        person=person(
            EMP, offsite=[{"mdtrtarea_admdvs": "610000", "start_date": "2024-01-01", "end_date": "2024-12-31"}]
        ),
        visit=ip("OTHER_PROVINCE_L3", A10K),
        expect=dict(offsite=True, hifp_pay="7520.00"),
        note="610000 ends in 0000: covers every city of province 61",
    ),
    dict(
        name="offsite_registration_expired",
        person=person(
            EMP, offsite=[{"mdtrtarea_admdvs": "610000", "start_date": "2024-01-01", "end_date": "2024-03-31"}]
        ),
        visit=ip("OTHER_PROVINCE_L3", A10K),
        expect=dict(offsite=True, hifp_pay="6580.00"),
        note="registration ended before the 05-02 admission: 70%",
    ),
    dict(
        name="offsite_registration_other_city",
        person=person(
            EMP, offsite=[{"mdtrtarea_admdvs": "620200", "start_date": "2024-01-01", "end_date": "2024-12-31"}]
        ),
        visit=ip("OTHER_CITY_L3", A10K),
        expect=dict(offsite=True, hifp_pay="6580.00"),
        note="a registration for 6202 does not cover 6201",
    ),
    dict(
        name="offsite_outpatient_unregistered",
        person=person(EMP),
        visit=op("OTHER_CITY_L3", ("A", "500.00")),
        expect=dict(offsite=True, pool_prop="0.40", hifp_pay="80.00", psn_cash_pay="420.00"),
        note="outpatient L3 50-10 = 40%: (500-300)*40% = 80",
    ),
    dict(
        name="county_insured_in_city_hospital_not_offsite",
        person=person(RES, insuplc_admdvs="621022"),
        visit=ip("CITY_L3", A10K),
        expect=dict(offsite=False, hifp_pay="5520.00"),
        note="same city 6210: local",
    ),
    # ------------------------------------------------------------ §6 COVID: four subsidy cases and more
    dict(
        name="covid_confirmed_city_hospital",
        person=person(EMP),
        visit=ip("CITY_L3", A10K, ("C", "500.00"), ("A", "1890.00", "1", "COVID-NMTW"), diagnoses=["U07.1"]),
        expect=dict(
            medfee_sumamt="12390.00",
            inscp_scp_amt="11890.00",
            hifp_pay="9032.00",
            fin_subsidy_pay="3358.00",
            psn_pay="0.00",
            psn_cash_pay="0.00",
            subsidy={"advance_payer": "city", "shares": [["central", "2014.80"], ["provincial", "1343.20"]]},
        ),
        note="(11890-600)*80% = 9032; finance 12390-9032 = 3358 incl. class C; "
        "central 60% = 2014.80, provincial the rest 1343.20",
    ),
    dict(
        name="covid_confirmed_county_hospital",
        person=person(RES, insuplc_admdvs="621022"),
        visit=ip("COUNTY_L2", ("A", "5000.00"), diagnoses=["U07.1"]),
        expect=dict(
            hifp_pay="3375.00",
            fin_subsidy_pay="1625.00",
            psn_cash_pay="0.00",
            subsidy={"advance_payer": "county", "shares": [["central", "975.00"], ["provincial", "650.00"]]},
        ),
        note="(5000-500)*75% = 3375; 1625 advanced by county finance, central 975 / provincial 650",
    ),
    dict(
        name="covid_suspected_city_level_patient",
        person=person(RES),
        visit=ip("COUNTY_L2", ("A", "5000.00"), diagnoses=["U07.2"]),
        expect=dict(
            hifp_pay="3375.00",
            fin_subsidy_pay="1625.00",
            subsidy={"advance_payer": "county", "shares": [["city", "1625.00"]]},
        ),
        note="insured at 621000 (city level): city finance 100%, even in a county hospital",
    ),
    dict(
        name="covid_suspected_county_level_patient",
        person=person(RES, insuplc_admdvs="621022"),
        visit=ip("CITY_L3", ("A", "5000.00"), diagnoses=["U07.2"]),
        expect=dict(
            hifp_pay="2520.00",
            fin_subsidy_pay="2480.00",
            subsidy={"advance_payer": "city", "shares": [["city", "1488.00"], ["county", "992.00"]]},
        ),
        note="(5000-800)*60% = 2520; county-insured: city 60% = 1488, county 992",
    ),
    dict(
        name="covid_suspected_outsider_city_hospital",
        person=person(RES, insuplc_admdvs="610100"),
        policy_admdvs="621000",
        visit=ip("CITY_L3", ("A", "5000.00"), diagnoses=["U07.2"]),
        expect=dict(
            offsite=True,
            pool_prop="0.60",
            hifp_pay="2520.00",
            fin_subsidy_pay="2480.00",
            subsidy={"advance_payer": "city", "shares": [["city", "2480.00"]]},
        ),
        note="outsider in a city-managed hospital: city 100%; COVID: ratio not reduced off-site",
    ),
    dict(
        name="covid_suspected_outsider_county_hospital",
        person=person(RES, insuplc_admdvs="610100"),
        policy_admdvs="621000",
        visit=ip("COUNTY_L2", ("A", "5000.00"), diagnoses=["U07.2"]),
        expect=dict(
            offsite=True,
            hifp_pay="3375.00",
            fin_subsidy_pay="1625.00",
            subsidy={"advance_payer": "county", "shares": [["city", "975.00"], ["county", "650.00"]]},
        ),
        note="outsider in a county hospital: city 60% / county 40%",
    ),
    dict(
        name="covid_offsite_never_reduced",
        person=person(EMP),
        visit=ip("OTHER_PROVINCE_L3", A10K, diagnoses=["U07.1"]),
        expect=dict(
            offsite=True,
            pool_prop="0.80",
            hifp_pay="7520.00",
            fin_subsidy_pay="2480.00",
            subsidy={"advance_payer": "city", "shares": [["central", "1488.00"], ["provincial", "992.00"]]},
        ),
        note="先救治后备案: 80% not reduced; finance 2480",
    ),
    dict(
        name="covid_no_account",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), diagnoses=["U07.1"], acct_used_flag=True, account_balance="1000.00"),
        expect=dict(hifp_pay="140.00", fin_subsidy_pay="160.00", acct_pay="0.00", psn_cash_pay="0.00", balc="1000.00"),
        note="(300-100)*70% = 140; finance 160; the account is never used",
    ),
    dict(
        name="covid_suspected_aid_first",
        person=person(RES, aid=[aid("tekun")]),
        visit=ip("CITY_L3", A10K, ("C", "1000.00"), diagnoses=["U07.2"]),
        expect=dict(
            hifp_pay="5520.00",
            maf_pay="4480.00",
            fin_subsidy_pay="1000.00",
            psn_cash_pay="0.00",
            subsidy={"advance_payer": "city", "shares": [["city", "1000.00"]]},
        ),
        note="aid pays in-scope 4480 first; finance pays the class C 1000",
    ),
    dict(
        name="covid_drug_for_suspected_patient",
        person=person(RES),
        visit=op("CITY_L1", ("A", "100.00", "1", "COVID-SFJD"), diagnoses=["U07.2"]),
        expect=dict(inscp_scp_amt="100.00", hifp_pay="25.00", fin_subsidy_pay="75.00"),
        note="COVID-restricted item is class A for a suspected patient: (100-50)*50% = 25",
    ),
    # ------------------------------------------------------------ §7 personal account
    dict(
        name="account_smaller_than_share",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), acct_used_flag=True, account_balance="50.00"),
        expect=dict(hifp_pay="140.00", psn_pay="160.00", acct_pay="50.00", psn_cash_pay="110.00", balc="0.00"),
        note="personal 160; balance 50 pays 50, cash 110",
    ),
    dict(
        name="account_larger_than_share",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), acct_used_flag=True, account_balance="1000.00"),
        expect=dict(psn_pay="160.00", acct_pay="160.00", psn_cash_pay="0.00", balc="840.00"),
        note="account pays all 160, 840 left",
    ),
    dict(
        name="account_family_payer",
        person=person(RES),
        visit=op(
            "CITY_L1", ("A", "300.00"), acct_used_flag=True, account_balance="500.00", acct_payer_psn_no="P-PARENT"
        ),
        expect=dict(hifp_pay="125.00", psn_pay="175.00", acct_pay="175.00", psn_cash_pay="0.00", balc="325.00"),
        note="家庭共济: a resident child, the parent's account pays 175 of (300-50)*50% = 125 → 175",
    ),
    dict(
        name="account_not_requested",
        person=person(EMP),
        visit=op("CITY_L1", ("A", "300.00"), account_balance="1000.00"),
        expect=dict(acct_pay="0.00", psn_cash_pay="160.00", balc="1000.00"),
        note="acct_used_flag false",
    ),
]

MONEY = {*MONEY_FIELDS, "balc", "pool_prop"}  # what the breakdown writes as text


def _check(result: Any, expect: dict[str, Any], where: str) -> None:
    breakdown = result.to_breakdown()
    for key, value in expect.items():
        if key in MONEY:
            assert breakdown[key] == value, f"{where}: {key}"
        elif key == "delta":
            assert result.accumulator_delta == {k: Decimal(v) for k, v in value.items()}, f"{where}: delta"
        elif key == "subsidy":
            assert result.subsidy is not None, where
            assert result.subsidy.advance_payer == value["advance_payer"], where
            assert [[p, str(a)] for p, a in result.subsidy.shares] == value["shares"], where
        elif key not in ("warnings", "offsite"):
            assert getattr(result, key) == value, f"{where}: {key}"
    assert list(result.warning_codes) == expect.get("warnings", []), f"{where}: warnings"
    assert result.offsite is expect.get("offsite", False), f"{where}: offsite"
    assert result.violations == (), where


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_worked_case(case: dict[str, Any]) -> None:
    eligibility = build_eligibility(case["person"])
    totals: Accumulators = accumulators(case.get("before"))
    steps = case.get("steps") or [{"visit": case["visit"], "expect": case["expect"]}]
    for index, step in enumerate(steps):
        claim = build_claim(step["visit"], institutions=INSTITUTIONS)
        on = claim.end_date or claim.begin_date
        policy = BOOK.policy_for(admdvs=case.get("policy_admdvs", eligibility.insuplc_admdvs), on=on)
        result = adjudicate(
            claim=claim, eligibility=eligibility, accumulators=totals, policy=policy, catalogue=CATALOGUE
        )
        _check(result, step["expect"], f"{case['name']}[{index}] ({case['note']})")
        totals = totals.apply(result.accumulator_delta)
