"""A hospital's (or pharmacy's) insurance module as the national platform's interface spec describes it, written
from the spec (shared/reference/nhsa-interface-spec-hunan-v1.1.27.txt, 表2–表6 and each transaction's tables)
and NHSA-GATEWAY.md, not from the gateway's code: it imports nothing of services.gateway.

- `His.call(infno, input)` sends one envelope (表2) signed with the gateway headers (表5: HmacSHA1, Base64) or the
  TIF headers, over the single URL or /fsi/api/{infno}, as JSON or text/plain, with `input` an object or a string.
- The builders (`register`, `fees_2204`, …) fill every input field the spec marks required, as an HIS would.
- `REQUIRED_OUTPUT` is the spec's 是否非空 = Y per output node (extracted from the tables with their spec line
  numbers); `assert_required` checks an answer against it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

BEIJING = ZoneInfo("Asia/Shanghai")
SINGLE_URL = "/fsi/api/rsfComIfsService/callService"

# 是否非空 = Y of every output node (spec line of the transaction in parentheses).
REQUIRED_OUTPUT: dict[str, dict[str, list[str]]] = {
    "9001": {"signinoutb": ["sign_time", "sign_no"]},  # 10571
    "1101": {  # 326
        "baseinfo": ["psn_no", "psn_cert_type", "certno", "psn_name", "gend", "age"],
        "insuinfo": ["balc", "insutype", "psn_type", "cvlserv_flag", "insuplc_admdvs"],
        "idetinfo": ["psn_idet_type", "begntime"],
    },
    "2201": {"data": ["mdtrt_id", "psn_no", "ipt_otp_no"]},  # 2189
    "2204": {  # 2328
        "result": [
            "feedetl_sn",
            "det_item_fee_sumamt",
            "cnt",
            "pric",
            "pric_uplmt_amt",
            "chrgitm_lv",
            "med_chrgitm_type",
            "lmt_used_flag",
        ]
    },
    "2301": {  # 2679
        "result": ["det_item_fee_sumamt", "cnt", "pric", "pric_uplmt_amt", "chrgitm_lv", "med_chrgitm_type"]
        + ["lmt_used_flag"]
    },
    "2401": {"result": ["mdtrt_id"]},  # 3034
    "3201": {"stmtinfo": ["stmt_rslt"]},  # 3908
    "5206": {"cuminfo": ["insutype", "year", "cum_ym", "cum_type_code", "cum"]},  # 8790
}
_SETLDETAIL = ["fund_pay_type", "inscp_scp_amt", "crt_payb_lmt_amt", "fund_payamt"]
_SETL_COMMON = [
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "hifp_pay",
    "pool_prop_selfpay",
    "cvlserv_pay",
    "hifes_pay",
    "hifmi_pay",
    "hifob_pay",
    "maf_pay",
    "oth_pay",
    "fund_pay_sumamt",
    "acct_pay",
    "balc",
    "acct_mulaid_pay",
    "medins_setl_id",
]
_PERSON = ["psn_no", "psn_name", "psn_cert_type", "certno", "psn_type", "cvlserv_flag"]
REQUIRED_OUTPUT.update(
    {
        "2206": {  # 2425
            "setlinfo": ["mdtrt_id", *_PERSON, "setl_time", "med_type", *_SETL_COMMON]
            + ["psn_part_amt", "psn_cash_pay", "hosp_part_amt", "clr_type", "hifdm_pay"],
            "setldetail": _SETLDETAIL,
        },
        "2207": {  # 2513
            "setlinfo": ["mdtrt_id", "setl_id", *_PERSON, "setl_time", "med_type", *_SETL_COMMON]
            + ["psn_part_amt", "psn_cash_pay", "hosp_part_amt", "clr_type", "hifdm_pay"],
            "setldetail": _SETLDETAIL,
        },
        "2208": {  # 2605
            "setlinfo": ["mdtrt_id", "setl_id", "setl_time", *_SETL_COMMON]
            + ["psn_part_amt", "hosp_part_amt", "pdn_cash_pay", "hifdm_pay"],
            "setldetail": _SETLDETAIL,
        },
        "2303": {  # 2762
            "setlinfo": ["mdtrt_id", *_PERSON, "med_type", *_SETL_COMMON, "psn_cash_pay", "clr_type"],
            "setldetail": _SETLDETAIL,
        },
        "2304": {  # 2854
            "setlinfo": ["mdtrt_id", "setl_id", *_PERSON, "med_type", *_SETL_COMMON, "psn_cash_pay", "clr_type"],
            "setldetail": _SETLDETAIL,
        },
        "2305": {  # 2948
            "setlinfo": ["mdtrt_id", "setl_id", "setl_time", *_SETL_COMMON, "psn_cash_pay"],
            "setldetail": _SETLDETAIL,
        },
        "2101": {  # 1327
            "setlinfo": ["mdtrt_id", *_PERSON, "setl_time", "med_type", *_SETL_COMMON]
            + ["psn_part_amt", "psn_cash_pay", "clr_type", "hifdm_pay"],
            "setldetail": _SETLDETAIL,
        },
        "2102": {  # 1455
            "setlinfo": ["setl_id", "mdtrt_id", *_PERSON, "age", "insutype", "setl_time", "med_type", *_SETL_COMMON]
            + ["psn_part_amt", "psn_cash_pay", "clr_type", "hifdm_pay"],
            "setldetail": _SETLDETAIL,
            "detlcutinfo": ["feedetl_sn", "det_item_fee_sumamt", "cnt", "pric", "pric_uplmt_amt", "chrgitm_lv"]
            + ["med_chrgitm_type"],
        },
        "2103": {  # 1592
            "setlinfo": ["mdtrt_id", "setl_id", "setl_time", *_SETL_COMMON, "psn_part_amt", "psn_cash_pay"]
            + ["hifdm_pay"],
            "setldetail": _SETLDETAIL,
        },
        "5203": {  # 8567
            "setlinfo": ["setl_id", "mdtrt_id", *_PERSON, "gend", "insutype", "pay_loc", "fixmedins_code"]
            + ["fixmedins_name", "begndate", "enddate", "setl_time", "med_type", "clr_type", *_SETL_COMMON]
            + ["act_pay_dedc", "psn_pay", "cash_payamt", "refd_setl_flag", "year"],
            "setldetail": _SETLDETAIL,
        },
    }
)
NO_OUTPUT = {"2202", "2203", "2205", "2302", "2402", "2404", "2405", "2601"}  # 输出: 无


def assert_required(infno: str, output: Any) -> None:
    """Every output field the spec marks required is there and not null, in every row of every node."""
    if infno in NO_OUTPUT:
        assert output == {}, output
        return
    for node, fields in REQUIRED_OUTPUT[infno].items():
        assert node in output, f"{infno}: node {node} missing from {list(output)}"
        rows = output[node] if isinstance(output[node], list) else [output[node]]
        for row in rows:
            missing = [f for f in fields if row.get(f) is None]
            assert not missing, f"{infno}.{node}: required {missing} missing or null in {row}"


def now() -> datetime:
    return datetime.now(BEIJING)


def dt(moment: datetime) -> str:
    """日期时间型: yyyy-MM-dd HH:mm:ss."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Answer:
    status: int
    raw: bytes
    body: Any

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body.get("infcode") in (0, "0")

    @property
    def output(self) -> Any:
        return self.body["output"]

    @property
    def err_msg(self) -> str | None:
        return self.body.get("err_msg")


_serial = itertools.count(int(time.time()) % 9000)


class His:
    """One institution's insurance module talking to the gateway."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        access_key: str,
        secret: str,
        fixmedins_code: str,
        fixmedins_name: str = "测试医院",
        admdvs: str = "621000",
        scheme: str = "api",
    ) -> None:
        self.http = http
        self.access_key = access_key
        self.secret = secret
        self.fixmedins_code = fixmedins_code
        self.fixmedins_name = fixmedins_name
        self.admdvs = admdvs
        self.scheme = scheme
        self.sign_no = ""

    def msgid(self) -> str:
        """定点医药机构编号 + yyyyMMddHHmmss + 4-digit serial (表2)."""
        return f"{self.fixmedins_code}{now():%Y%m%d%H%M%S}{next(_serial) % 10000:04d}"

    def envelope(self, infno: str, input_: Any, *, msgid: str | None = None) -> dict[str, Any]:
        return {
            "infno": infno,
            "msgid": msgid or self.msgid(),
            "mdtrtarea_admvs": self.admdvs,
            "insuplc_admdvs": self.admdvs,
            "recer_sys_code": "FSI_LOCAL",
            "dev_no": "",
            "dev_safe_info": "",
            "cainfo": "",
            "signtype": "",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "0001",
            "opter_name": "收费员甲",
            "inf_time": dt(now()),
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.fixmedins_name,
            "sign_no": self.sign_no,
            "input": input_,
        }

    def signed(
        self, infno: str, *, timestamp: int | None = None, secret: str | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        """The signing headers of a request: 表5 (HmacSHA1 over the sorted _api_ headers, Base64) or TIF."""
        secret = secret or self.secret
        if self.scheme == "tif":
            ts = str(timestamp if timestamp is not None else int(time.time()))
            nonce = nonce or secrets.token_hex(8)
            return {
                "x-tif-paasid": self.access_key,
                "x-tif-timestamp": ts,
                "x-tif-nonce": nonce,
                "x-tif-signature": hashlib.sha256(f"{ts}{secret}{nonce}{ts}".encode()).hexdigest(),
            }
        fields = {
            "_api_name": infno,
            "_api_version": "1.0.0",
            "_api_timestamp": str(timestamp if timestamp is not None else int(time.time() * 1000)),
            "_api_access_key": self.access_key,
        }
        text = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
        fields["_api_signature"] = base64.b64encode(
            hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
        ).decode()
        return fields

    async def send(
        self,
        infno: str,
        input_: Any,
        *,
        msgid: str | None = None,
        path: str = "single",
        text_plain: bool = False,
        input_as_string: bool = False,
        headers: dict[str, str] | None = None,
        envelope: dict[str, Any] | None = None,
    ) -> Answer:
        body = envelope or self.envelope(infno, json.dumps(input_, ensure_ascii=False) if input_as_string else input_)
        if msgid is not None:
            body["msgid"] = msgid
        url = SINGLE_URL if path == "single" else f"/fsi/api/{infno}"
        try:
            raw = json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate: only as a JSON escape
            raw = json.dumps(body).encode()
        sent_headers = {"content-type": "text/plain" if text_plain else "application/json"}
        sent_headers.update(self.signed(infno) if headers is None else headers)
        response = await self.http.post(url, content=raw, headers=sent_headers)
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return Answer(response.status_code, response.content, parsed)

    async def call(self, infno: str, input_: Any, **kwargs: Any) -> Answer:
        """A transaction expected to succeed; its answer checked against the spec's required output fields."""
        answer = await self.send(infno, input_, **kwargs)
        assert answer.status == 200, answer.raw
        assert answer.ok, f"{infno}: {answer.body}"
        assert answer.body["err_msg"] is None
        assert len(answer.body["inf_refmsgid"]) == 30 and answer.body["inf_refmsgid"].isdigit()
        assert len(answer.body["refmsg_time"]) == 17 and len(answer.body["respond_time"]) == 17
        assert_required(infno, answer.output)
        return answer

    async def refused(self, infno: str, input_: Any, **kwargs: Any) -> Answer:
        """A business failure: HTTP 200, infcode -1, a Chinese reason of at most 200 characters, output null."""
        answer = await self.send(infno, input_, **kwargs)
        assert answer.status == 200, answer.raw
        assert answer.body["infcode"] in (-1, "-1"), answer.body
        assert answer.body["output"] is None
        reason = answer.body["err_msg"]
        assert reason and len(reason) <= 200 and any("\u4e00" <= c <= "\u9fff" for c in reason), reason
        return answer


# ------------------------------------------------------------------ inputs as an HIS fills them


@dataclass
class Patient:
    psn_no: str
    certno: str
    psn_name: str
    insutype: str
    psn_type: str = "11"
    cert_type: str = "02"  # 居民身份证 as the credential
    cert_no: str = ""

    def __post_init__(self) -> None:
        self.cert_no = self.cert_no or self.certno


def sign_in() -> dict:
    return {"signIn": {"opter_no": "0001", "mac": "00-16-3E-01-02-03", "ip": "10.1.2.3"}}


def person_1101(p: Patient) -> dict:
    return {
        "data": {
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "card_sn": "",
            "begntime": "",
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_name": p.psn_name,
        }
    }


def register_2201(p: Patient, *, when: datetime, ipt_otp_no: str) -> dict:
    return {
        "data": {
            "psn_no": p.psn_no,
            "insutype": p.insutype,
            "begntime": dt(when),
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "card_sn": "",
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_type": p.psn_type,
            "psn_name": p.psn_name,
            "ipt_otp_no": ipt_otp_no,
            "atddr_no": "D001",
            "dr_name": "李医生",
            "dept_code": "0301",
            "dept_name": "内科",
            "caty": "A03",
        }
    }


def cancel_2202(p: Patient, mdtrt_id: str, ipt_otp_no: str) -> dict:
    return {"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": ipt_otp_no}}


def diseinfo(codes: list[str], *, when: datetime, inpatient: bool = False, psn_no: str = "") -> list[dict]:
    rows = []
    for i, code in enumerate(codes, start=1):
        row = {
            "diag_type": "1",
            "diag_srt_no": i,
            "diag_code": code,
            "diag_name": f"诊断{code}",
            "diag_dept": "内科",
            "dise_dor_no": "D001",
            "dise_dor_name": "李医生",
            "diag_time": dt(when),
        }
        if inpatient:
            row.update(psn_no=psn_no, maindiag_flag="1" if i == 1 else "0")
        else:
            row["vali_flag"] = "1"
        rows.append(row)
    return rows


def visit_2203(p: Patient, mdtrt_id: str, *, when: datetime, med_type: str = "11", dise_codg: str = "") -> dict:
    codes = ["J06.900"]
    return {
        "mdtrtinfo": {
            "mdtrt_id": mdtrt_id,
            "psn_no": p.psn_no,
            "med_type": med_type,
            "begntime": dt(when),
            "main_cond_dscr": "",
            "dise_codg": dise_codg or codes[0],
            "dise_name": "急性上呼吸道感染",
        },
        "diseinfo": diseinfo(codes, when=when),
    }


@dataclass
class Item:
    """A fee line as the HIS charges it: catalogue code, price, quantity (a negative quantity refunds)."""

    codg: str
    pric: str
    cnt: str
    sn: str = ""
    init: str = ""

    @property
    def total(self) -> Decimal:
        return (Decimal(self.pric) * Decimal(self.cnt)).quantize(Decimal("0.01"))


_sn = itertools.count(1)


def numbered(items: list[Item]) -> list[Item]:
    """feedetl_sn: numbers (数字型, not 0, at most 15 digits), unique within the visit."""
    for item in items:
        item.sn = item.sn or str(100000 + next(_sn))
    return items


def fees_2204(p: Patient, mdtrt_id: str, items: list[Item], *, when: datetime, batch: str) -> dict:
    return {
        "feedetail": [
            {
                "feedetl_sn": int(item.sn),  # some clients send it as a number
                "mdtrt_id": mdtrt_id,
                "psn_no": p.psn_no,
                "chrg_bchno": batch,
                "dise_codg": "",
                "rxno": "",
                "rx_circ_flag": "0",
                "fee_ocur_time": dt(when),
                "med_list_codg": item.codg,
                "medins_list_codg": f"H-{item.codg}",
                "det_item_fee_sumamt": str(item.total),
                "cnt": item.cnt,
                "pric": item.pric,
                "sin_dos_dscr": "",
                "used_frqu_dscr": "",
                "prd_days": "",
                "medc_way_dscr": "",
                "bilg_dept_codg": "0301",
                "bilg_dept_name": "内科",
                "bilg_dr_codg": "D001",
                "bilg_dr_name": "李医生",
                "hosp_appr_flag": "1",
                "memo": "",
            }
            for item in items
        ]
    }


def fees_2301(p: Patient, mdtrt_id: str, items: list[Item], *, when: datetime) -> dict:
    return {
        "feedetail": [
            {
                "feedetl_sn": item.sn,
                "init_feedetl_sn": item.init,
                "mdtrt_id": mdtrt_id,
                "drord_no": "",
                "psn_no": p.psn_no,
                "med_type": "21",
                "fee_ocur_time": dt(when),
                "med_list_codg": item.codg,
                "medins_list_codg": f"H-{item.codg}",
                "det_item_fee_sumamt": float(item.total),  # some clients send numbers
                "cnt": float(item.cnt),
                "pric": float(item.pric),
                "bilg_dept_codg": "0501",
                "bilg_dept_name": "外科",
                "bilg_dr_codg": "D002",
                "bilg_dr_name": "王医生",
                "hosp_appr_flag": "1",
                "extra_vendor_field": "x",  # extra fields are ignored
            }
            for item in items
        ]
    }


def batch_cancel_2205(p: Patient, mdtrt_id: str, batch: str) -> dict:
    return {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": batch, "psn_no": p.psn_no}}


def settle_data(p: Patient, mdtrt_id: str, medfee: Decimal, *, acct: str = "0", batch: str = "B1") -> dict:
    """2206 / 2207 input."""
    return {
        "data": {
            "psn_no": p.psn_no,
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "card_sn": "",
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_type": p.psn_type,
            "psn_name": p.psn_name,
            "med_type": "11",
            "medfee_sumamt": str(medfee),
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "chrg_bchno": batch,
            "acct_used_flag": acct,
            "insutype": p.insutype,
            "invono": "",
            "fulamt_ownpay_amt": "",
            "overlmt_selfpay": "",
            "preselfpay_amt": "",
            "inscp_scp_amt": "",
        }
    }


def cancel_settlement(p: Patient, mdtrt_id: str, setl_id: str) -> dict:
    return {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": p.psn_no}}


def admit_2401(p: Patient, *, when: datetime, ipt_no: str, med_type: str = "21", diagnoses: list[str]) -> dict:
    return {
        "mdtrtinfo": {
            "psn_no": p.psn_no,
            "insutype": p.insutype,
            "coner_name": "",
            "tel": "",
            "begntime": dt(when),
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "cert_type": "01",
            "certno": p.certno,
            "med_type": med_type,
            "ipt_no": ipt_no,
            "medrcdno": "",
            "atddr_no": "D002",
            "chfpdr_name": "王医生",
            "adm_diag_dscr": "腹痛待查",
            "adm_dept_codg": "0501",
            "adm_dept_name": "外科",
            "adm_bed": "12",
            "dscg_maindiag_code": diagnoses[0],
            "dscg_maindiag_name": "主诊断",
            "main_cond_dscr": "",
            "dise_codg": "",
            "dise_name": "",
            "insuplc_admdvs": "621000",
            "mdtrtarea_admvs": "621000",
        },
        "diseinfo": diseinfo(diagnoses, when=when, inpatient=True, psn_no=p.psn_no),
    }


def discharge_2402(p: Patient, mdtrt_id: str, *, when: datetime, diagnoses: list[str]) -> dict:
    return {
        "dscginfo": {
            "mdtrt_id": mdtrt_id,
            "psn_no": p.psn_no,
            "insutype": p.insutype,
            "endtime": dt(when),
            "dscg_dept_codg": "0501",
            "dscg_dept_name": "外科",
            "dscg_bed": "12",
            "dscg_way": "1",
        },
        "diseinfo": [
            row | {"mdtrt_id": mdtrt_id} for row in diseinfo(diagnoses, when=when, inpatient=True, psn_no=p.psn_no)
        ],
    }


def visit_data(p: Patient, mdtrt_id: str) -> dict:
    """2404 / 2405 input."""
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": p.psn_no}}


def line_cancel_2302(p: Patient, mdtrt_id: str, sn: str) -> dict:
    return {"data": {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": p.psn_no}}


def inpatient_settle(p: Patient, mdtrt_id: str, medfee: Decimal, *, acct: str = "0", leaving: datetime) -> dict:
    """2303 / 2304 input."""
    return {
        "data": {
            "psn_no": p.psn_no,
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_type": p.psn_type,
            "psn_name": p.psn_name,
            "medfee_sumamt": str(medfee),
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "acct_used_flag": acct,
            "insutype": p.insutype,
            "mid_setl_flag": "0",
            "dscgTime": f"{leaving:%Y-%m-%d}",
            "insuplc_admdvs": "621000",
            "mdtrtarea_admvs": "621000",
        }
    }


def drugs(p: Patient, items: list[Item], *, when: datetime, rxno: str = "", acct: str = "1") -> dict:
    """2101 / 2102 input: with an rxno (rx_circ_flag 1) a dual-channel prescription, else a retail purchase."""
    medfee = sum((item.total for item in items), Decimal("0.00"))
    return {
        "druginfo": {
            "psn_no": p.psn_no,
            "mdtrt_cert_type": p.cert_type,
            "mdtrt_cert_no": p.cert_no,
            "card_sn": "",
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_type": p.psn_type,
            "psn_name": p.psn_name,
            "begntime": dt(when),
            "medfee_sumamt": str(medfee),
            "insutype": p.insutype,
            "acct_used_flag": acct,
            "med_type": "41",
        },
        "drugdetail": [
            {
                "feedetl_sn": item.sn,
                "rxno": rxno,
                "rx_circ_flag": "1" if rxno else "0",
                "fee_ocur_time": dt(when),
                "med_list_codg": item.codg,
                "medins_list_codg": f"P-{item.codg}",
                "det_item_fee_sumamt": str(item.total),
                "cnt": item.cnt,
                "pric": item.pric,
            }
            for item in items
        ],
    }


def reversal_2601(p: Patient, omsgid: str, oinfno: str) -> dict:
    return {"data": {"psn_no": p.psn_no, "omsgid": omsgid, "oinfno": oinfno}}


def settlement_5203(p: Patient, mdtrt_id: str, setl_id: str) -> dict:
    return {"data": {"psn_no": p.psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt_id}}


def accumulations_5206(p: Patient, cum_ym: str = "") -> dict:
    return {"data": {"psn_no": p.psn_no, "cum_ym": cum_ym}}


def reconcile_3201(
    *, insutype: str, clr_type: str, day: datetime, medfee: Decimal, fund: Decimal, acct: Decimal, count: int
) -> dict:
    return {
        "data": {
            "insutype": insutype,
            "clr_type": clr_type,
            "setl_optins": "621000",
            "stmt_begndate": f"{day - timedelta(days=1):%Y-%m-%d}",
            "stmt_enddate": f"{day:%Y-%m-%d}",
            "medfee_sumamt": str(medfee),
            "fund_pay_sumamt": str(fund),
            "acct_pay": str(acct),
            "fixmedins_setl_cnt": count,
            "refd_setl_flag": "0",
            "fixmedins_refd_setl_flag": "0",
        }
    }


def amount(value: Any) -> Decimal:
    return Decimal(str(value))


def check_identities(setlinfo: dict) -> None:
    """The spec's identities of a setlinfo, to the fen."""
    medfee = amount(setlinfo["medfee_sumamt"])
    fund = amount(setlinfo["fund_pay_sumamt"])
    part = amount(setlinfo.get("psn_part_amt", amount(setlinfo["acct_pay"]) + amount(setlinfo["psn_cash_pay"])))
    hosp = amount(setlinfo.get("hosp_part_amt") or 0)
    assert medfee == fund + part + hosp, setlinfo
    cash = setlinfo.get("psn_cash_pay", setlinfo.get("pdn_cash_pay"))
    assert part == amount(setlinfo["acct_pay"]) + amount(cash), setlinfo
