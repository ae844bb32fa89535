"""Small factories shared by the engine tests (plain values, no DB)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.settlement.engine import (
    Accumulators,
    Adjudication,
    AidIdentity,
    Catalogue,
    ChronicQualification,
    Claim,
    EligibilitySnapshot,
    FeeLine,
    Institution,
    OffsiteRegistration,
    PolicyBook,
    adjudicate,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
POLICY_ROOT = REPO_ROOT / "deploy" / "policy"
BOOK = PolicyBook.load(POLICY_ROOT)
POLICY = BOOK.policy_for(admdvs="621000", on=date(2024, 1, 1))
CATALOGUE = Catalogue.load(POLICY_ROOT / "catalogue" / "reference.toml")

# Institutions of the hand-worked cases. Reference city 621000, counties 621022 / 621027.
INSTITUTIONS: dict[str, Institution] = {
    "CITY_L3": Institution("CITY_L3", "hospital", 3, "city", "621000"),
    "CITY_L2": Institution("CITY_L2", "hospital", 2, "city", "621000"),
    "CITY_L1": Institution("CITY_L1", "hospital", 1, "city", "621002"),
    "COUNTY_L3": Institution("COUNTY_L3", "hospital", 3, "county", "621022"),
    "COUNTY_L2": Institution("COUNTY_L2", "hospital", 2, "county", "621022"),
    "COUNTY_L1": Institution("COUNTY_L1", "hospital", 1, "county", "621027"),
    "PHARMACY": Institution("PHARMACY", "pharmacy", None, "county", "621022"),
    "OTHER_CITY_L3": Institution("OTHER_CITY_L3", "hospital", 3, "city", "620100"),  # same province
    "OTHER_CITY_COUNTY_L2": Institution("OTHER_CITY_COUNTY_L2", "hospital", 2, "county", "620102"),
    "OTHER_PROVINCE_L3": Institution("OTHER_PROVINCE_L3", "hospital", 3, "city", "610100"),
}


def d(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def build_lines(items: Iterable[Any]) -> tuple[FeeLine, ...]:
    """Items as dicts (examples file) or tuples (class, price[, cnt[, code]])."""
    lines = []
    for index, item in enumerate(items, start=1):
        if isinstance(item, dict):
            lines.append(
                FeeLine(
                    feedetl_sn=item.get("feedetl_sn", f"L{index}"),
                    med_list_codg=item["med_list_codg"],
                    med_list_name=item.get("med_list_name", ""),
                    item_class=item.get("item_class"),
                    pric=Decimal(item["pric"]),
                    cnt=Decimal(item.get("cnt", "1")),
                    preselfpay_prop=Decimal(item["preselfpay_prop"]) if "preselfpay_prop" in item else None,
                    days_supply=item.get("days_supply"),
                    det_item_fee_sumamt=(
                        Decimal(item["det_item_fee_sumamt"]) if "det_item_fee_sumamt" in item else None
                    ),
                )
            )
        else:
            item_class, price, *rest = item
            cnt = rest[0] if rest else "1"
            code = rest[1] if len(rest) > 1 else f"T{item_class}{index:03d}"
            lines.append(
                FeeLine(
                    feedetl_sn=f"L{index}",
                    med_list_codg=code,
                    item_class=item_class,
                    pric=Decimal(price),
                    cnt=Decimal(cnt),
                )
            )
    return tuple(lines)


def build_eligibility(person: dict[str, Any], *, psn_no: str = "P1") -> EligibilitySnapshot:
    return EligibilitySnapshot(
        psn_no=person.get("psn_no", psn_no),
        insutype=person["insutype"],
        psn_type=person.get("psn_type"),
        insuplc_admdvs=person.get("insuplc_admdvs", "621000"),
        aid_identities=tuple(
            AidIdentity(a["category"], d(a["start_date"]), d(a.get("lost_on"))) for a in person.get("aid", ())
        ),
        chronic_qualifications=tuple(
            ChronicQualification(c["disease"], d(c["start_date"]), d(c.get("end_date")), c.get("two_disease_class"))
            for c in person.get("chronic", ())
        ),
        offsite_registrations=tuple(
            OffsiteRegistration(r["mdtrtarea_admdvs"], d(r["start_date"]), d(r.get("end_date")))
            for r in person.get("offsite", ())
        ),
    )


def build_claim(
    visit: dict[str, Any], *, institutions: dict[str, Institution], account_balance: Decimal = Decimal("0.00")
) -> Claim:
    code = visit.get("fixmedins_code") or visit["inst"]
    prescriber = visit.get("prescriber")
    return Claim(
        mdtrt_id=visit.get("mdtrt_id"),
        med_type=visit["med_type"],
        institution=institutions[code],
        prescriber=institutions[prescriber] if prescriber else None,
        begin_date=d(visit.get("begn_date") or visit["date"]),
        end_date=d(visit.get("end_date")),
        diagnoses=tuple(visit.get("diagnoses", ())),
        chronic_disease=visit.get("chronic_disease"),
        referral_compliant=visit.get("referral_compliant", True),
        lines=build_lines(visit.get("items") or visit["lines"]),
        acct_used_flag=visit.get("acct_used_flag", False),
        account_balance=Decimal(visit.get("account_balance", account_balance)),
        acct_payer_psn_no=visit.get("acct_payer_psn_no"),
        admissions=tuple((d(a[0]), d(a[1])) for a in visit.get("admissions", ())),
    )


def example_institutions(raw: dict[str, dict[str, Any]]) -> dict[str, Institution]:
    return {
        code: Institution(code, spec.get("kind", "hospital"), spec["level"], spec["affiliation"], spec["admdvs"])
        for code, spec in raw.items()
    }


def settle(
    *,
    claim: Claim,
    eligibility: EligibilitySnapshot,
    accumulators: Accumulators | None = None,
) -> Adjudication:
    """Adjudicate with the reference policy/catalogue picked the way the service does."""
    policy = BOOK.policy_for(admdvs=eligibility.insuplc_admdvs, on=claim.end_date or claim.begin_date)
    return adjudicate(
        claim=claim,
        eligibility=eligibility,
        accumulators=accumulators or Accumulators(),
        policy=policy,
        catalogue=CATALOGUE,
    )


def with_lines(claim: Claim, lines: tuple[FeeLine, ...]) -> Claim:
    return replace(claim, lines=lines)


def accumulators(values: dict[str, str] | None = None) -> Accumulators:
    return Accumulators({k: Decimal(v) for k, v in (values or {}).items()})
