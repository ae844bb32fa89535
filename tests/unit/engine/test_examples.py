"""Every worked example of tests/fixtures/settlements.json, to the fen, accumulators carried forward."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from engine_support import CATALOGUE, REPO_ROOT, build_claim, build_eligibility, example_institutions, settle

from services.settlement.engine import MONEY_FIELDS, Accumulators

EXAMPLES = REPO_ROOT / "tests" / "fixtures" / "settlements.json"


DATA = json.loads(EXAMPLES.read_text(encoding="utf-8"))
CASES = DATA["cases"]


def test_examples_file_has_cases() -> None:
    assert len(CASES) >= 10


def test_every_expected_field_is_checked() -> None:
    """An expected field test_example does not compare would pass unseen."""
    expected = {key for case in CASES for settlement in case["settlements"] for key in settlement["expected"]}
    assert expected <= {*MONEY_FIELDS, "warnings", "offsite"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_example(case: dict) -> None:
    institutions = example_institutions(DATA["institutions"])
    eligibility = build_eligibility(case["person"])
    balance = Decimal(case["person"].get("account_balance", "0.00"))
    totals = Accumulators()
    for index, settlement in enumerate(case["settlements"]):
        visit = settlement["visit"]
        for item in visit["items"]:
            if item.get("covid_only"):
                entry = CATALOGUE.get(item["med_list_codg"])
                assert entry is not None and entry.covid_only, f"{item['med_list_codg']} must be a catalogue entry"
        claim = build_claim(visit, institutions=institutions, account_balance=balance)
        result = settle(claim=claim, eligibility=eligibility, accumulators=totals)
        breakdown = result.to_breakdown()
        expected = settlement["expected"]
        where = f"{case['name']} settlement {index + 1}"
        for name in MONEY_FIELDS:
            if name in expected:
                assert breakdown[name] == expected[name], f"{where}: {name}"
        assert [w.code for w in result.warnings] == expected.get("warnings", []), where
        assert result.offsite is expected.get("offsite", False), where
        assert result.violations == (), where
        totals = totals.apply(result.accumulator_delta)
        balance = result.balc
