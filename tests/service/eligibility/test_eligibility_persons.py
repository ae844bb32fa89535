"""Persons against real PostgreSQL: registration, validation codes, credentials, person type history."""

from __future__ import annotations

from datetime import date

import pytest
from eligibility_support import ADMIN, fresh_certno, fresh_code

from services.eligibility.certno import check_char, make_certno
from shared.testing import HIS_KEYS, OPS_KEY, PHARMACY_KEYS, fetch


async def test_registration_derives_sex_and_birth_date_and_issues_an_ecert(eligibility, register, count_rows):
    certno = make_certno(region="621002", brdy=date(1962, 7, 9), serial=124)  # even serial: female
    person = await register(certno=certno, psn_name="李四", contribution_base="6000.00", emp_no=fresh_code("E"))
    assert person["gend"] == "2" and person["brdy"] == "1962-07-09"
    assert person["psn_type"] == "in_service" and person["contribution_base"] == "6000.00"
    assert person["psn_no"].startswith("621000") and person["ecert_token"]
    male = await register(certno=make_certno(region="621002", brdy=date(1990, 1, 31), serial=135), insutype="390")
    assert male["gend"] == "1" and male["psn_type"] is None
    events = await count_rows("outbox", "key = :k and type = 'person-changed'", k=person["psn_no"])
    assert events == 1


async def test_given_psn_no_is_kept_and_lower_case_x_is_normalised(eligibility, register):
    first17 = "11010519491231002"
    psn_no = fresh_code("P")
    person = await register(psn_no=psn_no, certno=first17 + "x")
    assert person["psn_no"] == psn_no and person["certno"] == first17 + "X"
    again = await eligibility.post(
        "/v1/persons",
        headers=ADMIN,
        json={"certno": first17 + "X", "psn_name": "王五", "insutype": "390", "insuplc_admdvs": "621000"},
    )
    assert again.status_code == 409 and again.json()["code"] == "PERSON_EXISTS"


async def test_duplicates_are_409_and_write_nothing(register, refused):
    person = await register(card_no=fresh_code("C"))
    base = {"psn_name": "赵六", "insutype": "390", "insuplc_admdvs": "621000"}
    await refused("POST", "/v1/persons", {**base, "certno": person["certno"]}, status=409, code="PERSON_EXISTS")
    await refused(
        "POST",
        "/v1/persons",
        {**base, "certno": fresh_certno(), "psn_no": person["psn_no"]},
        status=409,
        code="PERSON_EXISTS",
    )
    await refused(
        "POST",
        "/v1/persons",
        {**base, "certno": fresh_certno(), "card_no": person["card_no"]},
        status=409,
        code="CARD_IN_USE",
    )


def _bad_checksum() -> str:
    good = fresh_certno()
    return good[:17] + ("1" if good[17] != "1" else "2")


def _with_birth(birth: str) -> str:
    first17 = f"110101{birth}003"
    return first17 + check_char(first17)


@pytest.mark.parametrize(
    "change, code, sub_code",
    [
        ({"certno": "BAD"}, "INVALID_CERTNO", "CERTNO_FORMAT"),
        ({"certno": _bad_checksum()}, "INVALID_CERTNO", "CERTNO_CHECKSUM"),
        ({"certno": _with_birth("19990230")}, "INVALID_CERTNO", "CERTNO_BIRTH_DATE"),
        ({"certno": _with_birth("20990101")}, "INVALID_CERTNO", "CERTNO_BIRTH_DATE_IN_FUTURE"),
        ({"insutype": "320"}, "UNKNOWN_INSUTYPE", "UNKNOWN_INSUTYPE"),
        ({"insutype": "390", "psn_type": "retired"}, "PSN_TYPE_NOT_APPLICABLE", "PSN_TYPE_NOT_APPLICABLE"),
        ({"psn_type": "student"}, "INVALID_PSN_TYPE", "INVALID_PSN_TYPE"),
        ({"insuplc_admdvs": "991000"}, "INVALID_ADMDVS", "INVALID_ADMDVS"),
        ({"insuplc_admdvs": "62100"}, "INVALID_ADMDVS", "INVALID_ADMDVS"),
        ({"contribution_base": "-1.00"}, "INVALID_CONTRIBUTION_BASE", "INVALID_CONTRIBUTION_BASE"),
        ({"contribution_base": 12.5}, "VALIDATION_FAILED", "VALUE_ERROR"),
        ({"contribution_base": 10**26}, "VALIDATION_FAILED", "VALUE_ERROR"),  # Decimal would overflow the fen
        ({"contribution_base": "1e30"}, "VALIDATION_FAILED", "VALUE_ERROR"),
        ({"psn_name": "\u0000"}, "VALIDATION_FAILED", "VALUE_ERROR"),
        ({"psn_name": "   "}, "VALIDATION_FAILED", "VALUE_ERROR"),
        ({"extra": 1}, "VALIDATION_FAILED", "EXTRA_FORBIDDEN"),
    ],
)
async def test_each_bad_registration_has_its_code_and_writes_nothing(refused, count_rows, change, code, sub_code):
    body = {
        "certno": fresh_certno(),
        "psn_name": "钱七",
        "insutype": "310",
        "insuplc_admdvs": "621000",
        "emp_no": fresh_code("E"),
        **change,
    }
    problem = await refused("POST", "/v1/persons", body, code=code)
    assert problem["errors"] and problem["errors"][0]["code"] == sub_code
    assert await count_rows("employers", "emp_no = :e", e=body["emp_no"]) == 0


async def test_credentials_resolve_to_the_person(eligibility, register):
    card = fresh_code("C")
    person = await register(card_no=card)
    for cert_type, cert_no in (
        ("01", person["ecert_token"]),
        ("02", person["certno"]),
        ("03", card),
        ("02", person["certno"].lower()),
    ):
        response = await eligibility.get(
            "/v1/verify",
            params={"mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no},
            headers={"X-Api-Key": HIS_KEYS["H1"]},
        )
        assert response.status_code == 200 and response.json() == {"psn_no": person["psn_no"]}
    other = await register()
    missing = await eligibility.get(
        "/v1/verify", params={"mdtrt_cert_type": "03", "mdtrt_cert_no": "NOPE1"}, headers=ADMIN
    )
    assert missing.status_code == 404 and missing.json()["code"] == "CREDENTIAL_NOT_FOUND"
    wrong_type = await eligibility.get(
        "/v1/verify", params={"mdtrt_cert_type": "04", "mdtrt_cert_no": card}, headers=ADMIN
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "INVALID_CERT_TYPE"
    snap = await eligibility.get(
        f"/v1/persons/{person['psn_no']}/snapshot",
        headers=ADMIN,
        params={"on": "2024-01-01", "mdtrt_cert_type": "02", "mdtrt_cert_no": other["certno"]},
    )
    assert snap.json()["credential_matches"] is False  # 冒名顶替: someone else's ID
    half = await eligibility.get(
        f"/v1/persons/{person['psn_no']}/snapshot", headers=ADMIN, params={"mdtrt_cert_type": "02"}
    )
    assert half.status_code == 422 and half.json()["code"] == "INCOMPLETE_CREDENTIAL"


async def test_reissued_ecert_replaces_the_old_one(eligibility, register, snap):
    person = await register()
    response = await eligibility.post(f"/v1/persons/{person['psn_no']}/ecert", headers=ADMIN)
    assert response.status_code == 201
    token = response.json()["ecert_token"]
    assert token != person["ecert_token"]
    old = await snap(person["psn_no"], "2024-05-01", mdtrt_cert_type="01", mdtrt_cert_no=person["ecert_token"])
    new = await snap(person["psn_no"], "2024-05-01", mdtrt_cert_type="01", mdtrt_cert_no=token)
    assert (old["credential_matches"], new["credential_matches"]) == (False, True)


async def test_retirement_takes_effect_the_next_month(eligibility, register, snap, refused):
    person = await register(psn_type="in_service")
    path = f"/v1/persons/{person['psn_no']}"
    response = await eligibility.post(f"{path}/retire", json={"retired_on": "2024-03-15"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["effective_from"] == "2024-04-01"
    assert (await snap(person["psn_no"], "2024-03-31"))["psn_type"] == "in_service"
    assert (await snap(person["psn_no"], "2024-04-01"))["psn_type"] == "retired"
    assert (await snap(person["psn_no"], "2030-01-01"))["psn_type"] == "retired"
    await refused("POST", f"{path}/retire", {"retired_on": "2024-06-01"}, status=409, code="ALREADY_RETIRED")
    resident = await register(insutype="390")
    await refused(
        "POST", f"/v1/persons/{resident['psn_no']}/retire", {"retired_on": "2024-06-01"}, code="NOT_AN_EMPLOYEE"
    )
    await refused(
        "POST", "/v1/persons/NOBODY/retire", {"retired_on": "2024-06-01"}, status=404, code="PERSON_NOT_FOUND"
    )


async def test_snapshot_has_the_contract_fields(register, snap):
    person = await register(contribution_base="5000.00")
    body = await snap(person["psn_no"], "2024-01-01")
    assert set(body) >= {
        "psn_no",
        "active",
        "insutype",
        "psn_type",
        "insuplc_admdvs",
        "aid_identities",
        "chronic_qualifications",
        "offsite_registrations",
        "family",
        "inactive_reason",
        "gend",
        "brdy",
        "covid_cases",
    }
    assert body["active"] is True and body["inactive_reason"] is None and "credential_matches" not in body
    assert body["contribution_base"] == "5000.00"


async def test_unknown_person_and_bad_dates(eligibility):
    missing = await eligibility.get("/v1/persons/NOBODY/snapshot", params={"on": "2024-01-01"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["code"] == "PERSON_NOT_FOUND"
    for bad in ("2024-02-30", "20240101", "yesterday", "9999-12-31"):
        response = await eligibility.get("/v1/persons/NOBODY/snapshot", params={"on": bad}, headers=ADMIN)
        assert response.status_code == 422, bad


async def test_readers_see_masked_personal_data_and_cannot_write(eligibility, register):
    person = await register(card_no=fresh_code("C"))
    seen = await eligibility.get(f"/v1/persons/{person['psn_no']}", headers={"X-Api-Key": OPS_KEY})
    assert seen.status_code == 200
    body = seen.json()
    assert body["certno"] != person["certno"] and "*" in body["certno"] and "*" in body["psn_name"]
    assert body["card_no"] != person["card_no"]
    snap = await eligibility.get(f"/v1/persons/{person['psn_no']}/snapshot", headers={"X-Api-Key": OPS_KEY})
    assert snap.status_code == 200
    for key in (HIS_KEYS["H1"], PHARMACY_KEYS["P1"]):  # institutions learn of persons through credentials only
        for path in (f"/v1/persons/{person['psn_no']}", f"/v1/persons/{person['psn_no']}/snapshot"):
            refused = await eligibility.get(path, headers={"X-Api-Key": key})
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    for key in (OPS_KEY, HIS_KEYS["H1"], PHARMACY_KEYS["P1"]):
        write = await eligibility.post("/v1/persons", json={}, headers={"X-Api-Key": key})
        assert write.status_code == 403
    assert (await eligibility.get(f"/v1/persons/{person['psn_no']}")).status_code == 401


async def test_person_changed_never_carries_the_id_number_or_name(eligibility, register, eligibility_app):
    person = await register(psn_name="孙八")
    await eligibility.post(
        f"/v1/persons/{person['psn_no']}/aid-identities",
        headers=ADMIN,
        json={"category": "dibao", "start_date": "2024-01-01"},
    )
    rows = [
        envelope
        for (envelope,) in await fetch(
            eligibility_app, "select envelope::text from outbox where key = :k", k=person["psn_no"]
        )
    ]
    assert len(rows) == 2
    for envelope in rows:
        assert person["certno"] not in envelope and "孙八" not in envelope and person["certno"][6:14] not in envelope
    assert '"change":"registered"' in rows[0].replace(" ", "") or '"change":"registered"' in rows[1].replace(" ", "")


async def test_patch_changes_card_and_employer(eligibility, register, refused):
    person = await register()
    other = await register(card_no=fresh_code("C"))
    emp_no = fresh_code("E")
    card = fresh_code("C")
    response = await eligibility.patch(
        f"/v1/persons/{person['psn_no']}",
        headers=ADMIN,
        json={"card_no": card, "emp_no": emp_no, "contribution_base": "7000.00"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["card_no"], response.json()["emp_no"]) == (card, emp_no)
    await refused(
        "PATCH", f"/v1/persons/{person['psn_no']}", {"card_no": other["card_no"]}, status=409, code="CARD_IN_USE"
    )
