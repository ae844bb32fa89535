"""Load and validate policy files (deploy/policy/<region>/<effective_from>.toml); look one up by region and date."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

from . import accumulators as acc
from .errors import PolicyError, PolicyNotFound
from .money import ONE
from .policy import (
    AccountRule,
    AidCategory,
    CovidRule,
    CriticalIllnessRule,
    MedicalAidRule,
    Policy,
    PoolRule,
    PrescriptionRule,
    SchemeRules,
    Segment,
    SubsidySplit,
    TiltRule,
)
from .toml_reader import TomlReader, read_toml

LEVELS = (1, 2, 3)
PERSON_KEYS = ("any", "in_service", "retired")
REQUIRED_SCHEMES = ("310", "390")
SUBSIDY_PAYERS = ("central", "provincial", "city", "county")


# ---------------------------------------------------------------- parsing one file


def parse_policy_file(path: Path) -> Policy:
    """Read and validate one policy file; every error names the file and the key."""
    doc = read_toml(path)
    meta = doc.table("meta")
    region = meta.string("region")
    if len(region) != 6 or not region.isdigit():
        raise meta.error("region", f"{region!r} is not a 6-digit admdvs")
    effective_from = meta.day("effective_from")
    effective_to = meta.day("effective_to") if meta.has("effective_to") else None
    if effective_to is not None and effective_to < effective_from:
        raise meta.error("effective_to", "is before effective_from")
    name = meta.string("name")

    items = doc.table("items")
    limits = doc.table("limits")
    schemes_table = doc.table("schemes")
    schemes = {}
    for insutype in schemes_table.keys():
        if insutype not in REQUIRED_SCHEMES:
            raise schemes_table.error(insutype, "unknown insutype (expected 310 or 390)")
        schemes[insutype] = _scheme(schemes_table.table(insutype), insutype=insutype)
    for insutype in REQUIRED_SCHEMES:
        if insutype not in schemes:
            raise schemes_table.error(insutype, "missing scheme")

    aid = _medical_aid(doc.table("medical_aid"))
    critical = _critical_illness(doc.table("critical_illness"), aid_categories=aid.categories)
    offsite = doc.table("offsite")
    admission = doc.table("admission")
    policy = Policy(
        region=region,
        name=name,
        effective_from=effective_from,
        effective_to=effective_to,
        source=str(path),
        default_preselfpay_prop=items.ratio("default_preselfpay_prop"),
        schemes=schemes,
        offsite_unregistered_reduction=offsite.ratio("unregistered_ratio_reduction"),
        pre_admission_merge_days=admission.integer("pre_admission_merge_days", maximum=30),
        max_lines_per_claim=limits.integer("max_lines_per_claim", minimum=1),
        critical_illness=critical,
        medical_aid=aid,
        covid=_covid(doc.table("covid")),
        account=_account(doc.table("account")),
        prescription=_prescription(doc.table("prescription")),
    )
    doc.finish()
    return policy


def _scheme(table: TomlReader, *, insutype: str) -> SchemeRules:
    table.string("name")
    persons = ("in_service", "retired") if insutype == "310" else ("any",)
    outpatient = _level_pool(
        table.table("outpatient"),
        pool="outpatient",
        persons=persons,
        accumulator=acc.OUTPATIENT_FUND_PAID,
        deductible_accumulator=acc.OUTPATIENT_DEDUCTIBLE_PAID,
    )
    inpatient = _level_pool(
        table.table("inpatient"),
        pool="inpatient",
        persons=persons,
        accumulator=acc.INPATIENT_FUND_PAID,
        deductible_accumulator=None,
    )
    chronic_table = table.table("chronic")
    chronic = _flat_pool(
        chronic_table,
        persons=persons,
        accumulator=acc.CHRONIC_FUND_PAID,
        deductible_accumulator=acc.CHRONIC_DEDUCTIBLE_PAID,
    )
    per_disease = {}
    if chronic_table.has("per_disease"):
        diseases = chronic_table.table("per_disease")
        for disease in diseases.keys():
            per_disease[disease] = _flat_pool(
                diseases.table(disease),
                persons=persons,
                accumulator=acc.chronic_disease_fund_paid(disease),
                deductible_accumulator=acc.chronic_disease_deductible_paid(disease),
            )
    return SchemeRules(
        insutype=insutype, outpatient=outpatient, chronic=chronic, chronic_per_disease=per_disease, inpatient=inpatient
    )


def _person_keys(table: TomlReader, *, persons: tuple[str, ...]) -> list[str]:
    found = table.keys()
    for person in found:
        if person not in PERSON_KEYS:
            raise table.error(person, f"unknown person type (expected one of {', '.join(PERSON_KEYS)})")
    if "any" in found:
        if len(found) > 1:
            raise table.error(None, "'any' excludes other person types")
        return found
    for person in persons:
        if person not in found:
            raise table.error(person, "missing person type")
    return found


def _expand_persons(person: str) -> tuple[str | None, ...]:
    return (None, "in_service", "retired") if person == "any" else (person,)


def _level_pool(
    table: TomlReader, *, pool: str, persons: tuple[str, ...], accumulator: str, deductible_accumulator: str | None
) -> PoolRule:
    """A pool priced by institution level (outpatient: annual 累计补差 deductible; inpatient: per admission)."""
    deductibles = table.table("deductible")
    by_level: dict[int | None, Decimal] = {}
    for level in LEVELS:
        by_level[level] = deductibles.amount(str(level))
    ratios = table.table("ratio")
    ratio_by: dict[tuple[str | None, int | None], Decimal] = {}
    for person in _person_keys(ratios, persons=persons):
        levels = ratios.table(person)
        for level in LEVELS:
            value = levels.ratio(str(level))
            for expanded in _expand_persons(person):
                ratio_by[(expanded, level)] = value
    cap = table.amount("annual_cap")
    return PoolRule(
        pool=pool,
        path=table.path,
        deductible_kind="annual" if deductible_accumulator else "per_admission",
        deductible_by_level=by_level,
        ratio_by=ratio_by,
        annual_cap=cap,
        accumulator=accumulator,
        deductible_accumulator=deductible_accumulator,
    )


def _flat_pool(
    table: TomlReader, *, persons: tuple[str, ...], accumulator: str, deductible_accumulator: str
) -> PoolRule:
    """A chronic pool: one annual deductible and one ratio per person type, any level."""
    deductible = table.amount("annual_deductible")
    cap = table.amount("annual_cap")
    ratios = table.table("ratio")
    ratio_by: dict[tuple[str | None, int | None], Decimal] = {}
    for person in _person_keys(ratios, persons=persons):
        value = ratios.ratio(person)
        for expanded in _expand_persons(person):
            for level in (None, *LEVELS):
                ratio_by[(expanded, level)] = value
    return PoolRule(
        pool="chronic",
        path=table.path,
        deductible_kind="annual",
        deductible_by_level={level: deductible for level in (None, *LEVELS)},
        ratio_by=ratio_by,
        annual_cap=cap,
        accumulator=accumulator,
        deductible_accumulator=deductible_accumulator,
    )


def _critical_illness(table: TomlReader, *, aid_categories: Mapping[str, AidCategory]) -> CriticalIllnessRule:
    segments = []
    rows = table.tables("segments")
    if not rows:
        raise table.error("segments", "needs at least one segment")
    for index, row in enumerate(rows):
        width = row.amount_or_unlimited("width")
        last = index == len(rows) - 1
        if (width is None) != last:
            raise row.error("width", 'only the last segment is (and must be) "unlimited"')
        if width is not None and width <= 0:
            raise row.error("width", "must be positive")
        segments.append(Segment(width=width, ratio=row.ratio("ratio")))
    tilt = table.table("aid_recipients")
    categories = tilt.strings("categories")
    for category in categories:
        if category not in aid_categories:
            raise tilt.error("categories", f"{category!r} is not a medical_aid category")
    bonus = tilt.ratio("ratio_bonus")
    if any(s.ratio + bonus > ONE for s in segments):
        raise tilt.error("ratio_bonus", "a segment ratio plus the bonus exceeds 1")
    threshold = table.amount("threshold")
    aid_threshold = tilt.amount("threshold")
    return CriticalIllnessRule(
        threshold=threshold,
        segments=tuple(segments),
        annual_cap=table.amount_or_unlimited("annual_cap"),
        aid_categories=frozenset(categories),
        aid_threshold=aid_threshold,
        aid_ratio_bonus=bonus,
        aid_annual_cap=tilt.amount_or_unlimited("annual_cap"),
    )


def _medical_aid(table: TomlReader) -> MedicalAidRule:
    categories_table = table.table("categories")
    categories = {}
    for order, name in enumerate(categories_table.keys()):
        row = categories_table.table(name)
        deductible = row.amount("annual_deductible")
        categories[name] = AidCategory(name=name, annual_deductible=deductible, ratio=row.ratio("ratio"), order=order)
    if not categories:
        raise categories_table.error(None, "needs at least one category")
    without_aid = frozenset(table.strings("without_aid")) if table.has("without_aid") else frozenset()
    if without_aid & categories.keys():
        raise table.error("without_aid", f"names categories that carry aid: {sorted(without_aid & categories.keys())}")
    tilt = table.table("tilt")
    tilt_threshold = tilt.amount("threshold")
    outpatient_cap = table.amount("outpatient_annual_cap")
    inpatient_cap = table.amount("chronic_inpatient_annual_cap")
    return MedicalAidRule(
        categories=categories,
        outpatient_annual_cap=outpatient_cap,
        chronic_inpatient_annual_cap=inpatient_cap,
        noncompliant_referral_reduction=table.ratio("noncompliant_referral_reduction"),
        identity_window=table.string("identity_window", choices=("end_of_loss_month",)),
        tilt=TiltRule(
            threshold=tilt_threshold, ratio=tilt.ratio("ratio"), annual_cap=tilt.amount_or_unlimited("annual_cap")
        ),
        without_aid=without_aid,
    )


def _split(table: TomlReader) -> SubsidySplit:
    advance = table.string("advance_payer", choices=("affiliation", "city", "county"))
    shares_table = table.table("shares")
    shares = []
    for payer in shares_table.keys():
        if payer not in SUBSIDY_PAYERS:
            raise shares_table.error(payer, f"unknown payer (expected one of {', '.join(SUBSIDY_PAYERS)})")
        shares.append((payer, shares_table.ratio(payer)))
    if not shares or sum(share for _, share in shares) != ONE:
        raise table.error("shares", "shares must sum to exactly 1")
    return SubsidySplit(advance_payer=advance, shares=tuple(shares))


def _covid(table: TomlReader) -> CovidRule:
    subsidy = table.table("subsidy")
    return CovidRule(
        confirmed_diagnoses=frozenset(table.strings("confirmed_diagnoses")),
        suspected_diagnoses=frozenset(table.strings("suspected_diagnoses")),
        offsite_reduction_exempt=table.boolean("offsite_reduction_exempt"),
        confirmed=_split(subsidy.table("confirmed")),
        suspected_city=_split(subsidy.table("suspected_city")),
        suspected_shared=_split(subsidy.table("suspected_shared")),
    )


def _account(table: TomlReader) -> AccountRule:
    return AccountRule(
        in_service_monthly_rate=table.ratio("in_service_monthly_rate"),
        retired_monthly_amount=table.amount("retired_monthly_amount"),
    )


def _prescription(table: TomlReader) -> PrescriptionRule:
    return PrescriptionRule(
        validity_days=table.integer("validity_days", minimum=1, maximum=366),
        max_days_supply=table.integer("max_days_supply", minimum=1, maximum=366),
        max_days_supply_chronic=table.integer("max_days_supply_chronic", minimum=1, maximum=366),
    )


# ---------------------------------------------------------------- the book


class PolicyBook:
    """All regions and versions; `policy_for` picks the one in force."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        by_region: dict[str, list[Policy]] = {}
        for policy in policies:
            by_region.setdefault(policy.region, []).append(policy)
        for region, versions in by_region.items():
            versions.sort(key=lambda p: p.effective_from)
            for earlier, later in zip(versions, versions[1:]):
                if earlier.effective_from == later.effective_from or (
                    earlier.effective_to is not None and earlier.effective_to >= later.effective_from
                ):
                    raise PolicyError(
                        f"effective dates overlap with {earlier.source} (region {region})",
                        file=later.source,
                        key="meta.effective_from",
                    )
        self._by_region = {region: tuple(versions) for region, versions in by_region.items()}

    @classmethod
    def load(cls, root: Path) -> PolicyBook:
        """Load every `<region>/<YYYY-MM-DD>.toml` under root (other folders, e.g. catalogue/, are skipped)."""
        root = Path(root)
        if not root.is_dir():
            raise PolicyError("policy folder not found", file=str(root))
        policies = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
            for path in sorted(folder.glob("*.toml")):
                policy = parse_policy_file(path)
                if policy.region != folder.name:
                    raise PolicyError(
                        f"region {policy.region} differs from its folder {folder.name}",
                        file=str(path),
                        key="meta.region",
                    )
                if path.stem != policy.effective_from.isoformat():
                    raise PolicyError(
                        f"file name must be the effective date {policy.effective_from.isoformat()}.toml",
                        file=str(path),
                        key="meta.effective_from",
                    )
                policies.append(policy)
        if not policies:
            raise PolicyError("no policy files (<region>/<YYYY-MM-DD>.toml)", file=str(root))
        return cls(policies)

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_region))

    def versions(self, region: str) -> tuple[Policy, ...]:
        return self._by_region.get(region, ())

    def policy_for(self, *, admdvs: str, on: date) -> Policy:
        """The policy in force on `on` for the pooling area of `admdvs` (exact, city 4 digits, province 2 digits)."""
        if len(admdvs) != 6 or not admdvs.isdigit():
            raise PolicyNotFound(f"admdvs {admdvs!r} is not a 6-digit division code")
        for region in (admdvs, admdvs[:4] + "00", admdvs[:2] + "0000"):
            versions = self._by_region.get(region)
            if versions:
                return _version_on(versions, on=on, region=region)
        raise PolicyNotFound(f"no policy for pooling area of {admdvs} (regions: {', '.join(self.regions)})")


def _version_on(versions: tuple[Policy, ...], *, on: date, region: str) -> Policy:
    for index in range(len(versions) - 1, -1, -1):
        policy = versions[index]
        if policy.effective_from <= on:
            if policy.effective_to is not None and on > policy.effective_to:
                break
            return policy
    raise PolicyNotFound(f"no policy of region {region} in force on {on.isoformat()}")
