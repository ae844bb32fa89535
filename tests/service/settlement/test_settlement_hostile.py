"""Hostile input at the settlement service (issue 17): every input gets a 4xx problem, never a 5xx, and
nothing accepted can fail later — a visit whose fee lines were taken can always be settled."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settlement_support import ADMIN, his, item, open_visit, settle, visit_body

from services.settlement import eligibility_client
from services.settlement.schemas import MAX_LINE_AMOUNT
from shared.http import InternalClient
from shared.problems import Problem
from shared.testing import OPS_KEY

OPS = {"X-Api-Key": OPS_KEY}
DAY = date(2024, 3, 1)
NUL = "\x00"
SURROGATE = "\ud800"  # a lone surrogate: JSON can carry it as \ud800, UTF-8 (and so PostgreSQL) cannot
FAR_TIMES = [
    "0001-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59-08:00",
    "1899-12-31T12:00:00+08:00",
    "2100-01-01T08:00:00+08:00",
]


def refused(response: httpx.Response, status: int = 422) -> dict:
    """A 4xx problem+json with a stable code (never a 5xx)."""
    assert response.status_code == status, f"{response.status_code} {response.text[:400]}"
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["code"].isupper() and body["status"] == status, body
    return body


async def post_raw(api, path: str, body, headers: dict) -> httpx.Response:
    """POST a body as JSON with \\u escapes (so that lone surrogates survive the client)."""
    content = json.dumps(body, ensure_ascii=True).encode()
    return await api.post(path, content=content, headers={**headers, "Content-Type": "application/json"})


async def lines_of(db, mdtrt_id: str) -> int:
    return await db.scalar("SELECT count(*) FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id)


async def visits_of(db, psn_no: str) -> int:
    return await db.scalar("SELECT count(*) FROM settlement.visits WHERE psn_no = :p", p=psn_no)


# ---------------------------------------------------------------- 1. text PostgreSQL cannot store


@pytest.mark.parametrize("bad", [NUL, SURROGATE, f"药{NUL}名", f"x{SURROGATE}y"])
async def test_fee_line_text_that_postgresql_refuses_is_422(api, fake, db, bad):
    mdtrt_id = await open_visit(api, fake.add())
    for field in ("med_list_name", "feedetl_sn"):
        line = {**item("TA1", "10.00"), field: bad}
        refused(await post_raw(api, f"/v1/visits/{mdtrt_id}/fees", {"items": [line]}, his()))
    assert await lines_of(db, mdtrt_id) == 0


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
async def test_every_string_of_a_body_is_checked(api, fake, db, bad):
    person = fake.add()
    for field in ("mdtrt_cert_no", "psn_no", "chronic_disease"):
        refused(await post_raw(api, "/v1/visits", {**visit_body(person), field: f"A{bad}"}, his()))
    refused(await post_raw(api, "/v1/visits", {**visit_body(person), "diagnoses": [f"U07{bad}"]}, his()))
    refused(await post_raw(api, "/v1/visits", {**visit_body(person), f"k{bad}": 1}, his()))
    assert await visits_of(db, person.psn_no) == 0
    entry = json.dumps({"med_list_name": f"名{bad}", "item_class": "B"}).encode()
    put = await api.put(
        f"/v1/catalog/ZH-{uuid.uuid4().hex[:6]}", content=entry, headers={**ADMIN, "Content-Type": "application/json"}
    )
    refused(put)
    rx = {
        "rx_no": "RX" + uuid.uuid4().hex[:10],
        "psn_no": person.psn_no,
        "fixmedins_code": "H1",
        "issued_at": "2024-03-01T09:00:00+08:00",
        "items": [{"med_list_codg": "TA-DRUG", "med_list_name": f"药{bad}", "cnt": "1", "days_supply": 7}],
    }
    refused(await post_raw(api, "/v1/prescriptions", rx, his()))
    claim = {
        "visit": {**visit_body(person), "mdtrt_cert_no": f"C{bad}"},
        "items": [item("TA1", "10.00")],
    }
    claim["visit"].pop("mdtrt_cert_type")
    refused(await post_raw(api, "/v1/claims", claim, his()))


@pytest.mark.parametrize("q", ["%00", "a%00b", "%1F", "%7F"])
async def test_catalogue_search_with_control_characters_is_422(api, q):
    refused(await api.get(f"/v1/catalog?q={q}", headers=his()))


async def test_catalogue_search_still_finds_printable_text(api):
    found = await api.get("/v1/catalog", params={"q": "COVID 药 %_"}, headers=his())
    assert found.status_code == 200, found.text


# ---------------------------------------------------------------- 2. integers in queries


@pytest.mark.parametrize(
    "path",
    [
        "/v1/settlements?setl_date=2024-03-01&offset=99999999999999999999",
        "/v1/settlements?setl_date=2024-03-01&offset=9223372036854775808",
        "/v1/settlements?setl_date=2024-03-01&limit=99999999999999999999",
        "/v1/settlements?setl_date=2024-03-01&offset=-1",
        "/v1/settlements?setl_date=2024-03-01&limit=0",
        "/v1/catalog?offset=99999999999999999999",
        "/v1/catalog?offset=9223372036854775808",
        "/v1/catalog?limit=99999999999999999999",
    ],
)
async def test_integers_beyond_their_bounds_are_422(api, path):
    refused(await api.get(path, headers=ADMIN))


async def test_integers_within_their_bounds_answer(api):
    for path in ("/v1/settlements?setl_date=2024-03-01&offset=10000000&limit=500", "/v1/catalog?offset=10000000"):
        response = await api.get(path, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


# ---------------------------------------------------------------- 3. dates and times


@pytest.mark.parametrize("when", FAR_TIMES)
async def test_times_outside_1900_to_2099_are_422_and_write_nothing(api, fake, db, when):
    person = fake.add()
    refused(await api.post("/v1/visits", json={**visit_body(person), "begntime": when}, headers=his()))
    assert await visits_of(db, person.psn_no) == 0
    mdtrt_id = await open_visit(api, person, med_type="21")
    line = {**item("TA1", "10.00"), "fee_ocur_time": when}
    refused(await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [line]}, headers=his()))
    assert await lines_of(db, mdtrt_id) == 0
    refused(await api.post(f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": when}, headers=his()))
    rx = {
        "rx_no": "RX" + uuid.uuid4().hex[:10],
        "psn_no": person.psn_no,
        "fixmedins_code": "H1",
        "issued_at": when,
        "items": [{"med_list_codg": "TA-DRUG", "med_list_name": "药", "cnt": "1", "days_supply": 7}],
    }
    refused(await api.post("/v1/prescriptions", json=rx, headers=his()))
    visit = {k: v for k, v in visit_body(person, med_type="21").items() if not k.startswith("mdtrt_cert")}
    for times in ({"begntime": when, "endtime": "2024-03-05T09:00:00+08:00"}, {"endtime": when}):
        claim = {"visit": {**visit, **times}, "items": [item("TA1", "10.00")]}
        refused(await api.post("/v1/claims", json=claim, headers=his()))
    assert (await api.get(f"/v1/visits/{mdtrt_id}", headers=his())).json()["status"] == "open"


@pytest.mark.parametrize("when", [0, 1709254800, "1709254800", True, "2024-03-01T09:00:00+08:00 junk", "yesterday"])
async def test_times_are_rfc3339_text(api, fake, when):
    refused(await api.post("/v1/visits", json={**visit_body(fake.add()), "begntime": when}, headers=his()))


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "2100-01-01", "20240301", "٢٠٢٤-٠٣-٠١"])
async def test_query_dates_outside_the_window_are_422(api, day):
    refused(await api.get("/v1/settlements", params={"setl_date": day}, headers=ADMIN))
    refused(await api.get("/v1/totals", params={"date": day}, headers=OPS))


async def test_times_at_the_edges_of_the_window_are_taken(api, fake):
    person = fake.add()
    for when in ("1900-01-01T00:00:00+08:00", "2099-12-31T23:59:59+08:00", "2024-03-01T09:00:00Z"):
        created = await api.post("/v1/visits", json={**visit_body(person), "begntime": when}, headers=his())
        assert created.status_code in (201, 422), created.text  # 422 only for want of a policy of that date
        if created.status_code == 422:
            assert created.json()["code"] == "POLICY_NOT_FOUND", created.text


# ---------------------------------------------------------------- 4. amounts bounded where they enter


@pytest.mark.parametrize(
    "pric, cnt",
    [("999999999.99", "1001"), ("999999999.99", "1"), ("10000000.00", "1"), ("5000000.00", "2.0001"), ("1", "1000001")],
)
async def test_fee_lines_beyond_the_line_bound_are_422(api, fake, db, pric, cnt):
    mdtrt_id = await open_visit(api, fake.add())
    refused(await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [item("TA1", pric, cnt)]}, headers=his()))
    assert await lines_of(db, mdtrt_id) == 0


async def test_a_declared_line_total_beyond_the_bound_is_422(api, fake, db):
    mdtrt_id = await open_visit(api, fake.add())
    line = item("TA1", "1.00", "1", det_item_fee_sumamt="999999999.99")
    refused(await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [line]}, headers=his()))


async def test_the_largest_visit_accepted_can_be_settled(api, fake, db):
    """1,000 lines (the policy's most) at the largest line amount: taken, and settled."""
    person = fake.add()
    top = str(MAX_LINE_AMOUNT)
    lines = [item("TA1", top, "1") for _ in range(999)] + [item("TA2", "4999999.99", "2")]
    mdtrt_id = await open_visit(api, person, items=lines)
    done = await settle(api, mdtrt_id)
    assert done.status_code == 201, done.text
    assert Decimal(done.json()["medfee_sumamt"]) == MAX_LINE_AMOUNT * 999 + Decimal("9999999.98")


@st.composite
def bounded_lines(draw) -> list[dict]:
    """Fee lines within the bounds, many of them at or near the largest amount."""
    count = draw(st.sampled_from([1, 2, 7, 40, 250, 1000]))
    fen = st.one_of(
        st.just(int(MAX_LINE_AMOUNT * 100)), st.integers(0, int(MAX_LINE_AMOUNT * 100)), st.integers(0, 10**6)
    )
    lines = []
    for _ in range(count):
        cnt = draw(st.sampled_from([Decimal("1"), Decimal("0.0001"), Decimal("3"), Decimal("12.5"), Decimal("1000")]))
        limit = int(MAX_LINE_AMOUNT * 100 / cnt)  # the largest price (in fen) whose line stays within the bound
        pric = Decimal(min(draw(fen), limit, int(MAX_LINE_AMOUNT * 100))) / 100
        code = draw(st.sampled_from(["TA1", "TA2", "TB1", "ZZ-UNKNOWN", "COVID-NMTW", "COVID-AGT"]))
        lines.append(item(code, f"{pric:.2f}", str(cnt), draw(st.sampled_from(["A", "B", "C", None]))))
    return lines


@settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=bounded_lines(), inpatient=st.booleans(), aided=st.booleans())
async def test_a_visit_whose_lines_were_taken_can_always_be_settled(api, fake, lines, inpatient, aided):
    person = fake.add(aid=[{"category": "dibao", "start_date": "2020-01-01"}] if aided else None)
    created = await api.post(
        "/v1/visits", json=visit_body(person, med_type="21" if inpatient else "11", code="H3"), headers=his("H3")
    )
    assert created.status_code == 201, created.text
    mdtrt_id = created.json()["mdtrt_id"]
    uploaded = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": lines}, headers=his("H3"))
    if uploaded.status_code == 422:  # refused as a whole (e.g. above a catalogue price cap): nothing to settle
        assert uploaded.json()["code"] in ("PRICE_ABOVE_CAP",), uploaded.text
        return
    assert uploaded.status_code == 201, uploaded.text
    if inpatient:
        discharged = await api.post(
            f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": "2024-03-09T09:00:00+08:00"}, headers=his("H3")
        )
        assert discharged.status_code == 200, discharged.text
    presettled = await api.post(f"/v1/visits/{mdtrt_id}/presettle", json={}, headers=his("H3"))
    assert presettled.status_code == 200, presettled.text
    done = await settle(api, mdtrt_id, code="H3")
    assert done.status_code == 201, done.text
    assert Decimal(done.json()["medfee_sumamt"]) <= MAX_LINE_AMOUNT * len(lines)
    reversed_ = await api.post(f"/v1/settlements/{done.json()['setl_id']}/reverse", headers=his("H3"))
    assert reversed_.status_code == 200, reversed_.text


# ---------------------------------------------------------------- 5. money is a plain decimal string


BAD_MONEY = [
    "１２.００",
    "1_000.00",
    "+5.00",
    " 5.00",
    "5.00 ",
    "5.001",
    "5e2",
    "NaN",
    "Infinity",
    "0x10",
    "５",
    "٥",
    "",
    ".5",
    "5.",
    "-0.00",
    "-5.00",
    5,
    5.0,
    True,
    None,
]


@pytest.mark.parametrize("bad", BAD_MONEY)
async def test_money_fields_take_only_plain_decimal_strings(api, fake, db, bad):
    person = fake.add()
    mdtrt_id = await open_visit(api, person)
    for field in ("pric", "det_item_fee_sumamt") if bad is not None else ("pric",):  # det_… may be null
        line = {**item("TA1", "5.00"), field: bad}
        refused(await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [line]}, headers=his()))
    assert await lines_of(db, mdtrt_id) == 0
    code = f"ZM-{uuid.uuid4().hex[:6]}"
    if bad is not None:  # price_cap may be null
        entry = {"med_list_name": "测试", "item_class": "B", "price_cap": bad}
        refused(await api.put(f"/v1/catalog/{code}", json=entry, headers=ADMIN))
    credit = {"amount": bad, "period": "2024-03"}
    refused(await api.post(f"/v1/accounts/{person.psn_no}/credits", json=credit, headers=ADMIN))
    assert (await api.get(f"/v1/catalog/{code}", headers=ADMIN)).status_code in (404, 405)


@pytest.mark.parametrize(
    "good, wire", [("12", "12.00"), ("12.5", "12.50"), ("0.00", "0.00"), ("9999999.99", "9999999.99")]
)
async def test_plain_money_is_taken(api, good, wire):
    code = f"ZG-{uuid.uuid4().hex[:6]}"
    put = await api.put(
        f"/v1/catalog/{code}", json={"med_list_name": "测试", "item_class": "B", "price_cap": good}, headers=ADMIN
    )
    assert put.status_code == 201 and put.json()["price_cap"] == wire, put.text


@pytest.mark.parametrize("bad", ["１", "1_0", "+1", "-1", "1e2", " 1", "0.00001", -1, 1e-05, float("inf")])
async def test_quantities_are_plain_too(api, fake, db, bad):
    mdtrt_id = await open_visit(api, fake.add())
    line = {**item("TA1", "5.00"), "cnt": bad}
    refused(await post_raw(api, f"/v1/visits/{mdtrt_id}/fees", {"items": [line]}, his()))  # inf as Infinity
    assert await lines_of(db, mdtrt_id) == 0


# ---------------------------------------------------------------- 6. booleans are JSON true / false


@pytest.mark.parametrize("bad", ["yes", "true", "1", 1, 0, "on", None])
async def test_booleans_are_strict(api, fake, db, bad):
    person = fake.add()
    refused(await api.post("/v1/visits", json={**visit_body(person), "referral_compliant": bad}, headers=his()))
    assert await visits_of(db, person.psn_no) == 0
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "10.00")])
    for path in ("presettle", "settle"):
        refused(await api.post(f"/v1/visits/{mdtrt_id}/{path}", json={"acct_used_flag": bad}, headers=his()))
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    code = f"ZB-{uuid.uuid4().hex[:6]}"
    for flag in ("covid_only", "account_excluded"):
        entry = {"med_list_name": "测试", "item_class": "B", flag: bad}
        refused(await api.put(f"/v1/catalog/{code}", json=entry, headers=ADMIN))


# ---------------------------------------------------------------- 7. eligibility's 4xx passed on, only outages 503


def _answering(status: int, body: dict | bytes | None = None) -> InternalClient:
    content = body if isinstance(body, bytes) else json.dumps(body or {}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": "application/problem+json"})

    return InternalClient("http://eligibility.test", timeout=2.0, transport=httpx.MockTransport(handler))


PROBLEM = {
    "code": "VALIDATION_FAILED",
    "detail": "request failed validation",
    "errors": [{"field": "on", "code": "VALUE_ERROR", "detail": "date out of range"}],
}


@pytest.mark.parametrize("status", [400, 409, 413, 422])
async def test_a_downstream_4xx_is_passed_on_as_it_is(status):
    with pytest.raises(Problem) as caught:
        await eligibility_client.fetch_person(_answering(status, PROBLEM), api_key="k", psn_no="P1", on=DAY)
    assert caught.value.status == status and caught.value.code == "VALIDATION_FAILED"
    assert caught.value.errors == PROBLEM["errors"]
    if status == 422:  # a credential eligibility cannot even read matches nobody
        assert (
            await eligibility_client.verify_credential(
                _answering(422, PROBLEM), api_key="k", cert_type="02", cert_no="x"
            )
            is None
        )  # noqa: E501
        return
    with pytest.raises(Problem) as caught:
        await eligibility_client.verify_credential(
            _answering(status, PROBLEM), api_key="k", cert_type="02", cert_no="x"
        )
    assert caught.value.status == status and caught.value.code == "VALIDATION_FAILED"


@pytest.mark.parametrize(
    "status, body",
    [(500, PROBLEM), (502, b"bad gateway"), (503, PROBLEM), (401, PROBLEM), (403, PROBLEM), (429, PROBLEM), (302, b"")],
)
async def test_only_an_eligibility_that_cannot_answer_is_503(status, body):
    with pytest.raises(eligibility_client.EligibilityUnavailable) as caught:
        await eligibility_client.fetch_person(_answering(status, body), api_key="k", psn_no="P1", on=DAY)
    assert caught.value.status == 503 and caught.value.code == "ELIGIBILITY_UNAVAILABLE"


async def test_a_4xx_without_a_problem_body_keeps_its_status():
    with pytest.raises(Problem) as caught:
        await eligibility_client.fetch_person(_answering(422, b"<html>no</html>"), api_key="k", psn_no="P1", on=DAY)
    assert caught.value.status == 422 and caught.value.code == "ELIGIBILITY_REFUSED"


@pytest.mark.parametrize("psn_no", ["A/../B", "A.B", "A:B", "A B", "../institutions/H1"])
async def test_a_psn_no_is_one_path_segment_as_eligibility_registers_them(api, fake, db, psn_no):
    """The psn_no goes into eligibility's snapshot path: '/' or '.' could make it another person's."""
    person = fake.add()
    refused(await api.post("/v1/visits", json={**visit_body(person), "psn_no": psn_no}, headers=his()))
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "10.00")])
    refused(await api.post(f"/v1/visits/{mdtrt_id}/presettle", json={"acct_payer_psn_no": psn_no}, headers=his()))


async def test_a_request_the_real_eligibility_refuses_is_422_from_settlement(api, settlement_app, eligibility):
    """A psn_no that settlement's schema takes but eligibility's path refuses (33..40 characters): 422, not 503."""
    own = settlement_app.state.eligibility
    settlement_app.state.eligibility = InternalClient(
        "http://eligibility.test", timeout=2.0, transport=httpx.ASGITransport(app=eligibility._transport.app)
    )
    try:
        someone = SimpleNamespace(psn_no="P" * 39, certno="C1")  # eligibility's psn_no has at most 32
        response = await api.post("/v1/visits", json=visit_body(someone), headers=his())
        problem = refused(response, 422)
        assert problem["code"] == "VALIDATION_FAILED" and "eligibility" in problem["detail"], problem
    finally:
        settlement_app.state.eligibility = own
