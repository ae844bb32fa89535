"""Identities that carry no aid (防返贫监测对象, `monitored`): watched by supervision (DOMAIN §13), paid nothing by
medical aid (§5), and not an unknown category either — the policy names them (`medical_aid.without_aid`)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from engine_support import INSTITUTIONS, POLICY_ROOT, build_claim, build_eligibility, settle

from services.settlement.engine import PolicyBook, PolicyError

REFERENCE = (POLICY_ROOT / "621000" / "2022-01-01.toml").read_text(encoding="utf-8")


def _op(amount: str) -> object:
    return build_claim(
        {"inst": "CITY_L1", "med_type": "11", "date": "2024-03-01", "lines": [("A", amount)]}, institutions=INSTITUTIONS
    )


def _person(*categories: str) -> object:
    aid = [{"category": c, "start_date": "2023-01-01"} for c in categories]
    return build_eligibility({"insutype": "390", "aid": aid})


@pytest.mark.parametrize(
    ("categories", "maf_pay", "warnings"),
    [
        (("monitored",), Decimal("0.00"), ()),  # no aid, and no AID_CATEGORY_UNKNOWN
        (("monitored", "dibao"), None, ()),  # dibao pays as it would alone
        (("martian",), Decimal("0.00"), ("AID_CATEGORY_UNKNOWN",)),  # a category nobody named still warns
    ],
)
def test_a_watched_identity_is_neither_aid_nor_unknown(categories, maf_pay, warnings) -> None:
    result = settle(claim=_op("3000.00"), eligibility=_person(*categories))
    alone = settle(claim=_op("3000.00"), eligibility=_person("dibao"))
    assert alone.maf_pay > 0
    assert result.warning_codes == warnings
    assert result.maf_pay == (alone.maf_pay if maf_pay is None else maf_pay)


def test_a_category_both_paying_and_without_aid_is_refused(tmp_path: Path) -> None:
    text = REFERENCE.replace('without_aid = ["monitored"]', 'without_aid = ["monitored", "dibao"]', 1)
    assert text != REFERENCE
    (tmp_path / "621000").mkdir()
    (tmp_path / "621000" / "2022-01-01.toml").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="without_aid"):
        PolicyBook.load(tmp_path)
