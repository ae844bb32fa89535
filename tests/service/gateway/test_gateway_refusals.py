"""What the gateway refuses: at the gateway layer (HTTP 401 with the spec's messages, 表6) a missing header, a stale
timestamp, an unknown key, a wrong signature, a nonce seen before; as a business failure (HTTP 200, infcode -1, a
Chinese reason, output null, nothing written) another institution, a missing required field, an unknown infno, an
envelope that is not one. And what real clients send differently is taken: text/plain, `input` as a string,
/fsi/api/{infno}, numbers as strings, "" for absent, extra fields, infcode as a string, provincial med_type codes."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from gateway_support import ACCESS, twins
from gateway_support import his as his_of
from his_client import (
    SINGLE_URL,
    Item,
    admit_2401,
    fees_2204,
    now,
    numbered,
    person_1101,
    register_2201,
    settle_data,
    sign_in,
    visit_2203,
)

from shared.testing import fetch, fetchval


def _refused(response, message: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"code": 401, "message": message}


async def _visits(settlement, psn_no: str) -> int:
    return await fetchval(
        settlement._transport.app, "SELECT count(*) FROM settlement.visits WHERE psn_no = :p", p=psn_no
    )


async def test_the_gateway_layer_refuses_before_any_transaction(gateway, settlement, eligibility):
    p, _ = await twins(eligibility)
    his = his_of(gateway)
    body = json.dumps(his.envelope("2201", register_2201(p, when=now(), ipt_otp_no="X1"))).encode()

    async def post(headers):
        return await gateway.post(SINGLE_URL, content=body, headers={"content-type": "application/json", **headers})

    _refused(await post({}), "缺少服务网关的请求头!")
    partial = his.signed("2201")
    del partial["_api_signature"]
    _refused(await post(partial), "缺少服务网关的请求头!")
    _refused(await post(his.signed("2201", timestamp=int(time.time() * 1000) - 31 * 60 * 1000)), "签名时间戳超时!")
    _refused(await post(his.signed("2201", timestamp=int(time.time() * 1000) + 31 * 60 * 1000)), "签名时间戳超时!")
    stranger = his_of(gateway)
    stranger.access_key = "ak-nobody"
    _refused(await post(stranger.signed("2201")), "非法用户!")
    _refused(await post(his.signed("2201", secret="not-the-secret-of-h1")), "签名不一致!")
    tampered = his.signed("2201")
    tampered["_api_name"] = "2207"  # the signature covers the headers
    _refused(await post(tampered), "签名不一致!")
    tif = his_of(gateway, scheme="tif")
    _refused(await post(tif.signed("2201", secret="wrong-secret-wrong-secret")), "签名不一致!")
    _refused(await post(tif.signed("2201", timestamp=int(time.time()) - 3600)), "签名时间戳超时!")
    once = tif.signed("1101", nonce="n-" + p.psn_no)
    tif_body = json.dumps(tif.envelope("1101", person_1101(p))).encode()
    first = await gateway.post(SINGLE_URL, content=tif_body, headers=once)
    assert first.status_code == 200 and first.json()["infcode"] == 0, first.text
    _refused(await gateway.post(SINGLE_URL, content=tif_body, headers=once), "请求随机数(nonce)重复，请重新生成请求!")
    assert await _visits(settlement, p.psn_no) == 0


async def test_both_schemes_are_judged_by_the_api_headers(gateway, eligibility):
    p, _ = await twins(eligibility)
    his = his_of(gateway)
    headers = {**his.signed("1101"), "x-tif-paasid": "junk", "x-tif-timestamp": "1", "x-tif-nonce": "x"}
    answer = await his.send("1101", person_1101(p), headers={**headers, "x-tif-signature": "bad"})
    assert answer.ok, answer.body


async def test_business_refusals_answer_infcode_minus_one_and_write_nothing(gateway, settlement, eligibility):
    p, _ = await twins(eligibility)
    his = his_of(gateway)
    when = now() - timedelta(minutes=3)
    # another institution's code in the envelope
    envelope = his.envelope("2201", register_2201(p, when=when, ipt_otp_no="X2"))
    envelope["fixmedins_code"] = "H2"
    assert "机构" in (await his.refused("2201", None, envelope=envelope)).err_msg
    # a required field missing, or "" (not given)
    missing = register_2201(p, when=when, ipt_otp_no="X3")
    missing["data"]["psn_name"] = ""
    assert "psn_name" in (await his.refused("2201", missing)).err_msg
    missing["data"]["psn_name"] = p.psn_name
    del missing["data"]["dept_code"]
    assert "dept_code" in (await his.refused("2201", missing)).err_msg
    bad_time = register_2201(p, when=when, ipt_otp_no="X4")
    bad_time["data"]["begntime"] = "2024/13/01"
    assert "begntime" in (await his.refused("2201", bad_time)).err_msg
    no_envelope_field = his.envelope("2201", register_2201(p, when=when, ipt_otp_no="X5"))
    no_envelope_field["opter_name"] = ""
    assert "opter_name" in (await his.refused("2201", None, envelope=no_envelope_field)).err_msg
    # unknown and mismatching infno
    assert "9999" in (await his.refused("9999", {"data": {}})).err_msg
    mismatched = his.envelope("2201", register_2201(p, when=when, ipt_otp_no="X6"))
    assert "不一致" in (await his.refused("2202", None, envelope=mismatched, path="infno")).err_msg
    renamed = his.envelope("1101", person_1101(p))
    assert "_api_name" in (await his.refused("1101", None, envelope=renamed, headers=his.signed("2201"))).err_msg
    # not an envelope at all
    for raw in (b"not json", b"[1, 2]", b'{"infno": "1101"}', b"{}"):
        answer = await gateway.post(SINGLE_URL, content=raw, headers=his.signed("1101"))
        assert answer.status_code == 200 and answer.json()["infcode"] == -1 and answer.json()["output"] is None
    no_input = his.envelope("1101", person_1101(p))
    no_input["input"] = "{broken"
    assert "input" in (await his.refused("1101", None, envelope=no_input)).err_msg
    # the credential of somebody else
    stranger, _ = await twins(eligibility)
    wrong = person_1101(p)
    wrong["data"]["certno"] = stranger.certno
    assert "人证不符" in (await his.refused("1101", wrong)).err_msg
    assert await _visits(settlement, p.psn_no) == 0
    count = await fetchval(
        gateway._transport.app, "SELECT count(*) FROM gateway.messages WHERE psn_no = :p", p=p.psn_no
    )
    assert count == 0


async def test_a_settle_whose_total_differs_from_the_lines_is_refused_before_settling(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="X7"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    await his.call("2204", fees_2204(p, mdtrt_id, numbered([Item("XGWA001", "10.00", "1")]), when=when, batch="B"))
    for infno in ("2206", "2207"):
        assert "不符" in (await his.refused(infno, settle_data(p, mdtrt_id, Decimal("11.00")))).err_msg
    settled = await fetch(
        settlement._transport.app, "SELECT setl_id FROM settlement.settlements WHERE mdtrt_id = :m", m=mdtrt_id
    )
    assert settled == []


async def test_what_real_clients_send_differently_is_taken(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    h2 = his_of(gateway, "H2")  # infcode as a string for this client
    signed = await h2.send("9001", sign_in(), text_plain=True, input_as_string=True, path="infno")
    assert signed.status == 200 and signed.body["infcode"] == "0", signed.body
    h2.sign_no = signed.output["signinoutb"]["sign_no"]
    refused = await h2.send("9999", {})
    assert refused.body["infcode"] == "-1"
    when = now() - timedelta(hours=1)
    loose = admit_2401(p, when=when, ipt_no="ZYX", med_type="2101", diagnoses=["K35.800"])  # Hunan's 普通住院
    loose["mdtrtinfo"]["mdtrt_cert_no"] = ""  # not given: the ID number is the credential
    loose["mdtrtinfo"]["vendor_note"] = {"any": "thing"}
    admitted = await h2.call("2401", loose, text_plain=True, input_as_string=True)
    assert admitted.body["infcode"] == "0"
    wrong_kind = admit_2401(p, when=when, ipt_no="ZYY", med_type="13", diagnoses=["K35.800"])
    assert "13" in (await h2.refused("2401", wrong_kind)).err_msg


@pytest.mark.parametrize("infno", ["1101", "2201", "2203", "2204", "2206", "2207", "2301", "2401", "2102", "3201"])
async def test_hostile_inputs_never_make_a_5xx(gateway, infno):
    his = his_of(gateway)
    for junk in (
        {},
        {"data": []},
        {"data": {"psn_no": {"x": 1}}},
        {"data": {"psn_no": "a\u0000b", "mdtrt_id": "\ud800"}},
        {"feedetail": [{"feedetl_sn": 1e309, "cnt": "NaN", "pric": "-0", "mdtrt_id": "M" * 10000}]},
        {"mdtrtinfo": [1, 2], "diseinfo": "x", "druginfo": {"medfee_sumamt": True}},
        {"data": {"stmt_begndate": "9999-99-99", "medfee_sumamt": "1e9999"}},
    ):
        answer = await his.send(infno, junk)
        assert answer.status == 200, answer.raw
        assert answer.body["infcode"] == -1 and answer.body["output"] is None and answer.body["err_msg"]


async def test_a_body_above_the_bound_is_refused_without_a_5xx(gateway):
    his = his_of(gateway)
    answer = await gateway.post(SINGLE_URL, content=b"x" * 3_000_000, headers=his.signed("1101"))
    assert answer.status_code == 413


async def test_clients_are_configured_per_institution(gateway):
    assert set(ACCESS) == {"H1", "H2", "P1"}
