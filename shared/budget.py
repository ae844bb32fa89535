"""Global budget (总额预算) thresholds: when a year's budget use is flagged, from deploy/policy/budget.toml.

Read once at start-up by the prepayment service (GET /v1/budgets) and the reporting service
(institution indicators), so both flag the same use the same way. A missing or wrong file stops the
service that reads it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

BUDGET_POLICY = "budget.toml"  # in the policy folder (POLICY_DIR, default deploy/policy)
DEFAULT_POLICY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "policy"


class BudgetPolicyError(ValueError):
    """The budget policy file is missing or wrong: the service does not start."""


@dataclass(frozen=True, slots=True)
class BudgetThresholds:
    """Budget use is `warning` from used ≥ budget × warning, `exceeded` from used ≥ budget × exceeded."""

    warning: Decimal
    exceeded: Decimal


def parse_thresholds(doc: dict[str, Any], *, source: str) -> BudgetThresholds:
    """The `[status]` table of the budget policy, checked: two ratio strings, 0 < warning < exceeded."""
    status = doc.get("status")
    if set(doc) != {"status"} or not isinstance(status, dict) or set(status) != {"warning", "exceeded"}:
        raise BudgetPolicyError(f"{source}: expected exactly a [status] table with warning and exceeded")
    ratios: dict[str, Decimal] = {}
    for key in ("warning", "exceeded"):
        try:
            ratio = Decimal(status[key]) if isinstance(status[key], str) else None
        except InvalidOperation:
            ratio = None
        if ratio is None or not ratio.is_finite() or ratio <= 0:
            raise BudgetPolicyError(f'{source}: status.{key} must be a positive ratio string such as "0.80"')
        ratios[key] = ratio
    if ratios["warning"] >= ratios["exceeded"]:
        raise BudgetPolicyError(f"{source}: status.warning must be below status.exceeded")
    return BudgetThresholds(**ratios)


def load_thresholds(policy_dir: str | Path | None) -> BudgetThresholds:
    """budget.toml of the policy folder (default deploy/policy), read and checked."""
    path = Path(policy_dir or DEFAULT_POLICY_DIR) / BUDGET_POLICY
    try:
        with path.open("rb") as file:
            doc = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BudgetPolicyError(f"{path}: {exc}") from None
    return parse_thresholds(doc, source=str(path))


def budget_status(*, budget: Decimal, used: Decimal, thresholds: BudgetThresholds) -> str:
    """ok, warning or exceeded: exact comparisons of the year's use with the budget."""
    if used >= budget * thresholds.exceeded:
        return "exceeded"
    if used >= budget * thresholds.warning:
        return "warning"
    return "ok"
