"""Presettle and settle of a visit: the unit of work around the pure engine.

Before the transaction: one query loads the visit, its institution, its fee lines (and those of
outpatient visits merged into it), the person's admissions and balance; one eligibility call.
Without an Idempotency-Key or a personal account, the engine runs on the accumulators as loaded and one
statement commits everything if they are still at the version read (_settle_as_loaded). Otherwise, or
when another settlement of the person-year came first, in a transaction (retried on deadlock):
idempotency key → lock accumulators (psn_no, year) → [lock payer account] → engine → the same
statement: accumulators, visits to `settled` (guarded by their line versions), settlement row and
outbox rows → account movement → stored answer. Commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.settlement.eligibility_client import Person
from services.settlement.engine import (
    Accumulators,
    Adjudication,
    Claim,
    EngineError,
    Institution,
    Policy,
    accumulator_year,
    rule_date,
)
from services.settlement.runtime import Ctx, engine_problem
from services.settlement.schemas import SettleIn
from services.settlement.settle.inputs import (
    account_payer,
    fee_line,
    institution_of,
    person_for_claim,
    reject_violations,
    run_engine,
    with_violations_as_warnings,
)
from services.settlement.settle.payloads import VisitFacts, breakdown, settlement_record
from services.settlement.store.ledger import (
    AccumulatorsChanged,
    VisitsChanged,
    lock_account,
    lock_accumulators,
    new_id,
    write_settlement,
)
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import RETRYABLE, Sql, Unit
from shared.idempotency import Answer
from shared.money import ZERO
from shared.problems import Problem, not_found

_LOAD_VISIT = Sql("""
SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.med_type, v.begndate, v.enddate, v.diagnoses, v.chronic_disease,
       v.referral_compliant, v.status, v.merged_into, v.lines_version,
       i.kind, i.level, i.affiliation, i.admdvs, i.suspended, m.merged,
       (SELECT coalesce(json_agg(json_build_array(l.mdtrt_id, l.feedetl_sn, l.med_list_codg, l.med_list_name,
                   l.item_class, l.pric::text, l.cnt::text, l.det_item_fee_sumamt::text, l.preselfpay_prop::text,
                   l.days_supply, l.fee_ocur_time) ORDER BY l.mdtrt_id, l.feedetl_sn), '[]'::json)
          FROM fee_lines l
         WHERE l.mdtrt_id = ANY(array_append(
                 ARRAY(SELECT x.mdtrt_id FROM visits x WHERE x.merged_into = v.mdtrt_id), v.mdtrt_id))
       ) AS lines,
       (SELECT coalesce(json_agg(json_build_array(a.begndate, a.enddate)), '[]'::json)
          FROM visits a
         WHERE a.psn_no = v.psn_no AND a.med_type = '21' AND a.mdtrt_id <> v.mdtrt_id) AS admissions,
       (SELECT c.balc::text FROM accounts c WHERE c.psn_no = v.psn_no) AS balc,
       (SELECT coalesce(json_agg(json_build_array(a.year, a.version, a.amounts)), '[]'::json)
          FROM accumulators a
         WHERE a.psn_no = v.psn_no
           AND a.year IN (CAST(extract(year FROM v.begndate) AS int),
                          CAST(extract(year FROM coalesce(v.enddate, v.begndate)) AS int))) AS accumulators
  FROM visits v
  LEFT JOIN institutions i ON i.fixmedins_code = v.fixmedins_code
  LEFT JOIN LATERAL (
       SELECT coalesce(json_agg(json_build_array(x.mdtrt_id, x.lines_version) ORDER BY x.mdtrt_id), '[]'::json)
              AS merged
         FROM visits x WHERE x.merged_into = v.mdtrt_id) m ON true
 WHERE v.mdtrt_id = :mdtrt_id
""")
_BALANCE = Sql("SELECT balc FROM accounts WHERE psn_no = :psn_no")
_STATUS = Sql("SELECT status FROM visits WHERE mdtrt_id = :mdtrt_id")


@dataclass(frozen=True, slots=True)
class PreparedVisit:
    """A stored visit ready for the engine (lines of merged outpatient visits included)."""

    claim: Claim  # without account options
    psn_no: str
    status: str
    versions: dict[str, int]  # mdtrt_id → lines_version, main and merged
    merged_ids: tuple[str, ...]
    institution: Institution
    balance: Decimal  # the person's own balance (unlocked read, for display)
    accumulators: dict[int, tuple[int, Accumulators]]  # year → (version, amounts), unlocked read

    def accumulators_of(self, year: int) -> tuple[int, Accumulators]:
        """The person-year's accumulators as loaded and their version (0: no row yet)."""
        return self.accumulators.get(year, (0, Accumulators({})))

    @property
    def facts(self) -> VisitFacts:
        c = self.claim
        return VisitFacts(
            mdtrt_id=c.mdtrt_id,
            fixmedins_code=c.institution.code,
            begndate=c.begin_date,
            enddate=c.end_date,
            chronic_disease=c.chronic_disease,
            merged_mdtrt_ids=self.merged_ids,
        )


async def load_visit(unit: Unit, *, mdtrt_id: str, principal: Principal) -> PreparedVisit:
    """One query; 404 unknown visit, 403 another institution's visit, 409 not settleable, 422 bad institution."""
    row = await unit.fetchrow(_LOAD_VISIT, mdtrt_id=mdtrt_id)
    if row is None:
        raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
    principal.require_institution(row.fixmedins_code)
    if row.status == "settled":
        raise Problem(409, "ALREADY_SETTLED", f"visit {mdtrt_id} is already settled")
    if row.status == "merged":
        raise Problem(
            409,
            "MERGED_INTO_ADMISSION",
            f"visit {mdtrt_id} is merged into admission {row.merged_into} and is settled with it",
        )
    if row.status != "open":
        raise Problem(409, "VISIT_CLOSED", f"visit {mdtrt_id} is {row.status}")
    institution = institution_of(row, code=row.fixmedins_code)
    lines = tuple(
        fee_line(_StoredLine(*line), prefix="" if line[0] == mdtrt_id else f"{line[0]}/") for line in row.lines
    )
    if not lines:
        raise Problem(422, "NO_FEE_LINES", f"visit {mdtrt_id} has no fee lines to settle")
    versions = {mdtrt_id: row.lines_version, **{m: ver for m, ver in row.merged}}
    try:
        claim = Claim(
            med_type=row.med_type,
            institution=institution,
            begin_date=row.begndate,
            lines=lines,
            mdtrt_id=mdtrt_id,
            end_date=row.enddate,
            diagnoses=tuple(row.diagnoses),
            chronic_disease=row.chronic_disease,
            referral_compliant=row.referral_compliant,
            admissions=tuple((date.fromisoformat(b), date.fromisoformat(e) if e else None) for b, e in row.admissions),
        )
    except EngineError as exc:
        raise engine_problem(exc) from None
    return PreparedVisit(
        claim=claim,
        psn_no=row.psn_no,
        status=row.status,
        versions=versions,
        merged_ids=tuple(m for m, _ in row.merged),
        institution=institution,
        balance=Decimal(row.balc) if row.balc is not None else ZERO,
        accumulators={
            year: (version, Accumulators({k: Decimal(v) for k, v in amounts.items()}))
            for year, version, amounts in row.accumulators
        },
    )


@dataclass(frozen=True, slots=True)
class _StoredLine:
    mdtrt_id: str
    feedetl_sn: str
    med_list_codg: str
    med_list_name: str
    item_class: str | None
    pric: str
    cnt: str
    det_item_fee_sumamt: str | None
    preselfpay_prop: str | None
    days_supply: int | None
    fee_ocur_time: str | None  # as JSON has it (ISO 8601)


@dataclass(frozen=True, slots=True)
class _Settling:
    """A visit ready for the engine: as stored, its claim with the account options, the person, whose account pays
    and the policy in force."""

    prepared: PreparedVisit
    claim: Claim
    person: Person
    payer: str
    policy: Policy

    def adjudicate(self, ctx: Ctx, *, balance: Decimal, accumulators: Accumulators) -> Adjudication:
        """The engine on these inputs, with the payer's balance and the person-year's accumulators."""
        claim = replace(self.claim, account_balance=balance)
        return run_engine(ctx, claim=claim, person=self.person, accumulators=accumulators, policy=self.policy)

    async def write(
        self, ctx: Ctx, unit: Unit, result: Adjudication, *, before: Accumulators, acc_version: int | None = None
    ) -> Answer:
        """A new setl_id: the visits, the settlement, the accumulators and the events; answers the breakdown (201)."""
        record = settlement_record(
            result,
            setl_id=new_id("S"),
            setl_time=ctx.now(),
            facts=self.prepared.facts,
            person=self.person,
            institution=self.prepared.institution,
            policy=self.policy,
            payer_psn_no=self.payer,
        )
        await write_settlement(unit, record, before=before, visits=_expected(self.prepared), acc_version=acc_version)
        return Answer.json(record.breakdown, 201)


async def _prepare(ctx: Ctx, *, mdtrt_id: str, principal: Principal, options: SettleIn, final: bool) -> _Settling:
    async with ctx.db.connect() as unit:
        prepared = await load_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
    claim = prepared.claim
    if final and claim.med_type == "21" and claim.end_date is None:
        raise Problem(409, "NOT_DISCHARGED", f"admission {mdtrt_id} is settled at discharge; discharge it first")
    person = await person_for_claim(ctx, claim, psn_no=prepared.psn_no)
    payer = account_payer(person, acct_used_flag=options.acct_used_flag, acct_payer_psn_no=options.acct_payer_psn_no)
    claim = replace(
        claim, acct_used_flag=options.acct_used_flag, acct_payer_psn_no=payer if payer != prepared.psn_no else None
    )
    policy = ctx.policy_for(
        insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=claim.institution.admdvs, on=rule_date(claim)
    )
    return _Settling(prepared, claim, person, payer, policy)


async def presettle(ctx: Ctx, *, mdtrt_id: str, principal: Principal, options: SettleIn) -> dict:
    """What settle would answer now, with warnings (violations included as warnings); writes nothing."""
    settling = await _prepare(ctx, mdtrt_id=mdtrt_id, principal=principal, options=options, final=False)
    prepared = settling.prepared
    _, before = prepared.accumulators_of(accumulator_year(settling.claim))
    balance = prepared.balance
    if settling.payer != prepared.psn_no:
        async with ctx.db.connect() as unit:
            found = await unit.fetchval(_BALANCE, psn_no=settling.payer)
        balance = ZERO if found is None else Decimal(found)
    result = settling.adjudicate(ctx, balance=balance, accumulators=before)
    body = breakdown(result, setl_id=None, setl_time=None, facts=prepared.facts, status="presettled")
    return with_violations_as_warnings(body, result)


def _expected(prepared: PreparedVisit) -> dict[str, str]:
    """What each visit to settle must still be: the lines loaded, the main one open, the others merged."""
    main = prepared.claim.mdtrt_id
    return {m: f"{m}:{ver}:{'open' if m == main else 'merged'}" for m, ver in prepared.versions.items()}


async def _changed(unit: Unit, *, main: str) -> Problem:
    """Why the visits could not be moved to settled."""
    status = await unit.fetchval(_STATUS, mdtrt_id=main)
    if status == "settled":
        return Problem(409, "ALREADY_SETTLED", f"visit {main} is already settled")
    if status == "merged":
        return Problem(409, "MERGED_INTO_ADMISSION", f"visit {main} is merged into an admission")
    return Problem(409, "VISIT_CHANGED", f"fee lines of visit {main} changed during settlement; settle again")


class Rejected(Exception):
    """The engine refused the claim on data read without a lock: decide again holding the lock."""


async def settle(
    ctx: Ctx, *, mdtrt_id: str, principal: Principal, options: SettleIn, key: idem.IdempotencyKey | None
) -> Answer:
    """Settle a visit (201 breakdown), or replay the first answer for the same Idempotency-Key."""
    return await idem.answer_once(
        ctx.db, key, lambda: _settle(ctx, mdtrt_id=mdtrt_id, principal=principal, options=options, key=key)
    )


async def _settle(
    ctx: Ctx, *, mdtrt_id: str, principal: Principal, options: SettleIn, key: idem.IdempotencyKey | None
) -> Answer:
    settling = await _prepare(ctx, mdtrt_id=mdtrt_id, principal=principal, options=options, final=True)
    prepared, year = settling.prepared, accumulator_year(settling.claim)
    try:
        if key is None and not options.acct_used_flag:
            try:
                return await _settle_as_loaded(ctx, settling, year=year)
            except (AccumulatorsChanged, Rejected, *RETRYABLE):
                pass  # settled in the transaction below, holding the person-year's row

        async def work(unit: Unit) -> Answer:
            before = await lock_accumulators(unit, psn_no=prepared.psn_no, year=year)
            if options.acct_used_flag:
                balance = await lock_account(unit, psn_no=settling.payer)
            else:
                balance = prepared.balance
            result = settling.adjudicate(ctx, balance=balance, accumulators=before)
            reject_violations(result)
            return await settling.write(ctx, unit, result, before=before)

        return await ctx.db.transaction(idem.keeping(key, work))
    except VisitsChanged:
        async with ctx.db.connect() as unit:
            raise await _changed(unit, main=settling.claim.mdtrt_id) from None


async def _settle_as_loaded(ctx: Ctx, settling: _Settling, *, year: int) -> Answer:
    """Most settlements: no key, no personal account. The engine runs on the accumulators as loaded, and one
    statement, committed by itself, writes everything if they are still at the version read
    (AccumulatorsChanged otherwise: nothing written). Three round trips fewer than holding the row."""
    version, before = settling.prepared.accumulators_of(year)
    result = settling.adjudicate(ctx, balance=settling.prepared.balance, accumulators=before)
    if result.violations:
        raise Rejected
    async with ctx.db.connect() as unit:
        return await settling.write(ctx, unit, result, before=before, acc_version=version)
