"""Tenancy: an HIS or pharmacy key sees and changes only what its institution may (issue 17).

The personal account follows the national platform's 1101: an institution reads a person's balance only when it has
seen the person (a visit, settlement, prescription, declared claim or account payment at that institution) or when
it presents the person's credential. Then every route of every service that takes a psn_no, mdtrt_id, setl_id, rx_no
or fixmedins_code (path, query or body, as each app's OpenAPI declares them) is tried with a resource of institution A
under B's HIS key, a pharmacy key and the ops key: refused, nothing written; under A's own key: allowed. A route added
later without a case here (or an exemption with its reason) fails `test_every_tenant_route_has_a_case`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.eligibility.certno import make_certno
from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY, PHARMACY_KEYS, fetch

sys.path.insert(0, str(Path(__file__).resolve().parent / "settlement"))
from fake_eligibility import FakeEligibility, FakePerson  # noqa: E402
from settlement_support import INSTITUTIONS, item, visit_body  # noqa: E402

SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
SH = ZoneInfo("Asia/Shanghai")
A, B = "H1", "H2"  # institution A owns every resource below; B is another hospital
KEYS = {
    "A": HIS_KEYS[A],
    "B": HIS_KEYS[B],
    "P1": PHARMACY_KEYS["P1"],
    "P2": PHARMACY_KEYS["P2"],
    "ops": OPS_KEY,
    "admin": ADMIN_KEY,
}
ADMIN = {"X-Api-Key": ADMIN_KEY}


def key(name: str) -> dict[str, str]:
    return {"X-Api-Key": KEYS[name]}


@dataclass
class World:
    """The four in-process services; the settlement service asks a fake eligibility about persons."""

    clients: dict[str, httpx.AsyncClient]
    fake: FakeEligibility

    @property
    def settlement(self) -> httpx.AsyncClient:
        return self.clients["settlement"]

    def rows(self, service: str, statement: str, **params: Any) -> Callable[[], Awaitable[Any]]:
        """A probe of what a request could have written: the rows of one statement in a service's schema."""
        app = self.clients[service]._transport.app  # type: ignore[attr-defined]

        async def read() -> Any:
            return [tuple(row) for row in await fetch(app, statement, **params)]

        return read

    def person(self) -> FakePerson:
        return self.fake.add()

    async def visit(self, person: FakePerson, *, code: str = A, med_type: str = "11", lines: bool = True) -> str:
        """An open visit of the person at the institution (with one fee line); its mdtrt_id."""
        created = await self.settlement.post(
            "/v1/visits", json=visit_body(person, code=code, med_type=med_type), headers={"X-Api-Key": his_key(code)}
        )
        assert created.status_code == 201, created.text
        mdtrt_id = created.json()["mdtrt_id"]
        if lines:
            uploaded = await self.settlement.post(
                f"/v1/visits/{mdtrt_id}/fees",
                json={"items": [item("TA1", "120.00")]},
                headers={"X-Api-Key": his_key(code)},
            )
            assert uploaded.status_code in (200, 201), uploaded.text
        return mdtrt_id

    async def settled(self, person: FakePerson, *, code: str = A, **options: Any) -> dict:
        """A settlement of the person at the institution; its breakdown."""
        mdtrt_id = await self.visit(person, code=code)
        done = await self.settlement.post(
            f"/v1/visits/{mdtrt_id}/settle", json=options, headers={"X-Api-Key": his_key(code)}
        )
        assert done.status_code == 201, done.text
        return done.json()

    async def prescription(self, person: FakePerson, *, code: str = A) -> str:
        body = rx_body(person, code=code)
        issued = await self.settlement.post("/v1/prescriptions", json=body, headers={"X-Api-Key": his_key(code)})
        assert issued.status_code == 201, issued.text
        return body["rx_no"]

    async def credit(self, psn_no: str, amount: str = "100.00") -> None:
        credited = await self.settlement.post(
            f"/v1/accounts/{psn_no}/credits", json={"amount": amount, "period": "2024-01"}, headers=ADMIN
        )
        assert credited.status_code in (200, 201), credited.text


def his_key(code: str) -> str:
    return HIS_KEYS[code] if code in HIS_KEYS else PHARMACY_KEYS[code]


def fresh(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


def rx_body(person: FakePerson, *, code: str = A) -> dict:
    return {
        "rx_no": fresh("RX"),
        "psn_no": person.psn_no,
        "fixmedins_code": code,
        "issued_at": datetime.now(SH).isoformat(),
        "items": [{"med_list_codg": "TA-DRUG", "med_list_name": "药", "item_class": "A", "cnt": "2", "days_supply": 7}],
    }


def claim_body(person: FakePerson, *, code: str = A) -> dict:
    return {
        "visit": {
            "psn_no": person.psn_no,
            "fixmedins_code": code,
            "med_type": "11",
            "begntime": "2024-02-10T08:00:00+08:00",
            "diagnoses": ["J06.9"],
        },
        "items": [item("TA1", "30.00")],
    }


async def _register_institutions(eligibility: httpx.AsyncClient, settlement_app: Any) -> None:
    """A, B, H3 and two pharmacies at eligibility (on the settlement tests' terms), then in settlement's copy."""
    wanted = {code: INSTITUTIONS[code] for code in ("H1", "H2", "H3", "P1", "P2")}
    for code, spec in wanted.items():
        response = await eligibility.post(
            "/v1/institutions", headers=ADMIN, json={"fixmedins_code": code, "fixmedins_name": f"测试{code}", **spec}
        )
        assert response.status_code in (200, 201, 409), response.text
    for _ in range(400):
        rows = {r[0] for r in await fetch(settlement_app, "SELECT fixmedins_code FROM settlement.institutions")}
        if set(wanted) <= rows:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"institutions never reached the settlement service: {rows}")


@pytest.fixture(scope="module")
async def world(eligibility, settlement, prepayment, reporting):
    """The settlement app asks this module's fake eligibility (the previous client is put back afterwards)."""
    app = settlement._transport.app
    fake = FakeEligibility()
    previous = app.state.eligibility
    app.state.eligibility = fake.client()
    try:
        await _register_institutions(eligibility, app)
        yield World(
            clients={
                "eligibility": eligibility,
                "settlement": settlement,
                "prepayment": prepayment,
                "reporting": reporting,
            },
            fake=fake,
        )
    finally:
        app.state.eligibility = previous


# ------------------------------------------------------------------ the personal account (1101)


async def _balance(world: World, psn_no: str, who: str, **params: str) -> httpx.Response:
    return await world.settlement.get(f"/v1/accounts/{psn_no}", params=params, headers=key(who))


def _refused_unseen(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "PERSON_NOT_SEEN" and "balc" not in body


async def test_an_institution_reads_the_balance_only_of_a_person_it_has_seen(world):
    person = world.person()
    await world.credit(person.psn_no, "100.00")
    await world.visit(person, code=A, lines=False)
    assert (await _balance(world, person.psn_no, "A")).json() == {"psn_no": person.psn_no, "balc": "100.00"}
    for stranger in ("B", "P1"):
        _refused_unseen(await _balance(world, person.psn_no, stranger))
    for overseer in ("ops", "admin"):
        seen = await _balance(world, person.psn_no, overseer)
        assert seen.status_code == 200 and seen.json()["balc"] == "100.00"


async def test_an_unknown_person_looks_the_same_as_one_not_seen(world):
    """Whether the person exists is not told to a key that may not see the account."""
    known = world.person()
    await world.credit(known.psn_no, "5.00")
    unknown = await _balance(world, fresh("NOBODY"), "B")
    hidden = await _balance(world, known.psn_no, "B")
    _refused_unseen(unknown)
    _refused_unseen(hidden)
    echoed = ("detail", "instance")  # what the caller sent, echoed
    assert {k: v for k, v in unknown.json().items() if k not in echoed} == {
        k: v for k, v in hidden.json().items() if k not in echoed
    }
    assert (await _balance(world, fresh("NOBODY"), "ops")).json()["balc"] == "0.00"


async def test_seen_through_settlement_prescription_claim_purchase_and_account_payment(world):
    patient, spouse, rx_person, claimant = world.person(), world.person(), world.person(), world.person()
    world.fake.relate(patient, spouse)
    await world.credit(spouse.psn_no, "300.00")
    paid = await world.settled(patient, code="H3", acct_used_flag=True, acct_payer_psn_no=spouse.psn_no)
    assert paid["acct_pay"] != "0.00"
    # H3 settled the patient, paid from the spouse's account: it sees both; H1 neither
    h3 = {"X-Api-Key": HIS_KEYS["H3"]}
    for psn_no in (patient.psn_no, spouse.psn_no):
        seen = await world.settlement.get(f"/v1/accounts/{psn_no}", headers=h3)
        assert seen.status_code == 200, seen.text
        _refused_unseen(await _balance(world, psn_no, "A"))
    assert (await world.settlement.get(f"/v1/accounts/{spouse.psn_no}", headers=h3)).json()["balc"] == paid["balc"]
    # a prescription issued by B, then dispensed by pharmacy P2 (a purchase there)
    rx_no = await world.prescription(rx_person, code=B)
    assert (await _balance(world, rx_person.psn_no, "B")).status_code == 200
    _refused_unseen(await _balance(world, rx_person.psn_no, "P2"))
    dispensed = await world.settlement.post(
        "/v1/pharmacy/settlements",
        headers=key("P2"),
        json={
            "rx_no": rx_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": rx_person.certno,
            "fixmedins_code": "P2",
            "items": [item("TA-DRUG", "20.00", "2", None)],
        },
    )
    assert dispensed.status_code == 201, dispensed.text
    assert (await _balance(world, rx_person.psn_no, "P2")).status_code == 200
    _refused_unseen(await _balance(world, rx_person.psn_no, "P1"))
    _refused_unseen(await _balance(world, rx_person.psn_no, "A"))
    # a declared claim submitted by B (seen at once, before it is processed)
    submitted = await world.settlement.post("/v1/claims", json=claim_body(claimant, code=B), headers=key("B"))
    assert submitted.status_code == 202, submitted.text
    assert (await _balance(world, claimant.psn_no, "B")).status_code == 200
    _refused_unseen(await _balance(world, claimant.psn_no, "A"))


async def test_the_persons_credential_opens_the_account(world):
    person, other = world.person(), world.person()
    await world.credit(person.psn_no, "42.00")
    shown = await _balance(world, person.psn_no, "B", mdtrt_cert_type="02", mdtrt_cert_no=person.certno)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"psn_no": person.psn_no, "balc": "42.00"}
    pharmacy = await _balance(world, person.psn_no, "P1", mdtrt_cert_type="02", mdtrt_cert_no=person.certno)
    assert pharmacy.status_code == 200
    # someone else's credential, a credential of nobody, a credential of an unknown psn_no: the same 403
    _refused_unseen(await _balance(world, person.psn_no, "B", mdtrt_cert_type="02", mdtrt_cert_no=other.certno))
    _refused_unseen(await _balance(world, person.psn_no, "B", mdtrt_cert_type="02", mdtrt_cert_no="C-NOBODY"))
    _refused_unseen(await _balance(world, person.psn_no, "B", mdtrt_cert_type="03", mdtrt_cert_no=person.certno))
    _refused_unseen(await _balance(world, fresh("NOBODY"), "B", mdtrt_cert_type="02", mdtrt_cert_no=person.certno))
    # the credential is checked once more each time: showing it once does not make the person seen
    _refused_unseen(await _balance(world, person.psn_no, "B"))


async def test_a_half_or_malformed_credential_is_422_and_eligibility_down_is_503(world):
    person = world.person()
    for params in (
        {"mdtrt_cert_type": "02"},
        {"mdtrt_cert_no": person.certno},
        {"mdtrt_cert_type": "09", "mdtrt_cert_no": person.certno},
        {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x" * 65},
        {"mdtrt_cert_type": "02", "mdtrt_cert_no": "a\x00b"},
    ):
        refused = await _balance(world, person.psn_no, "B", **params)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    world.fake.down = True
    try:
        _refused_unseen(await _balance(world, person.psn_no, "B"))  # no credential: decided without eligibility
        down = await _balance(world, person.psn_no, "B", mdtrt_cert_type="02", mdtrt_cert_no=person.certno)
        assert down.status_code == 503 and down.json()["code"] == "ELIGIBILITY_UNAVAILABLE"
    finally:
        world.fake.down = False


# ------------------------------------------------------------------ every route that names a tenant's resource

TENANT_NAMES = ("psn_no", "mdtrt_id", "setl_id", "rx_no", "fixmedins_code")
REFUSED = {"FORBIDDEN", "INSTITUTION_FORBIDDEN", "PERSON_NOT_SEEN"}


def _is_tenant_name(name: str) -> bool:
    """psn_no, acct_payer_psn_no, member_psn_no, to_fixmedins_code …"""
    return any(name == t or name.endswith("_" + t) for t in TENANT_NAMES)


def _schema_names(schema: Any, components: dict, seen: set[str]) -> set[str]:
    """Every property name in a request body schema, through $ref, anyOf/oneOf/allOf and arrays."""
    if not isinstance(schema, dict):
        return set()
    names: set[str] = set()
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            names |= _schema_names(components.get(name, {}), components, seen)
    for prop, sub in (schema.get("properties") or {}).items():
        names.add(prop)
        names |= _schema_names(sub, components, seen)
    for combined in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combined) or ():
            names |= _schema_names(sub, components, seen)
    names |= _schema_names(schema.get("items"), components, seen)
    names |= _schema_names(schema.get("additionalProperties"), components, seen)
    return names


def tenant_routes(app: Any) -> dict[tuple[str, str], set[str]]:
    """(METHOD, path) → the tenant names it takes, from the app's OpenAPI (a path `{code}` is a fixmedins_code)."""
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    found: dict[tuple[str, str], set[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters") or []
            names = {p["name"] for p in parameters}
            for content in (operation.get("requestBody") or {}).get("content", {}).values():
                names |= _schema_names(content.get("schema"), components, set())
            hits = {n for n in names if _is_tenant_name(n)}
            hits |= {"code"} & {p["name"] for p in parameters if p["in"] == "path"}
            if hits:
                found[(method.upper(), path)] = hits
    return found


def all_routes(app: Any) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}


@dataclass(frozen=True)
class Probe:
    """One request on a resource of institution A, and a read of what that request could write."""

    path: str
    params: dict[str, str] | None = None
    json: Any = None
    written: Callable[[], Awaitable[Any]] | None = None


@dataclass(frozen=True)
class Case:
    """A route and what each key gets for a resource of A: 403 = refused with nothing written."""

    service: str
    method: str
    route: str
    make: Callable[[World], Awaitable[Probe]]
    expect: dict[str, int | tuple[int, ...]]
    note: str = ""
    by_role: bool = False  # refused by the role check, which runs before the route: it can have written nothing

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.route}"


def owned(service, method, route, make, *, ok=200, ops=403, pharmacy=403, note="") -> Case:
    """A route an HIS key uses for its own institution: B and a pharmacy refused, A allowed; ops as given."""
    return Case(service, method, route, make, {"B": 403, "P1": pharmacy, "ops": ops, "A": ok}, note)


def admin_only(service, method, route, make) -> Case:
    """Every institution key (A's own too) and ops refused by the role check, which runs before the route: the
    FORBIDDEN code proves nothing was read or written."""
    return Case(service, method, route, make, {"A": 403, "B": 403, "P1": 403, "ops": 403}, "admin only", True)


def ops_only(service, method, route, make, *, ok: int | tuple[int, ...] = 200) -> Case:
    """A read for the bureau (ops, admin): every institution key refused by the role check."""
    return Case(service, method, route, make, {"A": 403, "B": 403, "P1": 403, "ops": ok}, "ops and admin read", True)


def probe(path: str, **kwargs: Any) -> Callable[[World], Awaitable[Probe]]:
    """A probe that needs no resource made first (the institution A is the resource)."""

    async def make(_: World) -> Probe:
        return Probe(path, **kwargs)

    return make


# ---- settlement


async def _new_visit(w: World) -> Probe:
    person = w.person()
    return Probe(
        "/v1/visits",
        json=visit_body(person, code=A),
        written=w.rows("settlement", "SELECT mdtrt_id FROM settlement.visits WHERE psn_no = :p", p=person.psn_no),
    )


async def _a_visit(w: World) -> Probe:
    return Probe(f"/v1/visits/{await w.visit(w.person())}")


async def _fees(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), lines=False)
    return Probe(
        f"/v1/visits/{mdtrt_id}/fees",
        json={"items": [item("TA1", "80.00")]},
        written=w.rows("settlement", "SELECT feedetl_sn FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id),
    )


async def _discharge(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), med_type="21")
    return Probe(
        f"/v1/visits/{mdtrt_id}/discharge",
        json={"endtime": "2024-03-05T10:00:00+08:00"},
        written=w.rows("settlement", "SELECT endtime FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id),
    )


def _settles(step: str) -> Callable[[World], Awaitable[Probe]]:
    async def make(w: World) -> Probe:
        person = w.person()
        await w.credit(person.psn_no, "50.00")
        mdtrt_id = await w.visit(person)
        return Probe(
            f"/v1/visits/{mdtrt_id}/{step}",
            json={"acct_used_flag": True},
            written=_everything_of(w, person.psn_no),
        )

    return make


def _everything_of(w: World, psn_no: str) -> Callable[[], Awaitable[Any]]:
    """What settling or reversing writes for a person: settlements, outbox rows, accumulators, account."""
    return w.rows(
        "settlement",
        """SELECT (SELECT array_agg(setl_id || status ORDER BY setl_id) FROM settlement.settlements WHERE psn_no = :p),
                  (SELECT count(*) FROM settlement.outbox WHERE key = :p),
                  (SELECT array_agg(amounts::text) FROM settlement.accumulators WHERE psn_no = :p),
                  (SELECT array_agg(balc) FROM settlement.accounts WHERE psn_no = :p),
                  (SELECT count(*) FROM settlement.account_movements WHERE psn_no = :p)""",
        p=psn_no,
    )


async def _reverse(w: World) -> Probe:
    person = w.person()
    await w.credit(person.psn_no, "50.00")
    setl_id = (await w.settled(person, acct_used_flag=True))["setl_id"]
    return Probe(f"/v1/settlements/{setl_id}/reverse", written=_everything_of(w, person.psn_no))


async def _a_settlement(w: World) -> Probe:
    return Probe(f"/v1/settlements/{(await w.settled(w.person()))['setl_id']}")


async def _a_days_settlements(w: World) -> Probe:
    done = await w.settled(w.person())
    return Probe("/v1/settlements", params={"setl_date": done["setl_time"][:10], "fixmedins_code": A})


async def _new_prescription(w: World) -> Probe:
    body = rx_body(w.person(), code=A)
    return Probe(
        "/v1/prescriptions",
        json=body,
        written=w.rows("settlement", "SELECT rx_no FROM settlement.prescriptions WHERE rx_no = :r", r=body["rx_no"]),
    )


async def _a_prescription(w: World) -> Probe:
    return Probe(f"/v1/prescriptions/{await w.prescription(w.person(), code=A)}")


async def _dispense(w: World) -> Probe:
    """A's prescription dispensed at pharmacy P1 (here P1 is the owner of the request)."""
    person = w.person()
    rx_no = await w.prescription(person, code=A)
    return Probe(
        "/v1/pharmacy/settlements",
        json={
            "rx_no": rx_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno,
            "fixmedins_code": "P1",
            "items": [item("TA-DRUG", "20.00", "2", None)],
        },
        written=w.rows(
            "settlement",
            "SELECT used_setl_id, (SELECT count(*) FROM settlement.settlements WHERE psn_no = :p) "
            "FROM settlement.prescriptions WHERE rx_no = :r",
            r=rx_no,
            p=person.psn_no,
        ),
    )


async def _new_claim(w: World) -> Probe:
    person = w.person()
    return Probe(
        "/v1/claims",
        json=claim_body(person, code=A),
        written=w.rows("settlement", "SELECT claim_id FROM settlement.claims WHERE psn_no = :p", p=person.psn_no),
    )


async def _a_claim(w: World) -> Probe:
    submitted = await w.settlement.post("/v1/claims", json=claim_body(w.person(), code=A), headers=key("A"))
    assert submitted.status_code == 202, submitted.text
    return Probe(f"/v1/claims/{submitted.json()['claim_id']}")


async def _an_account(w: World) -> Probe:
    person = w.person()
    await w.credit(person.psn_no, "10.00")
    await w.visit(person, lines=False)
    return Probe(f"/v1/accounts/{person.psn_no}")


async def _a_credit(w: World) -> Probe:
    person = w.person()
    await w.visit(person, lines=False)
    return Probe(
        f"/v1/accounts/{person.psn_no}/credits",
        json={"amount": "10.00", "period": "2024-02"},
        written=_everything_of(w, person.psn_no),
    )


async def _a_purchase(w: World) -> Probe:
    """A retail purchase at pharmacy P1 (issue 13): the person's credential, paid from the account."""
    person = w.person()
    await w.credit(person.psn_no, "10.00")
    return Probe(
        "/v1/pharmacy/purchases",
        json={
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno,
            "fixmedins_code": "P1",
            "items": [{"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "pric": "7.00", "cnt": "1"}],
        },
        written=_everything_of(w, person.psn_no),
    )


async def _a_statement(w: World) -> Probe:
    person = w.person()
    await w.credit(person.psn_no, "10.00")
    await w.visit(person, lines=False)
    return Probe(f"/v1/accounts/{person.psn_no}/statement")


async def _a_closure(w: World) -> Probe:
    person = w.person()
    await w.credit(person.psn_no, "10.00")
    await w.visit(person, lines=False)
    return Probe(
        f"/v1/accounts/{person.psn_no}/closure",
        json={"reason": "death", "closed_on": datetime.now(SH).date().isoformat()},
        written=_everything_of(w, person.psn_no),
    )


SETTLEMENT = [
    owned("settlement", "POST", "/v1/visits", _new_visit, ok=201),
    owned("settlement", "GET", "/v1/visits/{mdtrt_id}", _a_visit),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/fees", _fees, ok=201),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/discharge", _discharge),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/presettle", _settles("presettle")),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/settle", _settles("settle"), ok=201),
    owned("settlement", "POST", "/v1/settlements/{setl_id}/reverse", _reverse),
    owned("settlement", "GET", "/v1/settlements/{setl_id}", _a_settlement, ops=200),
    owned("settlement", "GET", "/v1/settlements", _a_days_settlements, ops=200),
    owned("settlement", "POST", "/v1/prescriptions", _new_prescription, ok=201),
    owned(
        "settlement",
        "GET",
        "/v1/prescriptions/{rx_no}",
        _a_prescription,
        ops=200,
        pharmacy=200,
        note="CONTRACT: pharmacies look up any prescription (to dispense it); another hospital may not",
    ),
    Case(
        "settlement",
        "POST",
        "/v1/pharmacy/settlements",
        _dispense,
        {"P2": 403, "B": 403, "A": 403, "ops": 403, "P1": 201},
        "the owner is the dispensing pharmacy P1; A's HIS key may not settle at a pharmacy",
    ),
    owned("settlement", "POST", "/v1/claims", _new_claim, ok=202),
    owned("settlement", "GET", "/v1/claims/{claim_id}", _a_claim, ops=200),
    owned("settlement", "GET", "/v1/accounts/{psn_no}", _an_account, ops=200),
    admin_only("settlement", "POST", "/v1/accounts/{psn_no}/credits", _a_credit),
    Case(
        "settlement",
        "POST",
        "/v1/pharmacy/purchases",
        _a_purchase,
        {"P2": 403, "B": 403, "A": 403, "ops": 403, "P1": 201},
        "issue 13: the owner is the selling pharmacy P1; another pharmacy, a hospital and ops may not",
    ),
    owned("settlement", "GET", "/v1/accounts/{psn_no}/statement", _a_statement, ops=200),
    admin_only("settlement", "POST", "/v1/accounts/{psn_no}/closure", _a_closure),
]


# ---- eligibility (persons and institutions; it knows no visits, so its person reads are not institution-scoped)


async def _registered(w: World) -> str:
    """A person registered at eligibility (the real one); their psn_no."""
    psn_no = fresh("TEN")
    certno = make_certno(region="621022", brdy=date(1970, 1, 1) + timedelta(days=uuid.uuid4().int % 9000), serial=7)
    created = await w.clients["eligibility"].post(
        "/v1/persons",
        headers=ADMIN,
        json={"psn_no": psn_no, "certno": certno, "psn_name": "王五", "insutype": "310", "insuplc_admdvs": "621000"},
    )
    assert created.status_code == 201, created.text
    return psn_no


def _person_probe(path: str, **kwargs: Any) -> Callable[[World], Awaitable[Probe]]:
    """A probe on a registered person: `path` with {psn_no} filled in."""

    async def make(w: World) -> Probe:
        return Probe(path.format(psn_no=await _registered(w)), **kwargs)

    return make


async def _new_person(_: World) -> Probe:
    certno = make_certno(region="621022", brdy=date(1981, 2, 3), serial=uuid.uuid4().int % 400 * 2 + 1)
    return Probe(
        "/v1/persons",
        json={
            "psn_no": fresh("TEN"),
            "certno": certno,
            "psn_name": "赵六",
            "insutype": "310",
            "insuplc_admdvs": "621000",
        },
    )


async def _family(w: World) -> Probe:
    member = await _registered(w)
    return Probe(f"/v1/persons/{await _registered(w)}/family", json={"relation": "spouse", "member_psn_no": member})


def _covid_case_body(psn_no: str) -> dict:
    return {
        "psn_no": psn_no,
        "status": "suspected",
        "diagnosed_at": "2024-02-01T09:00:00+08:00",
        "fixmedins_code": A,
        "diagnosis": "新冠疑似",
        "published": False,
    }


async def _new_covid_case(w: World) -> Probe:
    return Probe("/v1/covid-cases", json=_covid_case_body(await _registered(w)))


async def _covid_case_of_a(w: World) -> tuple[str, str]:
    psn_no = await _registered(w)
    created = await w.clients["eligibility"].post("/v1/covid-cases", headers=ADMIN, json=_covid_case_body(psn_no))
    assert created.status_code == 201, created.text
    return psn_no, created.json()["case_id"]


async def _covid_cases_of_a_person(w: World) -> Probe:
    psn_no, _ = await _covid_case_of_a(w)
    return Probe("/v1/covid-cases", params={"psn_no": psn_no})


async def _a_covid_case(w: World) -> Probe:
    _, case_id = await _covid_case_of_a(w)
    return Probe(f"/v1/covid-cases/{case_id}")


INSTITUTION_BODY = {
    "fixmedins_name": "租户测试",
    "kind": "hospital",
    "level": 2,
    "affiliation": "city",
    "admdvs": "621000",
}
ELIGIBILITY = [
    ops_only("eligibility", "GET", "/v1/persons/{psn_no}", _person_probe("/v1/persons/{psn_no}")),
    ops_only("eligibility", "GET", "/v1/persons/{psn_no}/snapshot", _person_probe("/v1/persons/{psn_no}/snapshot")),
    admin_only(
        "eligibility",
        "POST",
        "/v1/institutions",
        probe("/v1/institutions", json={"fixmedins_code": fresh("HT")} | INSTITUTION_BODY),
    ),
    admin_only("eligibility", "POST", "/v1/institutions/{code}/suspend", probe(f"/v1/institutions/{A}/suspend")),
    admin_only("eligibility", "POST", "/v1/institutions/{code}/resume", probe(f"/v1/institutions/{A}/resume")),
    admin_only("eligibility", "POST", "/v1/persons", _new_person),
    admin_only(
        "eligibility", "PATCH", "/v1/persons/{psn_no}", _person_probe("/v1/persons/{psn_no}", json={"card_no": "CARD1"})
    ),
    admin_only(
        "eligibility",
        "POST",
        "/v1/persons/{psn_no}/retire",
        _person_probe("/v1/persons/{psn_no}/retire", json={"retired_on": "2024-01-15"}),
    ),
    admin_only("eligibility", "POST", "/v1/persons/{psn_no}/ecert", _person_probe("/v1/persons/{psn_no}/ecert")),
    admin_only(
        "eligibility",
        "POST",
        "/v1/persons/{psn_no}/aid-identities",
        _person_probe(
            "/v1/persons/{psn_no}/aid-identities", json={"category": "low_income", "start_date": "2024-01-01"}
        ),
    ),
    admin_only(
        "eligibility",
        "PATCH",
        "/v1/persons/{psn_no}/aid-identities/{identity_id}",
        _person_probe("/v1/persons/{psn_no}/aid-identities/1", json={"lost_on": "2024-06-30"}),
    ),
    admin_only(
        "eligibility",
        "POST",
        "/v1/persons/{psn_no}/chronic-qualifications",
        _person_probe(
            "/v1/persons/{psn_no}/chronic-qualifications",
            json={"disease": "hypertension", "start_date": "2024-01-01", "certified_by": A},
        ),
    ),
    admin_only(
        "eligibility",
        "PATCH",
        "/v1/persons/{psn_no}/chronic-qualifications/{qualification_id}",
        _person_probe("/v1/persons/{psn_no}/chronic-qualifications/1", json={"end_date": "2024-06-30"}),
    ),
    admin_only(
        "eligibility",
        "POST",
        "/v1/persons/{psn_no}/offsite-registrations",
        _person_probe(
            "/v1/persons/{psn_no}/offsite-registrations",
            json={"mdtrtarea_admdvs": "610100", "start_date": "2024-01-01", "end_date": "2024-12-31"},
        ),
    ),
    admin_only(
        "eligibility",
        "PATCH",
        "/v1/persons/{psn_no}/offsite-registrations/{registration_id}",
        _person_probe("/v1/persons/{psn_no}/offsite-registrations/1", json={"end_date": "2024-06-30"}),
    ),
    admin_only("eligibility", "POST", "/v1/persons/{psn_no}/family", _family),
    admin_only("eligibility", "POST", "/v1/covid-cases", _new_covid_case),
    ops_only("eligibility", "GET", "/v1/covid-cases", _covid_cases_of_a_person),
    ops_only("eligibility", "GET", "/v1/covid-cases/{case_id}", _a_covid_case),
]

# Routes that take a tenant's name and answer every key alike, by design.
EXEMPT = {
    ("eligibility", "GET", "/v1/institutions/{code}"): "the register of designated institutions (name, kind, level, "
    "area) is public reference data, as the national platform publishes it; every key may read any entry",
}


# ---- prepayment (money per institution: the bureau's; an institution reads only its own position)


async def _position_of_a(w: World) -> Probe:
    """A's position, once prepayment knows A (from institution-changed)."""
    for _ in range(200):
        if (await w.clients["prepayment"].get(f"/v1/institutions/{A}/position", headers=ADMIN)).status_code == 200:
            return Probe(f"/v1/institutions/{A}/position")
        await asyncio.sleep(0.05)
    raise AssertionError(f"prepayment never learnt of {A}")


PREPAYMENT = [
    admin_only(
        "prepayment",
        "POST",
        "/v1/prepayments",
        probe(
            "/v1/prepayments",
            json={"fixmedins_code": A, "kind": "monthly", "amount": "1000.00", "disbursed_on": "2024-01-02"},
        ),
    ),
    ops_only("prepayment", "GET", "/v1/prepayments", probe("/v1/prepayments", params={"fixmedins_code": A})),
    admin_only(
        "prepayment",
        "POST",
        "/v1/prepayments/schedule",
        probe(
            "/v1/prepayments/schedule",
            json={"fixmedins_code": A, "amount": "100.00", "first_month": "2024-01", "months": 2},
        ),
    ),
    owned("prepayment", "GET", "/v1/institutions/{code}/position", _position_of_a, ops=200),
    ops_only(
        "prepayment", "GET", "/v1/ledger/trial-balance", probe("/v1/ledger/trial-balance", params={"fixmedins_code": A})
    ),
    ops_only(
        "prepayment",
        "GET",
        "/v1/ledger/entries",
        probe("/v1/ledger/entries", params={"fixmedins_code": A, "setl_id": "S-NONE"}),
    ),
    ops_only(
        "prepayment", "GET", "/v1/subsidies", probe("/v1/subsidies", params={"payer": "city", "fixmedins_code": A})
    ),
    admin_only(
        "prepayment",
        "POST",
        "/v1/clearings",
        probe("/v1/clearings", json={"period_start": "2024-01-01", "period_end": "2024-01-31", "fixmedins_code": A}),
    ),
    ops_only("prepayment", "GET", "/v1/clearings", probe("/v1/clearings", params={"fixmedins_code": A})),
    admin_only(
        "prepayment", "PUT", "/v1/budgets/{code}", probe(f"/v1/budgets/{A}", json={"year": 2024, "amount": "1.00"})
    ),
    ops_only(
        "prepayment", "GET", "/v1/budgets/{code}", probe(f"/v1/budgets/{A}", params={"year": "2024"}), ok=(200, 404)
    ),
    admin_only(
        "prepayment",
        "POST",
        "/v1/subsidy-payments",
        probe(
            "/v1/subsidy-payments",
            json={"payer": "city", "to_fixmedins_code": A, "amount": "1.00", "paid_on": "2024-03-10", "ref": "R-TEN"},
        ),
    ),
]

# ---- settlement operations of the national-platform gateway (issue 12): what an HIS takes back, what it reads


async def _a_visit_to_cancel(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), lines=False)
    rows = w.rows("settlement", "SELECT status FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id)
    return Probe(f"/v1/visits/{mdtrt_id}/cancel", written=rows)


async def _a_discharge_to_cancel(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), med_type="21")
    left = await w.settlement.post(
        f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": "2024-03-05T10:00:00+08:00"}, headers=key("A")
    )
    assert left.status_code == 200, left.text
    rows = w.rows("settlement", "SELECT endtime FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id)
    return Probe(f"/v1/visits/{mdtrt_id}/discharge/cancel", written=rows)


async def _visit_information(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), lines=False)
    rows = w.rows("settlement", "SELECT med_type, diagnoses FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id)
    body = {"med_type": "14", "diagnoses": ["I10"], "chronic_disease": "hypertension"}
    return Probe(f"/v1/visits/{mdtrt_id}/information", json=body, written=rows)


async def _lines_to_cancel(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person())
    rows = w.rows("settlement", "SELECT feedetl_sn FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id)
    return Probe(f"/v1/visits/{mdtrt_id}/fees/cancel", json={"all": True}, written=rows)


async def _a_line_to_put(w: World) -> Probe:
    mdtrt_id = await w.visit(w.person(), lines=False)
    line = item("TA1", "30.00") | {"feedetl_sn": "PUT1"}
    rows = w.rows("settlement", "SELECT cnt FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id)
    return Probe(f"/v1/visits/{mdtrt_id}/fees/PUT1", json=line, written=rows)


async def _classified_fees(w: World) -> Probe:
    fees = await _fees(w)
    return Probe(fees.path + "/classified", json=fees.json, written=fees.written)


async def _classified_lines(w: World) -> Probe:
    return Probe(f"/v1/visits/{await w.visit(w.person())}/fees")


async def _accumulators(w: World) -> Probe:
    person = w.person()
    await w.settled(person)
    return Probe(f"/v1/persons/{person.psn_no}/accumulators", params={"year": "2024"})


def _settlement_totals(w: World) -> Awaitable[Probe]:
    params = {"insutype": "310", "clr_type": "11", "setl_optins": "621000", "begndate": "2024-01-01"}
    return probe(f"/v1/institutions/{A}/settlement-totals", params=params | {"enddate": "2024-12-31"})(w)


async def _rx_presettle(w: World) -> Probe:
    dispense = await _dispense(w)
    return Probe("/v1/pharmacy/settlements/presettle", json=dispense.json, written=dispense.written)


async def _purchase_presettle(w: World) -> Probe:
    purchase = await _a_purchase(w)
    return Probe("/v1/pharmacy/purchases/presettle", json=purchase.json, written=purchase.written)


GATEWAY_OPERATIONS = [
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/cancel", _a_visit_to_cancel),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/discharge/cancel", _a_discharge_to_cancel),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/information", _visit_information),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/fees/cancel", _lines_to_cancel),
    owned("settlement", "PUT", "/v1/visits/{mdtrt_id}/fees/{feedetl_sn}", _a_line_to_put, ok=201),
    owned("settlement", "POST", "/v1/visits/{mdtrt_id}/fees/classified", _classified_fees, ok=201),
    owned("settlement", "GET", "/v1/visits/{mdtrt_id}/fees", _classified_lines),
    owned("settlement", "GET", "/v1/persons/{psn_no}/accumulators", _accumulators, ops=200),
    owned("settlement", "GET", "/v1/institutions/{code}/settlement-totals", _settlement_totals, ops=200),
    Case(
        "settlement",
        "POST",
        "/v1/pharmacy/settlements/presettle",
        _rx_presettle,
        {"P2": 403, "B": 403, "A": 403, "ops": 403, "P1": 200},
        "as POST /v1/pharmacy/settlements: only the dispensing pharmacy P1",
    ),
    Case(
        "settlement",
        "POST",
        "/v1/pharmacy/purchases/presettle",
        _purchase_presettle,
        {"P2": 403, "B": 403, "A": 403, "ops": 403, "P1": 200},
        "as POST /v1/pharmacy/purchases: only the selling pharmacy P1",
    ),
]

# ---- supervision (issue 16): alerts name persons and institutions; they are the bureau's (ops reads, admin acts)

SUPERVISION = [
    ops_only("reporting", "GET", "/v1/alerts", probe("/v1/alerts", params={"fixmedins_code": A, "psn_no": "P-NONE"})),
]

CASES = SETTLEMENT + ELIGIBILITY + PREPAYMENT + GATEWAY_OPERATIONS + SUPERVISION


async def _request(world: World, case: Case, p: Probe, who: str) -> httpx.Response:
    return await world.clients[case.service].request(
        case.method, p.path, params=p.params, json=p.json, headers=key(who)
    )


async def _try_case(world: World, case: Case) -> None:
    """The refused keys first (403 problem+json, nothing written), then the allowed ones, the owner last."""
    assert "B" in case.expect and "ops" in case.expect and {"P1", "P2"} & set(case.expect), case.expect
    p = await case.make(world)
    assert p.written is not None or case.method == "GET" or case.by_role, f"{case.id}: say what it could write"
    before = await p.written() if p.written else None
    refused = [who for who, status in case.expect.items() if status == 403]
    for who in refused:
        response = await _request(world, case, p, who)
        assert response.status_code == 403, f"{case.id} with {who}'s key: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"] == "application/problem+json"
        code = response.json()["code"]
        assert code in REFUSED, f"{case.id} with {who}'s key: {code}"
        if case.by_role:
            assert code == "FORBIDDEN", f"{case.id} with {who}'s key: {code}, not the role check's refusal"
        if p.written is not None:
            assert await p.written() == before, f"{case.id} with {who}'s key wrote something"
    for who in (who for who in case.expect if who not in refused):
        wanted = case.expect[who]
        response = await _request(world, case, p, who)
        statuses = wanted if isinstance(wanted, tuple) else (wanted,)
        assert response.status_code in statuses, f"{case.id} with {who}'s key: {response.status_code} {response.text}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_resource_of_a_is_refused_to_others_and_served_to_a(world, case):
    await _try_case(world, case)


async def test_every_tenant_route_has_a_case(world):
    """Each route that takes a psn_no, mdtrt_id, setl_id, rx_no or fixmedins_code has a case or an exemption; nothing
    listed here names a route that is gone."""
    listed = {(c.service, c.method, c.route) for c in CASES} | set(EXEMPT)
    missing, existing = [], set()
    for service in SERVICES:
        app = world.clients[service]._transport.app
        existing |= {(service, m, p) for m, p in all_routes(app)}
        for (method, path), names in sorted(tenant_routes(app).items()):
            if (service, method, path) not in listed:
                missing.append(f"{service} {method} {path} takes {sorted(names)}")
    assert not missing, "routes without a tenancy case:\n" + "\n".join(missing)
    assert not listed - existing, f"cases for routes that no longer exist: {sorted(listed - existing)}"


async def test_a_days_list_without_a_code_shows_only_the_keys_own(world):
    """GET /v1/settlements without fixmedins_code: an HIS or pharmacy key gets its own institution's, never A's."""
    done = await world.settled(world.person())
    day = done["setl_time"][:10]
    for who in ("B", "P1"):
        listed = await world.settlement.get("/v1/settlements", params={"setl_date": day}, headers=key(who))
        assert listed.status_code == 200, listed.text
        assert done["setl_id"] not in {s["setl_id"] for s in listed.json()["items"]}
        assert {s["fixmedins_code"] for s in listed.json()["items"]} <= {B if who == "B" else who}
    mine = await world.settlement.get("/v1/settlements", params={"setl_date": day}, headers=key("A"))
    assert done["setl_id"] in {s["setl_id"] for s in mine.json()["items"]}
