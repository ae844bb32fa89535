"""The supervision policy is versioned data (deploy/policy/supervision/<effective_from>.toml), checked when the
reporting service starts: a missing or wrong file stops it with a message naming the file and the key."""

from __future__ import annotations

import shutil
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import services.reporting.app as reporting_module
from shared.service import create_app
from shared.supervision import (
    DEFAULT_POLICY_DIR,
    SupervisionBook,
    SupervisionPolicyError,
    load_supervision,
    parse_policy,
)
from shared.testing import make_settings, running_app

REFERENCE = DEFAULT_POLICY_DIR / "supervision" / "2022-01-01.toml"


def _doc() -> dict:
    with REFERENCE.open("rb") as file:
        return tomllib.load(file)


def test_the_reference_policy_holds_the_values_of_domain_13():
    policy = load_supervision(None).on(date(2022, 6, 1))
    assert policy.version == "supervision/2022-01-01"
    assert policy.high_cost.thresholds == (Decimal("10000.00"), Decimal("30000.00"))
    assert {"dibao", "dibian", "monitored", "tekun", "orphan", "tekun_worker", "fanpin"} == policy.high_cost.categories
    assert (policy.price.rise_ratio, policy.price.baseline_days, policy.price.baseline_min_lines) == (
        Decimal("1.20"),
        14,
        5,
    )
    fraud = policy.fraud
    assert (fraud.visit_window_days, fraud.visit_max, fraud.exam_window_days, fraud.idle_stay_days) == (30, 8, 7, 3)
    assert (fraud.supply_window_days, fraud.supply_max_days, fraud.institutions_per_day) == (90, 104, 3)
    limits = policy.indicators
    assert limits.essential_min == {1: Decimal("0.90"), 2: Decimal("0.80"), 3: Decimal("0.60")}
    assert (limits.growth_max, limits.self_pay_max, limits.exam_share_max) == (
        Decimal("0.10"),
        Decimal("0.20"),
        Decimal("0.30"),
    )
    assert (limits.outside_catalogue_max, limits.aid_self_pay_max) == (Decimal("0.10"), Decimal("0.10"))
    assert policy.filing.deadline.isoformat() == "08:30:00" and "621027" in policy.filing.areas


def test_the_first_version_also_judges_the_days_before_it():
    book = load_supervision(None)
    assert book.on(date(1995, 1, 1)).version == book.versions[0].version


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["high_cost"].update(thresholds=["30000.00", "10000.00"]), "must rise"),
        (lambda d: d["high_cost"].update(thresholds=["ten thousand"]), "high_cost.thresholds"),
        (lambda d: d["high_cost"].update(categories=[]), "high_cost.categories"),
        (lambda d: d["price"].update(rise_ratio="0.90"), "above 1"),
        (lambda d: d["price"].update(rise_ratio=1.2), "price.rise_ratio"),
        (lambda d: d["price"]["caps"].update({"OTC-IBU": "-1.00"}), "price.caps.OTC-IBU"),
        (lambda d: d["fraud"].update(visit_max=0), "fraud.visit_max"),
        (lambda d: d["fraud"].update(exam_window_days="7"), "fraud.exam_window_days"),
        (lambda d: d["fraud"].pop("idle_stay_days"), "fraud.idle_stay_days: missing"),
        (lambda d: d["fraud"].update(typo=1), "unknown keys typo"),
        (lambda d: d["indicators"]["essential_min"].pop("3"), "levels 1, 2 and 3"),
        (lambda d: d["indicators"].update(self_pay_max="1.50"), "at most 1"),
        (lambda d: d["filing"].update(deadline="8:30"), "HH:MM"),
        (lambda d: d["filing"].update(areas=["62100"]), "6-digit"),
        (lambda d: d["filing"].update(reports=["weekly"]), "filing.reports"),
        (lambda d: d["meta"].update(effective_from="2022-01-01"), "TOML date"),
        (lambda d: d.pop("price"), ".price: missing"),
    ],
)
def test_a_wrong_policy_is_refused_naming_the_key(change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(SupervisionPolicyError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_policy(doc, source="policy.toml")


def test_versions_are_told_apart(tmp_path: Path):
    folder = tmp_path / "supervision"
    folder.mkdir()
    with pytest.raises(SupervisionPolicyError, match="no supervision policy files"):
        load_supervision(tmp_path)
    shutil.copy(REFERENCE, folder / "2023-01-01.toml")
    with pytest.raises(SupervisionPolicyError, match="named by meta.effective_from"):
        load_supervision(tmp_path)
    first = parse_policy(_doc(), source="a")
    with pytest.raises(SupervisionPolicyError, match="same day"):
        SupervisionBook([first, first])


async def test_the_service_does_not_start_with_a_wrong_policy(pg, broker, tmp_path: Path):
    shutil.copy(DEFAULT_POLICY_DIR / "budget.toml", tmp_path / "budget.toml")
    (tmp_path / "supervision").mkdir()
    (tmp_path / "supervision" / "2022-01-01.toml").write_text(
        REFERENCE.read_text(encoding="utf-8").replace("visit_max = 8", 'visit_max = "8"'), encoding="utf-8"
    )
    settings = make_settings(
        "reporting", database_url=pg.url, bootstrap=broker.bootstrap, POLICY_DIR=str(tmp_path), CONSUMERS_ENABLED=False
    )
    with pytest.raises(SupervisionPolicyError, match="fraud.visit_max"):
        async with running_app(create_app(reporting_module.spec, settings), ready=False):
            pass
