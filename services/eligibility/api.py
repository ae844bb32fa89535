"""HTTP routes of the eligibility service (thin: parse, call one function, shape the answer).

Writes need the admin role; reads admit admin, ops, his and pharmacy keys.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from services.eligibility import covid, employers, entitlements, persons, snapshot, store
from services.eligibility.domain import RuleViolation
from services.eligibility.schemas import (AidIdentityIn, AidIdentityPatch, ArrearsIn, ArrearsSettleIn,
                                          ChronicQualificationIn, CovidCaseIn, CovidCasePatch, Day, DeferralIn,
                                          EmployerIn, EndDatePatch, FamilyIn, InstitutionIn, InstitutionOut,
                                          OffsiteRegistrationIn, PersonIn, PersonPatch, RetireIn, SnapshotOut)
from services.eligibility.uow import as_problem, business_today, transaction
from shared.auth import Admin, Principal, Reader, authenticate
from shared.db import Sessions
from shared.events.envelope import dumpb
from shared.problems import Problem, not_found
from shared.service import wake_relay

router = APIRouter(prefix="/v1", tags=["eligibility"])
CodePath = Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
PsnNoPath = Annotated[str, CodePath]
EmpNoPath = Annotated[str, CodePath]
IdPath = Annotated[int, Path(ge=1, le=2**62)]
CaseIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
CertType = Annotated[str | None, Query(max_length=2)]
CERT_NO = r"^[^\x00-\x1f\x7f]+$"  # any printable text: a credential that matches nobody is simply no match
CertNo = Annotated[str | None, Query(min_length=1, max_length=128, pattern=CERT_NO)]


READ_ROLES = frozenset({"admin", "ops", "his", "pharmacy"})


async def _hot_reader(request: Request) -> Principal:
    """`Reader` for the hot path as an async dependency: the shared one is a plain function, which
    FastAPI runs in its threadpool, a hand-off that cost ~1 ms per snapshot under load."""
    principal = authenticate(request)
    if principal.role not in READ_ROLES:
        raise Problem(403, "FORBIDDEN", f"role {principal.role} may not do this")
    return principal


HotReader = Annotated[Principal, Depends(_hot_reader)]


def _created(body: dict, created: bool = True) -> JSONResponse:
    return JSONResponse(body, status_code=201 if created else 200)


# ------------------------------------------------------------------ institutions


@router.post("/institutions", status_code=201, response_model=InstitutionOut)
async def register_institution(body: InstitutionIn, sessions: Sessions, request: Request, _: Admin):
    async with transaction(sessions) as session:
        institution, created = await store.register_institution(session, body)
    wake_relay(request)
    return _created(InstitutionOut(**institution).model_dump(), created)


@router.get("/institutions/{code}", response_model=InstitutionOut)
async def get_institution(sessions: Sessions, _: Reader, code: str = CodePath):
    async with transaction(sessions) as session:
        return await store.get_institution(session, code)


@router.post("/institutions/{code}/suspend", response_model=InstitutionOut)
async def suspend_institution(sessions: Sessions, request: Request, _: Admin, code: str = CodePath):
    async with transaction(sessions) as session:
        institution = await store.set_suspended(session, code, True)
    wake_relay(request)
    return institution


@router.post("/institutions/{code}/resume", response_model=InstitutionOut)
async def resume_institution(sessions: Sessions, request: Request, _: Admin, code: str = CodePath):
    async with transaction(sessions) as session:
        institution = await store.set_suspended(session, code, False)
    wake_relay(request)
    return institution


# ------------------------------------------------------------------ persons and credentials


@router.post("/persons", status_code=201)
async def register_person(body: PersonIn, sessions: Sessions, request: Request, _: Admin):
    """Register a person; the answer carries `ecert_token` (电子凭证), shown this once."""
    async with transaction(sessions) as session:
        person = await persons.register_person(session, body, today=business_today())
    wake_relay(request)
    return _created(person)


@router.get("/persons/{psn_no}")
async def get_person(psn_no: PsnNoPath, sessions: Sessions, principal: Reader):
    async with transaction(sessions) as session:
        return await persons.get_person(session, psn_no, today=business_today(),
                                        unmasked=principal.role == "admin")


@router.patch("/persons/{psn_no}")
async def update_person(psn_no: PsnNoPath, body: PersonPatch, sessions: Sessions, request: Request, _: Admin):
    async with transaction(sessions) as session:
        person = await persons.update_person(session, psn_no, body, today=business_today())
    wake_relay(request)
    return person


@router.post("/persons/{psn_no}/retire")
async def retire(psn_no: PsnNoPath, body: RetireIn, sessions: Sessions, request: Request, _: Admin):
    """In service → retired, effective the first day of the month after `retired_on`."""
    async with transaction(sessions) as session:
        answer = await persons.retire(session, psn_no, body.retired_on, today=business_today())
    wake_relay(request)
    return answer


@router.post("/persons/{psn_no}/ecert", status_code=201)
async def reissue_ecert(psn_no: PsnNoPath, sessions: Sessions, request: Request, _: Admin):
    """A new 电子凭证 token; the old one stops resolving."""
    async with transaction(sessions) as session:
        answer = await persons.reissue_ecert(session, psn_no, today=business_today())
    wake_relay(request)
    return _created(answer)


@router.get("/persons/{psn_no}/snapshot", response_model=SnapshotOut, response_model_exclude_none=False)
async def get_snapshot(request: Request, psn_no: PsnNoPath, _: HotReader, on: Annotated[Day | None, Query()] = None,
                       mdtrt_cert_type: CertType = None, mdtrt_cert_no: CertNo = None):
    """Everything a settlement needs on `on` (default today); `credential_matches` when a credential is given."""
    try:
        found = await snapshot.snapshot(request, psn_no, on=on or business_today(), cert_type=mdtrt_cert_type,
                                        cert_no=mdtrt_cert_no)
    except RuleViolation as exc:
        raise as_problem(exc) from None
    if found is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    return Response(dumpb(found), media_type="application/json")


@router.get("/verify")
async def verify(request: Request, _: HotReader, mdtrt_cert_type: Annotated[str, Query(max_length=2)],
                 mdtrt_cert_no: Annotated[str, Query(min_length=1, max_length=128, pattern=CERT_NO)]):
    """The person a credential (01 电子凭证, 02 ID number, 03 card) belongs to."""
    try:
        psn_no = await snapshot.verify(request, mdtrt_cert_type, mdtrt_cert_no)
    except RuleViolation as exc:
        raise as_problem(exc) from None
    if psn_no is None:
        raise not_found("credential", mdtrt_cert_type, "CREDENTIAL_NOT_FOUND")
    return {"psn_no": psn_no}


# ------------------------------------------------------------------ what a person is entitled to


@router.post("/persons/{psn_no}/aid-identities", status_code=201)
async def add_aid_identity(psn_no: PsnNoPath, body: AidIdentityIn, sessions: Sessions, request: Request, _: Admin):
    async with transaction(sessions) as session:
        identity = await entitlements.add_aid_identity(session, psn_no, body, today=business_today())
    wake_relay(request)
    return _created(identity)


@router.patch("/persons/{psn_no}/aid-identities/{identity_id}")
async def set_aid_lost_on(psn_no: PsnNoPath, identity_id: IdPath, body: AidIdentityPatch, sessions: Sessions,
                          request: Request, _: Admin):
    async with transaction(sessions) as session:
        identity = await entitlements.set_aid_lost_on(session, psn_no, identity_id, body.lost_on,
                                                      today=business_today())
    wake_relay(request)
    return identity


@router.post("/persons/{psn_no}/chronic-qualifications", status_code=201)
async def add_qualification(psn_no: PsnNoPath, body: ChronicQualificationIn, sessions: Sessions, request: Request,
                            _: Admin):
    async with transaction(sessions) as session:
        qualification = await entitlements.add_qualification(session, psn_no, body, today=business_today())
    wake_relay(request)
    return _created(qualification)


@router.patch("/persons/{psn_no}/chronic-qualifications/{qualification_id}")
async def end_qualification(psn_no: PsnNoPath, qualification_id: IdPath, body: EndDatePatch, sessions: Sessions,
                            request: Request, _: Admin):
    async with transaction(sessions) as session:
        qualification = await entitlements.end_qualification(session, psn_no, qualification_id, body.end_date,
                                                              today=business_today())
    wake_relay(request)
    return qualification


@router.post("/persons/{psn_no}/offsite-registrations", status_code=201)
async def add_registration(psn_no: PsnNoPath, body: OffsiteRegistrationIn, sessions: Sessions, request: Request,
                           _: Admin):
    async with transaction(sessions) as session:
        registration = await entitlements.add_registration(session, psn_no, body, today=business_today())
    wake_relay(request)
    return _created(registration)


@router.patch("/persons/{psn_no}/offsite-registrations/{registration_id}")
async def end_registration(psn_no: PsnNoPath, registration_id: IdPath, body: EndDatePatch, sessions: Sessions,
                           request: Request, _: Admin):
    async with transaction(sessions) as session:
        registration = await entitlements.end_registration(session, psn_no, registration_id, body.end_date,
                                                           today=business_today())
    wake_relay(request)
    return registration


@router.post("/persons/{psn_no}/family", status_code=201)
async def add_family(psn_no: PsnNoPath, body: FamilyIn, sessions: Sessions, request: Request, _: Admin):
    """Link a spouse, parent or child (recorded both ways); the same link again answers 200."""
    async with transaction(sessions) as session:
        link, created = await entitlements.add_family(session, psn_no, body, today=business_today())
    wake_relay(request)
    return _created(link, created)


# ------------------------------------------------------------------ employers


@router.post("/employers", status_code=201)
async def register_employer(body: EmployerIn, sessions: Sessions, _: Admin):
    async with transaction(sessions) as session:
        employer, created = await employers.register_employer(session, body)
    return _created(employer, created)


@router.get("/employers/{emp_no}")
async def get_employer(emp_no: EmpNoPath, sessions: Sessions, _: Reader):
    async with transaction(sessions) as session:
        return await employers.get_employer(session, emp_no)


@router.post("/employers/{emp_no}/deferrals", status_code=201)
async def add_deferral(emp_no: EmpNoPath, body: DeferralIn, sessions: Sessions, request: Request, _: Admin):
    """Contribution deferral (缓缴) of 1..6 months; benefits unaffected."""
    async with transaction(sessions) as session:
        deferral = await employers.add_deferral(session, emp_no, body, today=business_today())
    wake_relay(request)
    return _created(deferral)


@router.post("/employers/{emp_no}/arrears", status_code=201)
async def add_arrears(emp_no: EmpNoPath, body: ArrearsIn, sessions: Sessions, request: Request, _: Admin):
    """Arrears since a month; beyond 3 months not covered by a deferral, employees' benefits stop."""
    async with transaction(sessions) as session:
        owed = await employers.add_arrears(session, emp_no, body, today=business_today())
    wake_relay(request)
    return _created(owed)


@router.post("/employers/{emp_no}/arrears/{arrears_id}/settle")
async def settle_arrears(emp_no: EmpNoPath, arrears_id: IdPath, body: ArrearsSettleIn, sessions: Sessions,
                         request: Request, _: Admin):
    """The arrears are paid; benefits resume from `settled_on`."""
    async with transaction(sessions) as session:
        owed = await employers.settle_arrears(session, emp_no, arrears_id, body.settled_on, today=business_today())
    wake_relay(request)
    return owed


# ------------------------------------------------------------------ COVID case registry


@router.post("/covid-cases", status_code=201)
async def register_case(body: CovidCaseIn, sessions: Sessions, request: Request, _: Admin):
    async with transaction(sessions) as session:
        case = await covid.register_case(session, body)
    wake_relay(request)
    return _created(case)


@router.patch("/covid-cases/{case_id}")
async def update_case(case_id: CaseIdPath, body: CovidCasePatch, sessions: Sessions, request: Request, _: Admin):
    """suspected → confirmed | excluded (confirmed → excluded is 409 CASE_ALREADY_CONFIRMED); publish."""
    async with transaction(sessions) as session:
        case = await covid.update_case(session, case_id, body)
    wake_relay(request)
    return case


@router.get("/covid-cases/{case_id}")
async def get_case(case_id: CaseIdPath, sessions: Sessions, principal: Reader):
    async with transaction(sessions) as session:
        return await covid.get_case(session, case_id, unmasked=principal.role == "admin")


@router.get("/covid-cases")
async def list_cases(sessions: Sessions, principal: Reader, published: bool | None = None,
                     until: Annotated[Day | None, Query()] = None, since: Annotated[Day | None, Query()] = None,
                     status: Annotated[str | None, Query(max_length=16)] = None,
                     psn_no: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")] = None,
                     limit: Annotated[int, Query(ge=1, le=covid.MAX_PAGE)] = covid.MAX_PAGE):
    """Cases diagnosed up to `until` (a business day, inclusive); only published ones reach the ledger."""
    async with transaction(sessions) as session:
        return await covid.list_cases(session, published=published, until=until, since=since, status=status,
                                      psn_no=psn_no, limit=limit, unmasked=principal.role == "admin")

