"""Adjudications per second for a 20-line inpatient claim with medical aid, against a bare-sum baseline.

Run: .venv/bin/python benchmarks/engine.py [--seconds 2] [--profile]
One process, one core. The baseline only sums the 20 lines (Decimal price × quantity) in the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from services.settlement.engine import (  # noqa: E402
    Accumulators,
    AidIdentity,
    Catalogue,
    Claim,
    EligibilitySnapshot,
    FeeLine,
    Institution,
    PolicyBook,
    adjudicate,
)


def build_inputs() -> dict[str, object]:
    """A dibao resident, 20 fee lines (A/B/C and two catalogue codes), mid-year accumulators."""
    book = PolicyBook.load(REPO_ROOT / "deploy" / "policy")
    catalogue = Catalogue.load(REPO_ROOT / "deploy" / "policy" / "catalogue" / "reference.toml")
    classes = ("A", "A", "B", "C", "A")
    lines = tuple(
        FeeLine(
            feedetl_sn=f"{index:04d}",
            med_list_codg="COVID-AGT" if index == 7 else f"X{index:03d}",
            item_class=classes[index % len(classes)],
            pric=Decimal(f"{37 + index * 13}.{index:02d}"),
            cnt=Decimal(1 + index % 4),
            det_item_fee_sumamt=None,
        )
        for index in range(20)
    )
    claim = Claim(
        mdtrt_id="BENCH",
        med_type="21",
        institution=Institution("H1", "hospital", 3, "city", "621000"),
        begin_date=date(2024, 6, 1),
        end_date=date(2024, 6, 12),
        diagnoses=("I63.9",),
        lines=lines,
    )
    eligibility = EligibilitySnapshot(
        psn_no="P-BENCH",
        insutype="390",
        insuplc_admdvs="621022",
        aid_identities=(AidIdentity("dibao", date(2023, 1, 1)),),
    )
    accumulators = Accumulators(
        {
            "inpatient.fund_paid": Decimal("12000.00"),
            "critical_illness.burden": Decimal("9000.00"),
            "aid.deductible_paid": Decimal("400.00"),
            "aid.inpatient_paid": Decimal("3000.00"),
            "tilt.burden": Decimal("8000.00"),
        }
    )
    policy = book.policy_for(admdvs=eligibility.insuplc_admdvs, on=claim.end_date or claim.begin_date)
    return {
        "claim": claim,
        "eligibility": eligibility,
        "accumulators": accumulators,
        "policy": policy,
        "catalogue": catalogue,
    }


def _batch(work: Callable[[], object]) -> int:
    """Calls per timed batch, so that one batch takes about 20 ms."""
    batch = 1
    while True:
        start = time.perf_counter()
        for _ in range(batch):
            work()
        if time.perf_counter() - start > 0.02:
            return batch
        batch *= 2


def rates(engine: Callable[[], object], baseline: Callable[[], object], *, seconds: float) -> tuple[float, float]:
    """Calls per second of each: rounds interleaved (both see the same machine load), best round kept."""
    batches = (_batch(engine), _batch(baseline))
    best = [0.0, 0.0]
    rounds = 8
    for _ in range(rounds):
        for index, work in enumerate((engine, baseline)):
            start = time.perf_counter()
            calls = 0
            while time.perf_counter() - start < seconds / rounds / 2:
                for _ in range(batches[index]):
                    work()
                calls += batches[index]
            best[index] = max(best[index], calls / (time.perf_counter() - start))
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="total measuring time")
    parser.add_argument("--profile", action="store_true", help="print the top functions by own time")
    args = parser.parse_args()
    inputs = build_inputs()
    lines = inputs["claim"].lines  # type: ignore[attr-defined]

    def engine() -> object:
        return adjudicate(**inputs)  # type: ignore[arg-type]

    def baseline() -> object:
        total = Decimal(0)
        for line in lines:
            total += line.pric * line.cnt
        return total

    result = adjudicate(**inputs)  # type: ignore[arg-type]
    print(
        f"claim: 20 lines, inpatient, dibao; hifp {result.hifp_pay} hifmi {result.hifmi_pay} maf {result.maf_pay} "
        f"tilt {result.tilt_aid_pay} cash {result.psn_cash_pay}, {len(result.trace)} trace steps"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5000):
            engine()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return
    engine_rate, baseline_rate = rates(engine, baseline, seconds=args.seconds)
    print(f"adjudicate:           {engine_rate:12,.0f} /s  ({1e6 / engine_rate:8.1f} µs each)")
    print(f"baseline (sum lines): {baseline_rate:12,.0f} /s  ({1e6 / baseline_rate:8.1f} µs each)")
    print(f"ratio baseline/engine: {baseline_rate / engine_rate:.1f}x")


if __name__ == "__main__":
    main()
