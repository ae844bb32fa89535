"""Hypothesis properties: amount identity, caps, reversal, monotonicity."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from engine_support import BOOK, CATALOGUE, INSTITUTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.settlement.engine import (
    Accumulators,
    Adjudication,
    AidIdentity,
    ChronicQualification,
    Claim,
    EligibilitySnapshot,
    FeeLine,
    OffsiteRegistration,
    adjudicate,
)
from services.settlement.engine import accumulators as keys

POLICY = BOOK.policy_for(admdvs="621000", on=date(2024, 1, 1))
HOSPITALS = [code for code, inst in INSTITUTIONS.items() if inst.kind == "hospital"]
YEAR_START = date(2024, 1, 1)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

days = st.integers(min_value=0, max_value=364).map(lambda n: YEAR_START + timedelta(days=n))
cents = st.integers(min_value=1, max_value=3_000_000).map(lambda n: Decimal(n).scaleb(-2))
quantities = st.sampled_from([Decimal("1"), Decimal("2"), Decimal("3"), Decimal("0.5"), Decimal("10")])
codes = st.sampled_from(["T1", "T2", "T3", "COVID-NMTW", "COVID-SFJD", "COVID-AGT"])


@st.composite
def fee_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    count = draw(st.integers(min_value=1, max_value=6))
    return tuple(
        FeeLine(
            feedetl_sn=f"L{index}",
            med_list_codg=draw(codes),
            item_class=draw(st.sampled_from(["A", "B", "C", None])),
            pric=draw(cents),
            cnt=draw(quantities),
        )
        for index in range(count)
    )


@st.composite
def persons(draw: st.DrawFn) -> EligibilitySnapshot:
    insutype = draw(st.sampled_from(["310", "390"]))
    aid = tuple(
        AidIdentity(category, draw(days), draw(st.none() | days))
        for category in draw(st.lists(st.sampled_from(sorted(POLICY.medical_aid.categories)), max_size=2, unique=True))
    )
    chronic = tuple(
        ChronicQualification(disease, draw(days), draw(st.none() | days))
        for disease in draw(st.lists(st.sampled_from(["hypertension", "diabetes", "copd"]), max_size=2, unique=True))
    )
    registrations = tuple(
        OffsiteRegistration(area, YEAR_START, draw(st.none() | days))
        for area in draw(st.lists(st.sampled_from(["620100", "610000", "620200"]), max_size=1))
    )
    return EligibilitySnapshot(
        psn_no="P",
        insutype=insutype,
        psn_type=draw(st.sampled_from(["in_service", "retired"])) if insutype == "310" else None,
        insuplc_admdvs=draw(st.sampled_from(["621000", "621022", "621027"])),
        aid_identities=aid,
        chronic_qualifications=chronic,
        offsite_registrations=registrations,
    )


@st.composite
def claims(draw: st.DrawFn) -> Claim:
    med_type = draw(st.sampled_from(["11", "14", "21", "41"]))
    begin = draw(days)
    end = min(begin + timedelta(days=draw(st.integers(0, 20))), date(2024, 12, 31)) if med_type == "21" else None
    hospital = INSTITUTIONS[draw(st.sampled_from(HOSPITALS))]
    admissions = ()
    if med_type != "21" and draw(st.booleans()):
        start = begin - timedelta(days=draw(st.integers(0, 5)))
        admissions = ((start, draw(st.none() | st.just(start + timedelta(days=draw(st.integers(0, 10)))))),)
    return Claim(
        med_type=med_type,
        institution=INSTITUTIONS["PHARMACY"] if med_type == "41" else hospital,
        prescriber=hospital if med_type == "41" else None,
        begin_date=begin,
        end_date=end,
        lines=draw(fee_lines()),
        diagnoses=draw(st.sampled_from([(), ("J18.9",), ("U07.1",), ("U07.2",)])),
        chronic_disease=draw(st.sampled_from([None, "hypertension", "diabetes", "copd"])),
        referral_compliant=draw(st.booleans()),
        acct_used_flag=draw(st.booleans()),
        account_balance=draw(st.integers(0, 500_000).map(lambda n: Decimal(n).scaleb(-2))),
        admissions=admissions,
    )


ACCUMULATOR_KEYS = [
    keys.OUTPATIENT_DEDUCTIBLE_PAID,
    keys.OUTPATIENT_FUND_PAID,
    keys.CHRONIC_DEDUCTIBLE_PAID,
    keys.CHRONIC_FUND_PAID,
    keys.chronic_disease_fund_paid("hypertension"),
    keys.chronic_disease_fund_paid("diabetes"),
    keys.INPATIENT_FUND_PAID,
    keys.CRITICAL_ILLNESS_BURDEN,
    keys.CRITICAL_ILLNESS_PAID,
    keys.AID_DEDUCTIBLE_PAID,
    keys.AID_OUTPATIENT_PAID,
    keys.AID_INPATIENT_PAID,
    keys.TILT_BURDEN,
    keys.TILT_PAID,
]
accumulator_values = st.dictionaries(
    st.sampled_from(ACCUMULATOR_KEYS), st.integers(0, 50_000_000).map(lambda n: Decimal(n).scaleb(-2))
).map(Accumulators)


def _settle(claim: Claim, person: EligibilitySnapshot, totals: Accumulators) -> Adjudication:
    return adjudicate(claim=claim, eligibility=person, accumulators=totals, policy=POLICY, catalogue=CATALOGUE)


def _caps(person: EligibilitySnapshot) -> dict[str, Decimal]:
    caps = {
        keys.AID_OUTPATIENT_PAID: POLICY.medical_aid.outpatient_annual_cap,
        keys.AID_INPATIENT_PAID: POLICY.medical_aid.chronic_inpatient_annual_cap,
        keys.TILT_PAID: POLICY.medical_aid.tilt.annual_cap,
    }
    scheme = POLICY.scheme(person.insutype)
    for rule in (scheme.outpatient, scheme.chronic, scheme.inpatient, *scheme.chronic_per_disease.values()):
        caps[rule.accumulator] = rule.annual_cap
    if not any(i.category in POLICY.critical_illness.aid_categories for i in person.aid_identities):
        caps[keys.CRITICAL_ILLNESS_PAID] = POLICY.critical_illness.annual_cap
    return caps


@SETTINGS
@given(claim=claims(), person=persons(), totals=accumulator_values)
def test_amount_identity_and_non_negative(claim: Claim, person: EligibilitySnapshot, totals: Accumulators) -> None:
    r = _settle(claim, person, totals)
    for name in (
        "medfee_sumamt",
        "hifp_pay",
        "hifmi_pay",
        "maf_pay",
        "tilt_aid_pay",
        "fin_subsidy_pay",
        "acct_pay",
        "psn_cash_pay",
        "psn_pay",
        "inscp_scp_amt",
        "act_pay_dedc",
    ):
        assert getattr(r, name) >= 0, name
    assert r.medfee_sumamt == (
        r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay + r.fin_subsidy_pay + r.acct_pay + r.psn_cash_pay
    )
    assert r.psn_pay == r.acct_pay + r.psn_cash_pay
    assert r.fund_pay_sumamt == r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay
    assert r.acct_pay <= claim.account_balance
    if r.covid_status is not None:
        assert r.psn_pay == 0 and r.subsidy is not None and sum(a for _, a in r.subsidy.shares) == r.fin_subsidy_pay


@SETTINGS
@given(person=persons(), sequence=st.lists(claims(), min_size=1, max_size=12))
def test_caps_never_exceeded_over_a_year(person: EligibilitySnapshot, sequence: list[Claim]) -> None:
    caps = _caps(person)
    totals = Accumulators()
    for claim in sequence:
        totals = totals.apply(_settle(claim, person, totals).accumulator_delta)
        for key, cap in caps.items():
            if cap is not None:
                assert totals[key] <= cap, key


@SETTINGS
@given(claim=claims(), person=persons(), totals=accumulator_values)
def test_settle_reverse_settle(claim: Claim, person: EligibilitySnapshot, totals: Accumulators) -> None:
    first = _settle(claim, person, totals)
    after = totals.apply(first.accumulator_delta)
    restored = after.apply(first.accumulator_delta.negated())
    assert restored == totals
    again = _settle(claim, person, restored)
    assert again.to_breakdown() == first.to_breakdown()
    assert again.accumulator_delta == first.accumulator_delta


@SETTINGS
@given(claim=claims(), person=persons(), totals=accumulator_values, extra=cents)
def test_more_in_scope_cost_never_lowers_funds(
    claim: Claim, person: EligibilitySnapshot, totals: Accumulators, extra: Decimal
) -> None:
    """Same context (person, dates, institution, accumulators), one more class-A line."""
    more = replace(claim, lines=(*claim.lines, FeeLine("EXTRA", "T-EXTRA", extra, Decimal("1"), item_class="A")))
    small, big = _settle(claim, person, totals), _settle(more, person, totals)
    assert big.inscp_scp_amt > small.inscp_scp_amt
    assert big.fund_pay_sumamt >= small.fund_pay_sumamt
    for name in ("hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay"):
        assert getattr(big, name) >= getattr(small, name), name
