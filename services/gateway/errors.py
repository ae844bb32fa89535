"""A service's refusal (problem+json with a stable code) as the reason a clerk reads (Chinese, ≤ 200 characters)."""

from __future__ import annotations

from services.gateway.inputs import Failure
from services.gateway.upstream import Reply

REASONS = {
    "ALREADY_REVERSED": "该结算已撤销",
    "ALREADY_SETTLED": "该就诊已结算，请先撤销结算",
    "CREDENTIAL_MISMATCH": "就诊凭证与人员编号不符（人证不符）",
    "CREDENTIAL_NOT_FOUND": "未查询到该就诊凭证对应的参保人员",
    "INCOMPLETE_CREDENTIAL": "就诊凭证类型和就诊凭证编号须同时填写",
    "INVALID_CERT_TYPE": "就诊凭证类型应为01（医保电子凭证）、02（居民身份证）或03（社会保障卡）",
    "PERSON_NOT_FOUND": "参保人员不存在",
    "UNKNOWN_PERSON": "参保人员不存在",
    "PERSON_NOT_SEEN": "本机构无该人员的就诊记录，不能查询",
    "PERSON_INACTIVE": "该人员当前不享受医保待遇（参保状态异常或单位欠费）",
    "NOT_INSURED": "该人员当前不享受医保待遇",
    "INSTITUTION_NOT_DESIGNATED": "本机构不是该业务的定点医药机构",
    "INSTITUTION_SUSPENDED": "本机构医保服务已暂停",
    "INSTITUTION_FORBIDDEN": "该就诊或结算不属于本机构",
    "FORBIDDEN": "本机构无权办理该业务",
    "VISIT_NOT_FOUND": "就诊ID不存在",
    "VISIT_CLOSED": "该就诊已关闭（已撤销或非本类就诊），不能办理",
    "VISIT_CANCELLED": "该就诊已撤销",
    "VISIT_CHANGED": "结算期间费用明细发生变化，请重新结算",
    "MERGED_INTO_ADMISSION": "该门诊就诊已并入住院，请在住院就诊中办理",
    "NOT_INPATIENT": "该就诊不是住院就诊",
    "NOT_OUTPATIENT": "该就诊不是门诊就诊",
    "NOT_DISCHARGED": "该患者尚未办理出院",
    "DISCHARGED": "该患者已办理出院，请先撤销出院",
    "ENDTIME_BEFORE_BEGNTIME": "出院时间早于入院时间",
    "NO_FEE_LINES": "该就诊没有可结算的费用明细",
    "FEE_LINE_CONFLICT": "费用明细流水号已上传且内容不同，请先撤销原明细",
    "DUPLICATE_LINE": "同一费用明细流水号重复上传且内容不同",
    "TOO_MANY_LINES": "费用明细条数超过单次就诊上限",
    "LINE_TOTAL_MISMATCH": "明细项目费用总额与单价×数量不符",
    "PRICE_ABOVE_CAP": "单价超过医保目录限价",
    "SUPPLY_DAYS_ABOVE_LIMIT": "用药周期天数超过规定上限",
    "SETTLEMENT_NOT_FOUND": "结算ID不存在",
    "POLICY_NOT_FOUND": "未找到适用的医保政策",
    "POLICY_NOT_IN_FORCE": "就诊日期不在医保政策有效期内",
    "PRESCRIPTION_NOT_FOUND": "外购处方不存在",
    "PRESCRIPTION_USED": "该处方已取药结算",
    "PRESCRIPTION_EXPIRED": "该处方已过有效期",
    "PRESCRIPTION_OTHER_PERSON": "该处方不是本人的处方",
    "PRESCRIPTION_ITEM_NOT_PRESCRIBED": "购药明细中有处方未开具的药品",
    "PRESCRIPTION_QUANTITY_EXCEEDED": "购药数量超过处方开具数量",
    "PRESCRIBER_REQUIRED": "缺少开具处方的医疗机构",
    "NOT_FAMILY": "共济支付人不是本人的家庭成员",
    "ACCOUNT_CLOSED": "个人账户已注销，不能支付",
    "ELIGIBILITY_UNAVAILABLE": "参保信息系统暂时无法访问，请稍后重试",
    "INVALID_QUANTITY": "数量必须大于0",
    "INVALID_PRICE": "单价不能为负数",
    "INVALID_DATES": "结束时间早于开始时间",
    "INVALID_MED_TYPE": "医疗类别不支持",
    "INVALID_PERIOD": "对账结束日期早于开始日期",
    "CHRONIC_NOT_QUALIFIED": "该人员无此门诊慢特病待遇资格",
    "IDEMPOTENCY_KEY_REUSED": "报文ID重复",
    "IDEMPOTENCY_KEY_IN_PROGRESS": "原报文正在处理中，请稍后重试",
}
GENERIC = "医保业务校验未通过"


def reason(reply: Reply) -> str:
    """The Chinese reason of a refusal; an unknown code is named so that support can find it."""
    code = reply.code or f"HTTP{reply.status}"
    known = REASONS.get(code)
    if known is not None:
        return known
    if reply.status == 422 and code in ("VALIDATION_FAILED", "BAD_REQUEST"):
        errors = reply.body.get("errors") if isinstance(reply.body, dict) else None
        field = errors[0].get("field") if errors and isinstance(errors[0], dict) else None
        return f"输入项格式不正确（{field}）" if field else "输入项格式不正确"
    return f"{GENERIC}（{code}）"


def require_ok(reply: Reply, **reasons: str) -> Reply:
    """The reply when it succeeded; otherwise Failure with the reason (`reasons` override by code)."""
    if reply.ok:
        return reply
    code = reply.code or ""
    raise Failure(reasons.get(code) or reason(reply))
