"""A stand-in for the eligibility service's snapshot and verify endpoints, with an outage switch.

The settlement service's tests drive persons through this fake so that they depend only on the
snapshot contract (CONTRACT.md, brief of issue 5), not on eligibility's storage; the e2e and
integration tests use the real eligibility service.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from shared.http import InternalClient


@dataclass
class FakePerson:
    psn_no: str
    insutype: str
    insuplc_admdvs: str
    psn_type: str | None = None
    certno: str = ""
    active: bool = True
    aid_identities: list[dict] = field(default_factory=list)
    chronic_qualifications: list[dict] = field(default_factory=list)
    offsite_registrations: list[dict] = field(default_factory=list)
    family: list[dict] = field(default_factory=list)


class FakeEligibility:
    """Persons in memory; `down` makes every call fail to connect, `slow` makes it time out, `gate` (an
    asyncio.Event) holds every call until it is set (`waiting` counts the calls held)."""

    def __init__(self) -> None:
        self.persons: dict[str, FakePerson] = {}
        self.down = False
        self.slow = False
        self.gate: asyncio.Event | None = None
        self.waiting = 0
        self.calls = 0
        self.app = self._build()

    def add(
        self,
        *,
        insutype: str = "310",
        psn_type: str | None = "in_service",
        insuplc_admdvs: str = "621000",
        aid: list[dict] | None = None,
        chronic: list[dict] | None = None,
        offsite: list[dict] | None = None,
        active: bool = True,
    ) -> FakePerson:
        psn_no = "T" + uuid.uuid4().hex[:12].upper()
        person = FakePerson(
            psn_no=psn_no,
            insutype=insutype,
            insuplc_admdvs=insuplc_admdvs,
            psn_type=psn_type if insutype == "310" else None,
            certno="C" + psn_no,
            active=active,
            aid_identities=[{"lost_on": None, **a} for a in aid or []],
            chronic_qualifications=[
                {"end_date": None, "two_disease_class": None, "certified_by": "H1", **c} for c in chronic or []
            ],
            offsite_registrations=[{"end_date": None, **r} for r in offsite or []],
        )
        self.persons[psn_no] = person
        return person

    def relate(self, person: FakePerson, member: FakePerson, relation: str = "spouse") -> None:
        person.family.append({"relation": relation, "member_psn_no": member.psn_no})

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/persons/{psn_no}/snapshot")
        async def snapshot(
            psn_no: str, on: str = Query(), mdtrt_cert_type: str | None = None, mdtrt_cert_no: str | None = None
        ):
            self.calls += 1
            person = self.persons.get(psn_no)
            if person is None:
                return JSONResponse({"code": "PERSON_NOT_FOUND"}, status_code=404)
            body = {
                "psn_no": psn_no,
                "on": on,
                "active": person.active,
                "inactive_reason": None if person.active else "arrears",
                "insutype": person.insutype,
                "psn_type": person.psn_type,
                "insuplc_admdvs": person.insuplc_admdvs,
                "gend": "1",
                "brdy": "1980-01-01",
                "aid_identities": person.aid_identities,
                "chronic_qualifications": person.chronic_qualifications,
                "offsite_registrations": person.offsite_registrations,
                "family": person.family,
                "covid_cases": [],
            }
            if mdtrt_cert_type and mdtrt_cert_no:
                body["credential_matches"] = mdtrt_cert_type == "02" and mdtrt_cert_no == person.certno
            return body

        @app.get("/v1/verify")
        async def verify(mdtrt_cert_type: str, mdtrt_cert_no: str):
            self.calls += 1
            for person in self.persons.values():
                if mdtrt_cert_type == "02" and person.certno == mdtrt_cert_no:
                    return {"psn_no": person.psn_no}
            return JSONResponse({"code": "CREDENTIAL_NOT_FOUND"}, status_code=404)

        return app

    def client(self) -> InternalClient:
        return InternalClient("http://eligibility.test", timeout=2.0, transport=_Switch(self))


class _Switch(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeEligibility) -> None:
        self.fake = fake
        self.inner = httpx.ASGITransport(app=fake.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fake.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.fake.slow:
            await asyncio.sleep(5)
        if self.fake.gate is not None:
            self.fake.waiting += 1
            await self.fake.gate.wait()
        return await self.inner.handle_async_request(request)
