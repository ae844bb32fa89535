"""HTTP routes of the eligibility service (thin: parse, call one function, shape the answer)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.eligibility import store
from services.eligibility.schemas import InstitutionIn, InstitutionOut
from shared.auth import Admin, Reader
from shared.db import Sessions, unit_of_work
from shared.service import wake_relay

router = APIRouter(prefix="/v1", tags=["eligibility"])
CodePath = Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


@router.post("/institutions", status_code=201, response_model=InstitutionOut)
async def register_institution(body: InstitutionIn, sessions: Sessions, request: Request, _: Admin):
    async with unit_of_work(sessions) as session:
        institution, created = await store.register_institution(session, body)
    wake_relay(request)
    return JSONResponse(InstitutionOut(**institution).model_dump(), status_code=201 if created else 200)


@router.get("/institutions/{code}", response_model=InstitutionOut)
async def get_institution(sessions: Sessions, _: Reader, code: str = CodePath):
    async with unit_of_work(sessions) as session:
        return await store.get_institution(session, code)


@router.post("/institutions/{code}/suspend", response_model=InstitutionOut)
async def suspend_institution(sessions: Sessions, request: Request, _: Admin, code: str = CodePath):
    async with unit_of_work(sessions) as session:
        institution = await store.set_suspended(session, code, True)
    wake_relay(request)
    return institution


@router.post("/institutions/{code}/resume", response_model=InstitutionOut)
async def resume_institution(sessions: Sessions, request: Request, _: Admin, code: str = CodePath):
    async with unit_of_work(sessions) as session:
        institution = await store.set_suspended(session, code, False)
    wake_relay(request)
    return institution
