"""Reading a transaction's input as real clients send it: numbers as strings or strings as numbers, "" for a field
not given, extra fields ignored. A missing required field or a value that cannot be what the spec says is a
business failure (`Failure`: infcode -1) with a Chinese reason a clerk can act on, naming the node and the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.events.envelope import BUSINESS_TZ
from shared.inputs import FIRST_DAY, LAST_DAY

MAX_ERR = 200
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(?:\.[0-9]{1,6})?)?")
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_NUMBER = re.compile(r"-?[0-9]{1,16}(?:\.[0-9]{1,6})?")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control characters; what PostgreSQL cannot store

# 名称 of the fields the gateway reads (spec tables), for the reasons it gives.
NAMES = {
    "psn_no": "人员编号",
    "mdtrt_id": "就诊ID",
    "setl_id": "结算ID",
    "mdtrt_cert_type": "就诊凭证类型",
    "mdtrt_cert_no": "就诊凭证编号",
    "card_sn": "卡识别码",
    "psn_cert_type": "人员证件类型",
    "cert_type": "证件类型",
    "certno": "证件号码",
    "psn_name": "人员姓名",
    "psn_type": "人员类别",
    "insutype": "险种类型",
    "begntime": "开始时间",
    "endtime": "结束时间",
    "ipt_otp_no": "住院/门诊号",
    "ipt_no": "住院号",
    "dept_code": "科室编码",
    "dept_name": "科室名称",
    "caty": "科别",
    "med_type": "医疗类别",
    "dise_codg": "病种编码",
    "dise_name": "病种名称",
    "diag_type": "诊断类别",
    "diag_srt_no": "诊断排序号",
    "diag_code": "诊断代码",
    "diag_name": "诊断名称",
    "diag_dept": "诊断科室",
    "dise_dor_no": "诊断医生编码",
    "dise_dor_name": "诊断医生姓名",
    "diag_time": "诊断时间",
    "vali_flag": "有效标志",
    "maindiag_flag": "主诊断标志",
    "feedetl_sn": "费用明细流水号",
    "init_feedetl_sn": "原费用流水号",
    "chrg_bchno": "收费批次号",
    "rx_circ_flag": "外购处方标志",
    "rxno": "处方号",
    "fee_ocur_time": "费用发生时间",
    "med_list_codg": "医疗目录编码",
    "medins_list_codg": "医药机构目录编码",
    "det_item_fee_sumamt": "明细项目费用总额",
    "cnt": "数量",
    "pric": "单价",
    "prd_days": "周期天数",
    "bilg_dept_codg": "开单科室编码",
    "bilg_dept_name": "开单科室名称",
    "bilg_dr_codg": "开单医生编码",
    "bilg_dr_name": "开单医师姓名",
    "hosp_appr_flag": "医院审批标志",
    "medfee_sumamt": "医疗费总额",
    "psn_setlway": "个人结算方式",
    "acct_used_flag": "个人账户使用标志",
    "mid_setl_flag": "中途结算标志",
    "insuplc_admdvs": "参保地医保区划",
    "mdtrtarea_admvs": "就医地医保区划",
    "atddr_no": "主治医生编码",
    "chfpdr_name": "主诊医师姓名",
    "adm_diag_dscr": "入院诊断描述",
    "adm_dept_codg": "入院科室编码",
    "adm_dept_name": "入院科室名称",
    "adm_bed": "入院床位",
    "dscg_maindiag_code": "住院主诊断代码",
    "dscg_maindiag_name": "住院主诊断名称",
    "dscg_dept_codg": "出院科室编码",
    "dscg_dept_name": "出院科室名称",
    "dscg_way": "离院方式",
    "omsgid": "原发送方报文ID",
    "oinfno": "原交易编号",
    "clr_type": "清算类别",
    "setl_optins": "结算经办机构",
    "stmt_begndate": "对账开始日期",
    "stmt_enddate": "对账结束日期",
    "fund_pay_sumamt": "基金支付总额",
    "acct_pay": "个人账户支付金额",
    "fixmedins_setl_cnt": "定点医药机构结算笔数",
    "fixmedins_refd_setl_flag": "定点医药机构退费结算标志",
    "cum_ym": "累计年月",
    "opter_no": "操作员编号",
    "mac": "签到MAC地址",
    "ip": "签到IP地址",
}


class Failure(Exception):
    """A business failure: infcode -1, `output` null, this reason (Chinese, at most 200 characters)."""

    def __init__(self, reason: str) -> None:
        reason = reason if len(reason) <= MAX_ERR else reason[: MAX_ERR - 1] + "…"
        super().__init__(reason)
        self.reason = reason


def label(node: str, field: str) -> str:
    """How a reason names a field: 输入[data.psn_no 人员编号]."""
    name = NAMES.get(field)
    return f"{node}.{field}（{name}）" if name else f"{node}.{field}"


def _plain(value: Any) -> str | None:
    """A scalar as text ("" and null: not given); numbers as their digits."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    if isinstance(value, str):
        text = value.strip()
        return text or None
    return None  # an object or a list where a scalar belongs: checked by the caller


class Node:
    """One input node (a JSON object) read leniently."""

    __slots__ = ("data", "name")

    def __init__(self, data: Any, name: str) -> None:
        if not isinstance(data, dict):
            raise Failure(f"交易输入缺少节点{name}或其格式不是JSON对象")
        self.data = data
        self.name = name

    def text(self, field: str, *, required: bool = False, max_len: int = 100) -> str | None:
        raw = self.data.get(field)
        if type(raw) is str:  # the common case first
            value: str | None = raw.strip() or None
        elif isinstance(raw, (dict, list)):
            raise Failure(f"{label(self.name, field)}格式错误")
        else:
            value = _plain(raw)
        if value is None:
            if required:
                raise Failure(f"{label(self.name, field)}不能为空")
            return None
        if len(value) > max_len or _CONTROL.search(value) is not None:
            raise Failure(f"{label(self.name, field)}格式错误或超过{max_len}个字符")
        return value

    def need(self, field: str, *, max_len: int = 100) -> str:
        value = self.text(field, required=True, max_len=max_len)
        assert value is not None
        return value

    def code(self, field: str, *, required: bool = False, max_len: int = 64) -> str | None:
        """An identifier: letters, digits and _.:/- (feedetl_sn may come as a number)."""
        value = self.text(field, required=required, max_len=max_len)
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.:/-]+", value):
            raise Failure(f"{label(self.name, field)}只能包含字母、数字和_.:/-")
        return value

    def decimal(self, field: str, *, required: bool = False, places: int = 2) -> Decimal | None:
        raw = self.data.get(field)
        value = _plain(raw)
        if value is None:
            if required:
                raise Failure(f"{label(self.name, field)}不能为空")
            return None
        if not _NUMBER.fullmatch(value):
            raise Failure(f"{label(self.name, field)}不是数值")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise Failure(f"{label(self.name, field)}不是数值") from None
        if number != number.quantize(Decimal(1).scaleb(-places)):
            raise Failure(f"{label(self.name, field)}最多{places}位小数")
        return number

    def time(self, field: str, *, required: bool = False) -> datetime | None:
        """yyyy-MM-dd HH:mm:ss (Beijing time); a date alone is its midnight."""
        value = self.text(field, required=required, max_len=26)
        if value is None:
            return None
        match = _TIME.fullmatch(value)
        try:
            if match is None:
                raise ValueError
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
            moment = datetime(y, mo, d, h, mi, s, tzinfo=BUSINESS_TZ)
        except ValueError:
            raise Failure(f"{label(self.name, field)}格式应为yyyy-MM-dd HH:mm:ss") from None
        if not FIRST_DAY <= moment.date() <= LAST_DAY:
            raise Failure(f"{label(self.name, field)}超出范围")
        return moment

    def day(self, field: str, *, required: bool = False) -> date | None:
        value = self.text(field, required=required, max_len=19)
        if value is None:
            return None
        match = _DAY.match(value)
        try:
            if match is None:
                raise ValueError
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise Failure(f"{label(self.name, field)}格式应为yyyy-MM-dd") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise Failure(f"{label(self.name, field)}超出范围")
        return day

    def flag(self, field: str, *, required: bool = False, allowed: tuple[str, ...] = ("0", "1")) -> str | None:
        value = self.text(field, required=required, max_len=6)
        if value is not None and value not in allowed:
            raise Failure(f"{label(self.name, field)}应为{'/'.join(allowed)}")
        return value

    def require(self, *fields: str) -> None:
        """Every field given (the spec's required flags for fields the gateway does not use itself)."""
        for field in fields:
            self.text(field, required=True, max_len=4000)


def rows(data: Any, name: str, *, at_least: int = 1, at_most: int = 1000) -> list[Node]:
    """A list node (a single object is taken as a list of one, as some clients send it)."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not at_least <= len(data) <= at_most:
        raise Failure(f"交易输入节点{name}应为{at_least}到{at_most}条记录的列表")
    return [Node(item, f"{name}[{i}]") for i, item in enumerate(data)]


def node(input_: dict[str, Any], name: str) -> Node:
    """A single-row node of the input (a list of one is taken as the row)."""
    data = input_.get(name)
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if data is None:
        raise Failure(f"交易输入缺少节点{name}")
    return Node(data, name)
