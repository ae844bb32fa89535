"""Aid identities, chronic qualifications, off-site registrations and family, seen through the snapshot."""

from __future__ import annotations

import pytest
from eligibility_support import ADMIN


def _categories(snapshot: dict) -> list[str]:
    return [identity["category"] for identity in snapshot["aid_identities"]]


async def test_aid_identity_window_ends_with_the_month_it_was_lost(eligibility, register, snap):
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/aid-identities"
    created = await eligibility.post(path, json={"category": "dibao", "start_date": "2024-01-10"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    identity = created.json()
    assert identity["window_end"] is None
    assert _categories(await snap(person["psn_no"], "2024-01-09")) == []
    assert _categories(await snap(person["psn_no"], "2024-01-10")) == ["dibao"]
    lost = await eligibility.patch(f"{path}/{identity['id']}", json={"lost_on": "2024-02-05"}, headers=ADMIN)
    assert lost.status_code == 200 and lost.json()["window_end"] == "2024-02-29"
    on_last_day = await snap(person["psn_no"], "2024-02-29")
    assert on_last_day["aid_identities"] == [{"category": "dibao", "start_date": "2024-01-10", "lost_on": "2024-02-05"}]
    assert _categories(await snap(person["psn_no"], "2024-03-01")) == []


async def test_several_identities_and_regaining_one_after_a_gap(eligibility, register, snap, refused):
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/aid-identities"
    for body in (
        {"category": "dibao", "start_date": "2023-01-01", "lost_on": "2023-06-15"},
        {"category": "tekun", "start_date": "2023-05-01"},
        {"category": "dibao", "start_date": "2023-07-01"},
    ):  # the day after the old window ends
        response = await eligibility.post(path, json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
    assert _categories(await snap(person["psn_no"], "2023-06-30")) == ["dibao", "tekun"]
    assert _categories(await snap(person["psn_no"], "2023-07-01")) == ["tekun", "dibao"]
    await refused("POST", path, {"category": "dibao", "start_date": "2023-06-30"}, code="OVERLAPPING_WINDOW")
    await refused(
        "POST",
        path,
        {"category": "tekun", "start_date": "2020-01-01", "lost_on": "2023-05-01"},
        code="OVERLAPPING_WINDOW",
    )


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"category": "wubao", "start_date": "2024-01-01"}, 422, "UNKNOWN_AID_CATEGORY"),
        ({"category": "dibao", "start_date": "2024-01-10", "lost_on": "2024-01-09"}, 422, "END_BEFORE_START"),
        ({"category": "dibao", "start_date": "2024-02-30"}, 422, "VALIDATION_FAILED"),
        ({"category": "dibao", "start_date": 20240101}, 422, "VALIDATION_FAILED"),
        ({"category": "dibao"}, 422, "VALIDATION_FAILED"),
    ],
)
async def test_bad_aid_identities_write_nothing(register, refused, body, status, code):
    person = await register(insutype="390")
    await refused("POST", f"/v1/persons/{person['psn_no']}/aid-identities", body, status=status, code=code)


async def test_bad_loss_dates_and_unknown_ids(eligibility, register, refused):
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/aid-identities"
    first = (
        await eligibility.post(
            path, json={"category": "orphan", "start_date": "2022-01-01", "lost_on": "2022-03-03"}, headers=ADMIN
        )
    ).json()
    second = (
        await eligibility.post(path, json={"category": "orphan", "start_date": "2022-04-01"}, headers=ADMIN)
    ).json()
    await refused("PATCH", f"{path}/{second['id']}", {"lost_on": "2022-03-31"}, code="END_BEFORE_START")
    await refused("PATCH", f"{path}/{first['id']}", {"lost_on": None}, code="OVERLAPPING_WINDOW")  # would reopen
    await refused("PATCH", f"{path}/999999999", {"lost_on": "2022-05-01"}, status=404, code="AID_IDENTITY_NOT_FOUND")
    other = await register()
    await refused(
        "PATCH",
        f"/v1/persons/{other['psn_no']}/aid-identities/{first['id']}",
        {"lost_on": "2022-05-01"},
        status=404,
        code="AID_IDENTITY_NOT_FOUND",
    )
    await refused(
        "POST",
        "/v1/persons/NOBODY/aid-identities",
        {"category": "dibao", "start_date": "2024-01-01"},
        status=404,
        code="PERSON_NOT_FOUND",
    )


async def test_chronic_qualification_valid_between_its_dates(eligibility, register, hospital, snap):
    certifier = await hospital()
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/chronic-qualifications"
    response = await eligibility.post(
        path,
        headers=ADMIN,
        json={
            "disease": "hypertension",
            "two_disease_class": 1,
            "start_date": "2024-02-01",
            "end_date": "2024-12-31",
            "certified_by": certifier,
        },
    )
    assert response.status_code == 201, response.text
    diabetes = await eligibility.post(
        path, headers=ADMIN, json={"disease": "diabetes", "start_date": "2024-06-01", "certified_by": certifier}
    )
    assert diabetes.json()["two_disease_class"] == 2
    assert (await snap(person["psn_no"], "2024-01-31"))["chronic_qualifications"] == []
    assert (await snap(person["psn_no"], "2024-02-01"))["chronic_qualifications"] == [
        {
            "disease": "hypertension",
            "two_disease_class": 1,
            "start_date": "2024-02-01",
            "end_date": "2024-12-31",
            "certified_by": certifier,
        }
    ]
    assert [q["disease"] for q in (await snap(person["psn_no"], "2024-12-31"))["chronic_qualifications"]] == [
        "hypertension",
        "diabetes",
    ]
    assert [q["disease"] for q in (await snap(person["psn_no"], "2025-01-01"))["chronic_qualifications"]] == [
        "diabetes"
    ]
    ended = await eligibility.patch(f"{path}/{diabetes.json()['id']}", json={"end_date": "2025-03-31"}, headers=ADMIN)
    assert ended.status_code == 200
    assert (await snap(person["psn_no"], "2025-04-01"))["chronic_qualifications"] == []


async def test_bad_qualifications_write_nothing(register, hospital, refused):
    certifier = await hospital()
    pharmacy = await hospital(kind="pharmacy")
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/chronic-qualifications"
    good = {"disease": "hypertension", "two_disease_class": 2, "start_date": "2024-01-01", "certified_by": certifier}
    for change, code in (
        ({"two_disease_class": 3}, "INVALID_TWO_DISEASE_CLASS"),
        ({"disease": "diabetes", "two_disease_class": 1}, "INVALID_TWO_DISEASE_CLASS"),
        ({"disease": "M03900", "two_disease_class": 1}, "TWO_DISEASE_CLASS_NOT_APPLICABLE"),
        ({"disease": "高血压"}, "INVALID_DISEASE"),
        ({"end_date": "2023-12-31"}, "END_BEFORE_START"),
        ({"certified_by": "NOSUCH"}, "UNKNOWN_INSTITUTION"),
        ({"certified_by": pharmacy}, "CERTIFIER_NOT_HOSPITAL"),
        ({"two_disease_class": "1"}, "VALIDATION_FAILED"),
    ):
        await refused("POST", path, {**good, **change}, code=code)


async def test_qualification_by_a_suspended_institution_is_refused(eligibility, register, hospital, refused):
    certifier = await hospital()
    person = await register(insutype="390")
    assert (await eligibility.post(f"/v1/institutions/{certifier}/suspend", headers=ADMIN)).status_code == 200
    await refused(
        "POST",
        f"/v1/persons/{person['psn_no']}/chronic-qualifications",
        {"disease": "diabetes", "start_date": "2024-01-01", "certified_by": certifier},
        code="INSTITUTION_SUSPENDED",
    )


async def test_offsite_registration_covers_its_dates(eligibility, register, snap, refused):
    person = await register(insuplc_admdvs="621000")
    path = f"/v1/persons/{person['psn_no']}/offsite-registrations"
    response = await eligibility.post(
        path, headers=ADMIN, json={"mdtrtarea_admdvs": "610100", "start_date": "2024-03-01", "end_date": "2024-08-31"}
    )
    assert response.status_code == 201, response.text
    assert (await snap(person["psn_no"], "2024-02-29"))["offsite_registrations"] == []
    assert (await snap(person["psn_no"], "2024-08-31"))["offsite_registrations"] == [
        {"mdtrtarea_admdvs": "610100", "start_date": "2024-03-01", "end_date": "2024-08-31"}
    ]
    assert (await snap(person["psn_no"], "2024-09-01"))["offsite_registrations"] == []
    await refused("POST", path, {"mdtrtarea_admdvs": "610100", "start_date": "2024-08-01"}, code="OVERLAPPING_WINDOW")
    await refused(
        "POST",
        path,
        {"mdtrtarea_admdvs": "610100", "start_date": "2024-09-02", "end_date": "2024-09-01"},
        code="END_BEFORE_START",
    )
    await refused("POST", path, {"mdtrtarea_admdvs": "991000", "start_date": "2024-09-02"}, code="INVALID_ADMDVS")
    await refused("POST", path, {"mdtrtarea_admdvs": "621022", "start_date": "2024-09-02"}, code="OFFSITE_IN_HOME_CITY")


async def test_family_is_recorded_both_ways(eligibility, register, snap, refused):
    holder = await register()
    spouse = await register()
    child = await register(insutype="390")
    path = f"/v1/persons/{holder['psn_no']}/family"
    assert (
        await eligibility.post(path, json={"relation": "spouse", "member_psn_no": spouse["psn_no"]}, headers=ADMIN)
    ).status_code == 201
    assert (
        await eligibility.post(path, json={"relation": "child", "member_psn_no": child["psn_no"]}, headers=ADMIN)
    ).status_code == 201
    again = await eligibility.post(path, json={"relation": "child", "member_psn_no": child["psn_no"]}, headers=ADMIN)
    assert again.status_code == 200
    family = (await snap(holder["psn_no"], "2024-01-01"))["family"]
    assert sorted((m["relation"], m["member_psn_no"]) for m in family) == sorted(
        [("spouse", spouse["psn_no"]), ("child", child["psn_no"])]
    )
    assert (await snap(child["psn_no"], "2024-01-01"))["family"] == [
        {"relation": "parent", "member_psn_no": holder["psn_no"]}
    ]
    await refused(
        "POST", path, {"relation": "parent", "member_psn_no": child["psn_no"]}, status=409, code="FAMILY_CONFLICT"
    )
    await refused("POST", path, {"relation": "spouse", "member_psn_no": "NOBODY"}, code="UNKNOWN_FAMILY_MEMBER")
    await refused("POST", path, {"relation": "spouse", "member_psn_no": holder["psn_no"]}, code="FAMILY_SELF")
    await refused("POST", path, {"relation": "cousin", "member_psn_no": spouse["psn_no"]}, code="UNKNOWN_RELATION")
    await refused(
        "POST",
        "/v1/persons/NOBODY/family",
        {"relation": "spouse", "member_psn_no": spouse["psn_no"]},
        status=404,
        code="PERSON_NOT_FOUND",
    )


async def test_get_person_lists_every_record(eligibility, register, hospital):
    certifier = await hospital()
    person = await register()
    base = f"/v1/persons/{person['psn_no']}"
    await eligibility.post(
        f"{base}/aid-identities",
        json={"category": "fanpin", "start_date": "2020-01-01", "lost_on": "2020-02-01"},
        headers=ADMIN,
    )
    await eligibility.post(
        f"{base}/chronic-qualifications",
        json={"disease": "diabetes", "start_date": "2020-01-01", "certified_by": certifier},
        headers=ADMIN,
    )
    body = (await eligibility.get(base, headers=ADMIN)).json()
    assert [a["window_end"] for a in body["aid_identities"]] == ["2020-02-29"]
    assert [q["disease"] for q in body["chronic_qualifications"]] == ["diabetes"]
    assert body["version"] == 3
