"""HTTP routes of the eligibility service (thin: parse, call one function, shape the answer).

Writes need the admin role and run in one transaction (`db.transaction`); reads admit admin, ops, his and
pharmacy keys (the COVID case registry admin and ops only) and run on a connection without one (`db.connect`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from services.eligibility import covid, employers, entitlements, holders, imports, persons, roster, snapshot, store
from services.eligibility.domain import RuleViolation
from services.eligibility.schemas import (
    AidIdentityIn,
    AidIdentityPatch,
    ArrearsIn,
    ArrearsSettleIn,
    ChronicQualificationIn,
    CovidCaseIn,
    CovidCasePatch,
    Day,
    DeferralIn,
    EmployerIn,
    EndDatePatch,
    FamilyIn,
    InstitutionIn,
    InstitutionOut,
    OffsiteRegistrationIn,
    PersonIn,
    PersonPatch,
    RetireIn,
    SnapshotOut,
)
from shared.auth import Admin, Principal, Reader, require
from shared.db import Database
from shared.events.envelope import dumpb, now
from shared.problems import Problem, not_found
from shared.service import Db

log = logging.getLogger("yibao.eligibility")
T = TypeVar("T")


def as_problem(exc: RuleViolation) -> Problem:
    """The problem+json for a broken rule; `errors[0].code` may be finer than the top-level code."""
    return Problem(
        exc.status, exc.code, exc.detail, errors=[{"field": exc.field, "code": exc.sub_code, "detail": exc.detail}]
    )


class Refusals(APIRoute):
    """Every eligibility route: a broken rule (RuleViolation) answers its problem+json, and a unique key that a
    concurrent request took first answers 409 CONFLICT (in both cases the transaction has rolled back)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def refusing(request: Request) -> Response:
            try:
                return await handle(request)
            except RuleViolation as exc:
                raise as_problem(exc) from None
            except asyncpg.UniqueViolationError as exc:
                log.info("unique key taken by a concurrent request: %s", exc.constraint_name)
                raise Problem(409, "CONFLICT", "a concurrent change took the same key; retry") from None

        return refusing


def business_today() -> date:
    """Today in business time (Asia/Shanghai)."""
    return now().date()


router = APIRouter(prefix="/v1", tags=["eligibility"], route_class=Refusals)
CodePath = Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
PsnNoPath = Annotated[str, CodePath]
EmpNoPath = Annotated[str, CodePath]
IdPath = Annotated[int, Path(ge=1, le=2**62)]
CaseIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
CertType = Annotated[str | None, Query(max_length=2)]
CERT_NO = r"^[^\x00-\x1f\x7f]+$"  # any printable text: a credential that matches nobody is simply no match
CertNo = Annotated[str | None, Query(min_length=1, max_length=128, pattern=CERT_NO)]


# A person's record and snapshot (identities, diseases, family) are for the bureau and the services that settle:
# an HIS or pharmacy key learns of a person only through a credential it holds (GET /v1/verify).
PersonReader = Annotated[Principal, Depends(require("ops"))]
CredentialReader = Annotated[Principal, Depends(require("ops", "his", "pharmacy"))]


def _created(body: dict, created: bool = True) -> JSONResponse:
    return JSONResponse(body, status_code=201 if created else 200)


async def _write(db: Database, work: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`work(unit, *args, today=…)` in one transaction, today (business time) taken once before it: a retry after a
    deadlock writes the same day."""
    today = business_today()
    return await db.transaction(lambda unit: work(unit, *args, today=today))


# ------------------------------------------------------------------ institutions


@router.post("/institutions", status_code=201, response_model=InstitutionOut)
async def register_institution(body: InstitutionIn, db: Db, _: Admin):
    institution, created = await db.transaction(lambda unit: store.register_institution(unit, body))
    return _created(InstitutionOut(**institution).model_dump(), created)


@router.get("/institutions/{code}", response_model=InstitutionOut)
async def get_institution(db: Db, _: Reader, code: str = CodePath):
    async with db.connect() as unit:
        return await store.get_institution(unit, code)


@router.post("/institutions/{code}/suspend", response_model=InstitutionOut)
async def suspend_institution(db: Db, _: Admin, code: str = CodePath):
    return await db.transaction(lambda unit: store.set_suspended(unit, code, True))


@router.post("/institutions/{code}/resume", response_model=InstitutionOut)
async def resume_institution(db: Db, _: Admin, code: str = CodePath):
    return await db.transaction(lambda unit: store.set_suspended(unit, code, False))


# ------------------------------------------------------------------ persons and credentials


@router.post("/persons", status_code=201)
async def register_person(body: PersonIn, db: Db, _: Admin):
    """Register a person; the answer carries `ecert_token` (电子凭证), shown this once."""
    person = await _write(db, persons.register_person, body)
    return _created(person)


@router.get("/persons/{psn_no}")
async def get_person(psn_no: PsnNoPath, db: Db, principal: PersonReader):
    async with db.connect() as unit:
        return await persons.get_person(unit, psn_no, today=business_today(), unmasked=principal.role == "admin")


@router.patch("/persons/{psn_no}")
async def update_person(psn_no: PsnNoPath, body: PersonPatch, db: Db, _: Admin):
    return await _write(db, persons.update_person, psn_no, body)


@router.post("/persons/{psn_no}/retire")
async def retire(psn_no: PsnNoPath, body: RetireIn, db: Db, _: Admin):
    """In service → retired, effective the first day of the month after `retired_on`."""
    return await _write(db, persons.retire, psn_no, body.retired_on)


@router.post("/persons/{psn_no}/ecert", status_code=201)
async def reissue_ecert(psn_no: PsnNoPath, db: Db, _: Admin):
    """A new 电子凭证 token; the old one stops resolving."""
    answer = await _write(db, persons.reissue_ecert, psn_no)
    return _created(answer)


@router.get("/persons/{psn_no}/snapshot", response_model=SnapshotOut, response_model_exclude_none=False)
async def get_snapshot(
    db: Db,
    psn_no: PsnNoPath,
    _: PersonReader,
    on: Annotated[Day | None, Query()] = None,
    mdtrt_cert_type: CertType = None,
    mdtrt_cert_no: CertNo = None,
):
    """Everything a settlement needs on `on` (default today); `credential_matches` when a credential is given."""
    async with db.connect() as unit:
        found = await snapshot.snapshot(
            unit, psn_no, on=on or business_today(), cert_type=mdtrt_cert_type, cert_no=mdtrt_cert_no
        )
    if found is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    return Response(dumpb(found), media_type="application/json")


@router.get("/verify")
async def verify(
    db: Db,
    _: CredentialReader,
    mdtrt_cert_type: Annotated[str, Query(max_length=2)],
    mdtrt_cert_no: Annotated[str, Query(min_length=1, max_length=128, pattern=CERT_NO)],
):
    """The person a credential (01 电子凭证, 02 ID number, 03 card) belongs to."""
    async with db.connect() as unit:
        psn_no = await snapshot.verify(unit, mdtrt_cert_type, mdtrt_cert_no)
    if psn_no is None:
        raise not_found("credential", mdtrt_cert_type, "CREDENTIAL_NOT_FOUND")
    return {"psn_no": psn_no}


@router.get("/credential-holder")
async def credential_holder(
    db: Db,
    _: CredentialReader,
    mdtrt_cert_type: Annotated[str, Query(max_length=2)],
    mdtrt_cert_no: Annotated[str, Query(min_length=1, max_length=128, pattern=CERT_NO)],
    on: Annotated[Day | None, Query()] = None,
):
    """Who holds a credential, as the institution presenting it may see them (1101): identity, insurance and the aid
    identities in force on `on` (default today)."""
    async with db.connect() as unit:
        return await holders.credential_holder(
            unit, cert_type=mdtrt_cert_type, cert_no=mdtrt_cert_no, on=on or business_today()
        )


@router.get("/account-roster")
async def account_roster(
    db: Db,
    _: PersonReader,
    month: Annotated[str, Query(pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")],
    after: Annotated[str, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=roster.MAX_PAGE)] = 1000,
):
    """Employees for the personal account's monthly credit (settlement's credit run): the person type in force on
    the month's first day, the contribution base, the insured place; one page in psn_no order after `after`."""
    async with db.connect() as unit:
        return await roster.account_roster(unit, month=month, after=after, limit=limit)


# ------------------------------------------------------------------ what a person is entitled to


@router.post("/persons/{psn_no}/aid-identities", status_code=201)
async def add_aid_identity(psn_no: PsnNoPath, body: AidIdentityIn, db: Db, _: Admin):
    identity = await _write(db, entitlements.add_aid_identity, psn_no, body)
    return _created(identity)


@router.post(
    "/aid-identities/imports",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    },
)
async def import_aid_identities(request: Request, db: Db, _: Admin):
    """Civil affairs' changes of identities (add, change, end) as a CSV or xlsx file: the good rows applied once, each
    bad row reported with its reason (`{rows, applied, unchanged, refused: [{row, code, reason}]}`)."""
    content = await request.body()
    return await _write(db, imports.import_changes, content)


@router.patch("/persons/{psn_no}/aid-identities/{identity_id}")
async def set_aid_lost_on(psn_no: PsnNoPath, identity_id: IdPath, body: AidIdentityPatch, db: Db, _: Admin):
    return await _write(db, entitlements.set_aid_lost_on, psn_no, identity_id, body.lost_on)


@router.post("/persons/{psn_no}/chronic-qualifications", status_code=201)
async def add_qualification(psn_no: PsnNoPath, body: ChronicQualificationIn, db: Db, _: Admin):
    qualification = await _write(db, entitlements.add_qualification, psn_no, body)
    return _created(qualification)


@router.patch("/persons/{psn_no}/chronic-qualifications/{qualification_id}")
async def end_qualification(psn_no: PsnNoPath, qualification_id: IdPath, body: EndDatePatch, db: Db, _: Admin):
    return await _write(db, entitlements.end_qualification, psn_no, qualification_id, body.end_date)


@router.post("/persons/{psn_no}/offsite-registrations", status_code=201)
async def add_registration(psn_no: PsnNoPath, body: OffsiteRegistrationIn, db: Db, _: Admin):
    registration = await _write(db, entitlements.add_registration, psn_no, body)
    return _created(registration)


@router.patch("/persons/{psn_no}/offsite-registrations/{registration_id}")
async def end_registration(psn_no: PsnNoPath, registration_id: IdPath, body: EndDatePatch, db: Db, _: Admin):
    return await _write(db, entitlements.end_registration, psn_no, registration_id, body.end_date)


@router.post("/persons/{psn_no}/family", status_code=201)
async def add_family(psn_no: PsnNoPath, body: FamilyIn, db: Db, _: Admin):
    """Link a spouse, parent or child (recorded both ways); the same link again answers 200."""
    link, created = await _write(db, entitlements.add_family, psn_no, body)
    return _created(link, created)


# ------------------------------------------------------------------ employers


@router.post("/employers", status_code=201)
async def register_employer(body: EmployerIn, db: Db, _: Admin):
    employer, created = await db.transaction(lambda unit: employers.register_employer(unit, body))
    return _created(employer, created)


@router.get("/employers/{emp_no}")
async def get_employer(emp_no: EmpNoPath, db: Db, _: Reader):
    async with db.connect() as unit:
        return await employers.get_employer(unit, emp_no)


@router.post("/employers/{emp_no}/deferrals", status_code=201)
async def add_deferral(emp_no: EmpNoPath, body: DeferralIn, db: Db, _: Admin):
    """Contribution deferral (缓缴) of 1..6 months; benefits unaffected."""
    deferral = await _write(db, employers.add_deferral, emp_no, body)
    return _created(deferral)


@router.post("/employers/{emp_no}/arrears", status_code=201)
async def add_arrears(emp_no: EmpNoPath, body: ArrearsIn, db: Db, _: Admin):
    """Arrears since a month; beyond 3 months not covered by a deferral, employees' benefits stop."""
    owed = await _write(db, employers.add_arrears, emp_no, body)
    return _created(owed)


@router.post("/employers/{emp_no}/arrears/{arrears_id}/settle")
async def settle_arrears(emp_no: EmpNoPath, arrears_id: IdPath, body: ArrearsSettleIn, db: Db, _: Admin):
    """The arrears are paid; benefits resume from `settled_on`."""
    return await _write(db, employers.settle_arrears, emp_no, arrears_id, body.settled_on)


# ------------------------------------------------------------------ COVID case registry


@router.post("/covid-cases", status_code=201)
async def register_case(body: CovidCaseIn, db: Db, _: Admin):
    case = await db.transaction(lambda unit: covid.register_case(unit, body))
    return _created(case)


@router.patch("/covid-cases/{case_id}")
async def update_case(case_id: CaseIdPath, body: CovidCasePatch, db: Db, _: Admin):
    """suspected → confirmed | excluded (confirmed → excluded is 409 CASE_ALREADY_CONFIRMED); publish."""
    return await db.transaction(lambda unit: covid.update_case(unit, case_id, body))


# The case registry is the bureau's (its ledger, 附件3, is reporting's, for ops): an HIS or pharmacy key reads no
# case, not even its own institution's, rather than every institution's patients (issue 17, tenancy).
CaseReader = Annotated[Principal, Depends(require("ops"))]


@router.get("/covid-cases/{case_id}")
async def get_case(case_id: CaseIdPath, db: Db, principal: CaseReader):
    async with db.connect() as unit:
        return await covid.get_case(unit, case_id, unmasked=principal.role == "admin")


@router.get("/covid-cases")
async def list_cases(
    db: Db,
    principal: CaseReader,
    published: bool | None = None,
    until: Annotated[Day | None, Query()] = None,
    since: Annotated[Day | None, Query()] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    psn_no: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=covid.MAX_PAGE)] = covid.MAX_PAGE,
):
    """Cases diagnosed up to `until` (a business day, inclusive); only published ones reach the ledger."""
    async with db.connect() as unit:
        return await covid.list_cases(
            unit,
            published=published,
            until=until,
            since=since,
            status=status,
            psn_no=psn_no,
            limit=limit,
            unmasked=principal.role == "admin",
        )
