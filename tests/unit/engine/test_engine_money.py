"""The engine's money after the settlement (issue 13), pure: retail purchases (定点药店购药, DOMAIN §7), temporary
catalogue entries (valid_from / valid_to, DOMAIN §6) and the monthly account credit, to the fen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from engine_support import BOOK, CATALOGUE, INSTITUTIONS, POLICY
from hypothesis import given, settings
from hypothesis import strategies as st

from services.settlement.engine import (
    ACCOUNT_EXCLUDED,
    CATALOGUE_ENTRY_NOT_IN_FORCE,
    NOT_IN_CATALOGUE,
    Accumulators,
    Catalogue,
    CatalogueEntry,
    Claim,
    ClaimError,
    EligibilitySnapshot,
    FeeLine,
    adjudicate,
    adjudicate_purchase,
    monthly_account_credit,
)

D = Decimal
DAY = date(2024, 5, 10)
CAT = CATALOGUE.with_entries(
    [
        CatalogueEntry("OTC-IBU", "布洛芬缓释胶囊", "A"),
        CatalogueEntry("OTC-B", "复方甘草片", "B", preselfpay_prop=D("0.20")),
        CatalogueEntry("GYM", "健身卡", "C", account_excluded=True),
        CatalogueEntry("TEMP", "临时药品", "A", valid_from=date(2022, 12, 1), valid_to=date(2023, 3, 31)),
        CatalogueEntry("CAPPED", "抗原", "A", price_cap=D("8.00")),
    ]
)
BUYER = EligibilitySnapshot(psn_no="B1", insutype="310", insuplc_admdvs="621000", psn_type="in_service")


def purchase(lines, *, balance: str = "100.00", day: date = DAY, payer: str | None = None):
    claim = Claim(
        med_type="41",
        institution=INSTITUTIONS["PHARMACY"],
        begin_date=day,
        lines=tuple(FeeLine(f"L{i}", code, D(pric), D(cnt)) for i, (code, pric, cnt) in enumerate(lines, 1)),
        acct_used_flag=True,
        account_balance=D(balance),
        acct_payer_psn_no=payer,
    )
    return adjudicate_purchase(claim=claim, eligibility=BUYER, policy=POLICY, catalogue=CAT)


def step(result, name: str):
    (found,) = [s for s in result.trace if s.step == name]
    return found


def test_the_account_pays_what_it_may_up_to_its_balance_and_the_rest_is_cash():
    result = purchase(
        [("OTC-IBU", "12.34", "3"), ("OTC-B", "10.00", "1"), ("GYM", "50.00", "1"), ("NEW", "9.99", "1")],
        balance="40.00",
    )
    assert (result.medfee_sumamt, result.acct_pay, result.psn_cash_pay, result.balc) == (
        D("107.01"),
        D("40.00"),
        D("67.01"),
        D("0.00"),
    )
    assert (result.hifp_pay, result.hifmi_pay, result.maf_pay, result.fund_pay_sumamt, result.fin_subsidy_pay) == (
        D("0.00"),
    ) * 5
    assert result.psn_pay == result.medfee_sumamt and result.med_type == "41" and result.pool == "retail"
    assert step(result, "purchase.account_payable").amount == D("47.02")  # 37.02 + 10.00
    assert step(result, "cash.psn_cash_pay").detail["beyond_balance"] == "7.02"
    assert {w.code for w in result.warnings} == {ACCOUNT_EXCLUDED, NOT_IN_CATALOGUE}
    assert dict(result.accumulator_delta) == {}
    assert (result.fulamt_ownpay_amt, result.preselfpay_amt, result.inscp_scp_amt) == (
        D("59.99"),
        D("2.00"),
        D("45.02"),
    )


def test_a_family_payer_and_an_ample_balance():
    result = purchase([("OTC-IBU", "19.90", "2")], balance="500.00", payer="PARENT")
    assert (result.acct_pay, result.psn_cash_pay, result.balc, result.acct_payer_psn_no) == (
        D("39.80"),
        D("0.00"),
        D("460.20"),
        "PARENT",
    )
    assert step(result, "account.acct_pay").detail["family_payment"] == "true"
    assert step(result, "account.acct_pay").detail["payer_psn_no"] == "PARENT"


def test_a_price_above_the_cap_is_a_violation_and_a_prescription_is_not_a_retail_purchase():
    assert [v.code for v in purchase([("CAPPED", "8.01", "1")]).violations] == ["PRICE_ABOVE_CAP"]
    claim = Claim(
        med_type="41",
        institution=INSTITUTIONS["PHARMACY"],
        begin_date=DAY,
        lines=(),
        prescriber=INSTITUTIONS["CITY_L3"],
    )
    with pytest.raises(ClaimError) as refused:
        adjudicate_purchase(claim=claim, eligibility=BUYER, policy=POLICY, catalogue=CAT)
    assert refused.value.code == "NOT_A_RETAIL_PURCHASE"
    at_hospital = replace(claim, prescriber=None, institution=INSTITUTIONS["CITY_L3"])
    with pytest.raises(ClaimError):
        adjudicate_purchase(claim=at_hospital, eligibility=BUYER, policy=POLICY, catalogue=CAT)


def test_a_temporary_entry_is_in_the_catalogue_only_between_its_dates():
    inside = purchase([("TEMP", "10.00", "1")], day=date(2023, 3, 31))
    after = purchase([("TEMP", "10.00", "1")], day=date(2023, 4, 1))
    before = purchase([("TEMP", "10.00", "1")], day=date(2022, 11, 30))
    assert (inside.acct_pay, after.acct_pay, before.acct_pay) == (D("10.00"), D("0.00"), D("0.00"))
    assert step(after, "purchase.account_payable").detail["catalogue_entry_not_in_force"] == "10.00"
    assert CATALOGUE_ENTRY_NOT_IN_FORCE in {w.code for w in after.warnings}

    # at a hospital: class A inside its dates, outside the catalogue (class C, self-paid) after them
    def hospital(day: date, line_time: datetime | None = None):
        line = FeeLine("L1", "TEMP", D("100.00"), D("1"), item_class="A", fee_ocur_time=line_time)
        claim = Claim(med_type="11", institution=INSTITUTIONS["CITY_L1"], begin_date=day, lines=(line,))
        return adjudicate(claim=claim, eligibility=BUYER, accumulators=Accumulators({}), policy=POLICY, catalogue=CAT)

    assert hospital(date(2023, 3, 1)).fulamt_ownpay_amt == D("0.00")
    late = hospital(date(2023, 4, 2))
    assert (late.fulamt_ownpay_amt, late.hifp_pay) == (D("100.00"), D("0.00"))
    assert CATALOGUE_ENTRY_NOT_IN_FORCE in late.warning_codes
    # a line's own time decides, in business time: 2023-03-31 16:30 UTC is 2023-04-01 00:30 in Shanghai
    crossing = hospital(date(2023, 3, 31), datetime(2023, 3, 31, 16, 30, tzinfo=UTC))
    assert crossing.fulamt_ownpay_amt == D("100.00")
    with pytest.raises(ValueError):
        CatalogueEntry("X", "x", "A", valid_from=date(2023, 2, 1), valid_to=date(2023, 1, 31))


def test_temporary_entries_load_from_a_catalogue_file(tmp_path):
    path = tmp_path / "temporary.toml"
    path.write_text(
        '[meta]\nname = "t"\n\n[[entries]]\nmed_list_codg = "T1"\nmed_list_name = "t"\nitem_class = "A"\n'
        'valid_from = 2022-12-07\nvalid_to = "2023-03-31"\n',
        encoding="utf-8",
    )
    entry = Catalogue.load(path).get("T1")
    assert (entry.valid_from, entry.valid_to) == (date(2022, 12, 7), date(2023, 3, 31))
    assert entry.in_force_on(date(2023, 3, 31)) and not entry.in_force_on(date(2023, 4, 1))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["OTC-IBU", "OTC-B", "GYM", "NEW", "TEMP"]),
            st.integers(0, 100_000).map(lambda fen: f"{D(fen) / 100:.2f}"),
            st.integers(1, 5).map(str),
        ),
        min_size=1,
        max_size=8,
    ),
    balance=st.integers(0, 200_000).map(lambda fen: f"{D(fen) / 100:.2f}"),
)
def test_a_purchase_never_overdraws_and_every_fen_is_accounted_for(lines, balance):
    result = purchase(lines, balance=balance)
    payable = step(result, "purchase.account_payable").amount
    assert result.acct_pay == min(payable, D(balance))
    assert result.acct_pay + result.psn_cash_pay == result.medfee_sumamt
    assert result.balc == D(balance) - result.acct_pay >= 0
    assert result.fund_pay_sumamt == 0 and dict(result.accumulator_delta) == {}


def test_the_monthly_credit_is_policy_data_rounded_half_up_to_the_fen():
    assert monthly_account_credit(policy=POLICY, psn_type="in_service", contribution_base=D("4321.25")) == D("86.43")
    assert monthly_account_credit(policy=POLICY, psn_type="in_service", contribution_base=D("4321.24")) == D("86.42")
    assert monthly_account_credit(policy=POLICY, psn_type="retired") == D("60.00")
    assert POLICY.account.in_service_monthly_rate == D("0.02")
    assert BOOK.policy_for(admdvs="621022", on=date(2022, 1, 1)).account.retired_monthly_amount == D("60.00")
    with pytest.raises(ValueError):
        monthly_account_credit(policy=POLICY, psn_type="in_service", contribution_base=None)
