"""Policy files: validation at load (file and key named) and lookup by region and date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from engine_support import POLICY_ROOT

from services.settlement.engine import Catalogue, PolicyBook, PolicyError, PolicyNotFound

REFERENCE = (POLICY_ROOT / "621000" / "2022-01-01.toml").read_text(encoding="utf-8")


def _book(tmp_path: Path, files: dict[str, str]) -> PolicyBook:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return PolicyBook.load(tmp_path)


def _broken(tmp_path: Path, old: str, new: str) -> PolicyError:
    assert old in REFERENCE, old
    with pytest.raises(PolicyError) as info:
        _book(tmp_path, {"621000/2022-01-01.toml": REFERENCE.replace(old, new, 1)})
    return info.value


def test_reference_policy_values() -> None:
    book = PolicyBook.load(POLICY_ROOT)
    policy = book.policy_for(admdvs="621000", on=date(2022, 1, 1))
    assert policy.version == "621000@2022-01-01"
    assert policy.scheme("310").outpatient.deductible_for(3) == Decimal("300.00")
    assert policy.scheme("310").inpatient.ratio_for(psn_type="retired", level=1) == Decimal("0.95")
    assert policy.scheme("390").inpatient.ratio_for(psn_type=None, level=3) == Decimal("0.60")
    assert policy.scheme("390").chronic_per_disease["diabetes"].annual_cap == Decimal("400.00")
    assert policy.critical_illness.aid_annual_cap is None
    assert policy.medical_aid.categories["dibao"].annual_deductible == Decimal("1000.00")
    assert policy.covid.suspected_shared.shares == (("city", Decimal("0.60")), ("county", Decimal("0.40")))
    assert (policy.prescription.max_days_supply, policy.prescription.max_days_supply_chronic) == (30, 84)
    assert policy.prescription.validity_days == 3


@pytest.mark.parametrize(
    ("admdvs", "on"),
    [("621000", date(2022, 1, 1)), ("621022", date(2024, 4, 12)), ("621027", date(2030, 12, 31))],
)
def test_policy_for_matches_the_pooling_area(admdvs: str, on: date) -> None:
    assert PolicyBook.load(POLICY_ROOT).policy_for(admdvs=admdvs, on=on).region == "621000"


def test_policy_for_outside_any_region_or_before_start() -> None:
    book = PolicyBook.load(POLICY_ROOT)
    with pytest.raises(PolicyNotFound, match="610100"):
        book.policy_for(admdvs="610100", on=date(2024, 1, 1))
    with pytest.raises(PolicyNotFound, match="2021-12-31"):
        book.policy_for(admdvs="621000", on=date(2021, 12, 31))


def test_versions_replace_each_other(tmp_path: Path) -> None:
    newer = REFERENCE.replace("effective_from = 2022-01-01", "effective_from = 2025-01-01").replace(
        'annual_cap = "2000.00"', 'annual_cap = "2500.00"'
    )
    book = _book(tmp_path, {"621000/2022-01-01.toml": REFERENCE, "621000/2025-01-01.toml": newer})
    assert book.policy_for(admdvs="621022", on=date(2024, 12, 31)).scheme("310").outpatient.annual_cap == 2000
    assert book.policy_for(admdvs="621022", on=date(2025, 1, 1)).scheme("310").outpatient.annual_cap == 2500


def test_overlapping_effective_dates_rejected(tmp_path: Path) -> None:
    first = REFERENCE.replace("effective_from = 2022-01-01", "effective_from = 2022-01-01\neffective_to = 2025-06-30")
    second = REFERENCE.replace("effective_from = 2022-01-01", "effective_from = 2025-01-01")
    with pytest.raises(PolicyError, match="overlap") as info:
        _book(tmp_path, {"621000/2022-01-01.toml": first, "621000/2025-01-01.toml": second})
    assert "2025-01-01.toml" in str(info.value) and "2022-01-01.toml" in str(info.value)


def test_effective_to_ends_a_version(tmp_path: Path) -> None:
    ended = REFERENCE.replace("effective_from = 2022-01-01", "effective_from = 2022-01-01\neffective_to = 2023-12-31")
    book = _book(tmp_path, {"621000/2022-01-01.toml": ended})
    with pytest.raises(PolicyNotFound):
        book.policy_for(admdvs="621000", on=date(2024, 1, 1))


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ('annual_cap = "2000.00"', "", "schemes.310.outpatient.annual_cap", "missing"),
        (
            'ratio.retired = { 1 = "0.75"',
            'ratio.retired = { 1 = "1.75"',
            "schemes.310.outpatient.ratio.retired.1",
            "outside",
        ),
        ('threshold = "15000.00"', 'threshold = "-15000.00"', "critical_illness.threshold", "negative"),
        (
            'outpatient_annual_cap = "10000.00"',
            "outpatient_annual_cap = 10000",
            "medical_aid.outpatient_annual_cap",
            "string",
        ),
        ('annual_cap = "400.00"', 'annual_cap = "400.001"', "schemes.390.outpatient.annual_cap", "decimals"),
        (
            'shares = { city = "0.60", county = "0.40" }',
            'shares = { city = "0.60", county = "0.30" }',
            "covid.subsidy.suspected_shared.shares",
            "sum",
        ),
        (
            'categories = ["tekun", "orphan", "dibao", "fanpin"]',
            'categories = ["tekun", "nobody"]',
            "critical_illness.aid_recipients.categories",
            "nobody",
        ),
        ("validity_days = 3", "validity_days = 3\nvaliditydays = 4", "prescription.validitydays", "unknown key"),
        (
            '{ width = "unlimited", ratio = "0.80" }',
            '{ width = "50000.00", ratio = "0.80" }',
            "critical_illness.segments[2].width",
            "unlimited",
        ),
        ('region = "621000"', 'region = "6210"', "meta.region", "6-digit"),
    ],
)
def test_invalid_policy_names_file_and_key(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    error = _broken(tmp_path, old, new)
    assert error.key == key
    assert error.file.endswith("2022-01-01.toml")
    assert message in str(error)


def test_file_name_must_match_effective_date(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="effective date"):
        _book(tmp_path, {"621000/2023-01-01.toml": REFERENCE})


def test_region_must_match_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="folder"):
        _book(tmp_path, {"622000/2022-01-01.toml": REFERENCE})


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        _book(tmp_path, {"621000/2022-01-01.toml": "[meta\n"})


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy files"):
        PolicyBook.load(tmp_path)


def test_reference_catalogue() -> None:
    catalogue = Catalogue.load(POLICY_ROOT / "catalogue" / "reference.toml")
    covid_only = {entry.med_list_codg for entry in catalogue if entry.covid_only}
    assert covid_only == {"COVID-NMTW", "COVID-ABWD", "COVID-IVIG", "COVID-SFJD", "COVID-QFPD"}
    antigen = catalogue.get("COVID-AGT")
    assert antigen is not None and antigen.price_cap == Decimal("8.00") and not antigen.covid_only


def test_catalogue_validation(tmp_path: Path) -> None:
    path = tmp_path / "cat.toml"
    path.write_text('[[entries]]\nmed_list_codg = "X"\nmed_list_name = "x"\nitem_class = "D"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="entries\\[0\\].item_class"):
        Catalogue.load(path)
