"""Sheets of supervision (DOMAIN §13) for the offices that receive them: the alert list, the watched goods' prices
and sales, the institutions' monthly indicators. Amounts in yuan here (not 万元): these are lists, not the forms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.reporting.domain import area_name
from services.reporting.forms import Form, Quantity, Ratio, Yuan

KIND_LABELS = {
    "high_cost": "防返贫高额费用",
    "price": "价格监测",
    "fraud": "欺诈骗保疑点",
    "indicator": "机构指标预警",
    "filing": "报表报送",
}
RULE_LABELS = {
    "high_cost.burden": "困难群众年度个人负担达到预警线",
    "price.cap": "单价超过监测限价",
    "price.rise": "单价较前期中位数涨幅过高",
    "fraud.visit_frequency": "30日内门诊次数过多",
    "fraud.repeat_exam": "7日内重复检查",
    "fraud.idle_stay": "住院连续多日无费用(挂床)",
    "fraud.stockpiling": "90日内同一药品用药天数超量(囤药)",
    "fraud.shared_credential": "同一凭证一日多机构结算",
    "indicator.cost_growth_outpatient": "门诊次均费用同比增长过快",
    "indicator.cost_growth_inpatient": "住院次均费用同比增长过快",
    "indicator.self_pay_share": "患者个人负担比例过高",
    "indicator.exam_share": "检查费用占比过高",
    "indicator.outside_catalogue_share": "目录外费用占比过高",
    "indicator.essential_drug_share": "基本药物使用比例偏低",
    "indicator.aid_self_pay_share": "救助对象住院自付比例过高",
    "filing.late": "日报未按时报送",
}
RESOLUTION_LABELS = {
    "helped": "已化解",
    "confirmed": "已查实",
    "dismissed": "已排除",
    "corrected": "已整改",
    "referred": "已移交",
    "withdrawn": "已撤回(事实不再成立)",
    "filed": "已补报",
}
INDICATOR_LABELS = {
    "cost_growth_outpatient": "门诊次均费用增长",
    "cost_growth_inpatient": "住院次均费用增长",
    "self_pay_share": "个人负担比例",
    "exam_share": "检查费用占比",
    "outside_catalogue_share": "目录外费用占比",
    "essential_drug_share": "基本药物占比",
    "aid_self_pay_share": "救助对象自付比例",
}


def _summary(alert: dict[str, Any]) -> str:
    """The facts in a line an office reads."""
    facts = alert["facts"]
    rule = alert["rule"]
    if rule == "high_cost.burden":
        return f"{facts['year']}年个人负担 {facts['burden']} 元,达到 {facts['threshold']} 元"
    if rule.startswith("price."):
        extra = f"限价 {facts['cap']}" if rule == "price.cap" else f"前期中位数 {facts['median']}"
        return f"{facts['med_list_name'] or facts['med_list_codg']} {facts['day']} 单价 {facts['pric']} 元({extra})"
    if rule == "fraud.visit_frequency":
        return f"{alert['window']['start']}至{alert['window']['end']} 门诊 {facts['visits']} 次(上限 {facts['limit']})"
    if rule == "fraud.repeat_exam":
        return f"{facts['med_list_name'] or facts['med_list_codg']} 间隔 {facts['days_apart']} 天重复检查"
    if rule == "fraud.idle_stay":
        return f"住院 {facts['begndate']}至{facts['enddate']},{facts['idle_from']}起连续 {facts['idle_days']} 天无费用"
    if rule == "fraud.stockpiling":
        return f"{facts['med_list_name'] or facts['med_list_codg']} 90日内用药 {facts['supply_days']} 天"
    if rule == "fraud.shared_credential":
        return f"{facts['day']} 在 {facts['institutions']} 家机构结算"
    if rule.startswith("indicator."):
        label = INDICATOR_LABELS.get(facts.get("indicator", ""), rule)
        return f"{facts['month']} {label} {facts['value']}(阈值 {facts['threshold']})"
    if rule == "filing.late":
        return f"{facts['area_name']} {facts['date']} 日报截至 {facts['deadline'][:16]} 未报送"
    return ""


def alerts_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """监测预警清单: every alert of the list with its facts in a line and what was done."""
    form = Form(
        sheet_name="监测预警清单",
        width=12,
        widths={1: 22, 2: 14, 3: 26, 4: 20, 5: 18, 6: 12, 7: 12, 8: 48, 9: 10, 10: 12, 11: 30, 12: 20},
    )
    form.title(f"{region}医保监测预警清单")
    form.line((6, f"填报单位:{filing_unit}"), (6, f"共 {report['count']} 条(本表 {len(report['items'])} 条)"))
    head = form.add(
        "预警编号",
        "类别",
        "规则",
        "发出时间",
        "参保人员编号",
        "机构编码",
        "统筹区",
        "事实",
        "状态",
        "处理结果",
        "处理说明",
        "规则版本",
    )
    form.header = (head, head)
    for alert in report["items"]:
        form.add(
            alert["alert_id"],
            KIND_LABELS.get(alert["kind"], alert["kind"]),
            RULE_LABELS.get(alert["rule"], alert["rule"]),
            alert["raised_at"][:19].replace("T", " "),
            alert["psn_no"] or "",
            alert["fixmedins_code"] or "",
            area_name(alert["admdvs"]),
            _summary(alert),
            "待处理" if alert["status"] == "open" else "已处理",
            RESOLUTION_LABELS.get(alert["resolution"] or "", ""),
            alert["note"] or "",
            alert["rule_version"],
        )
    form.body_end = len(form.rows)
    return form


def _yuan(value: str | None) -> Any:
    return "" if value is None else Yuan(value)


def prices_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """重点药品和检测试剂价格监测日报."""
    form = Form(sheet_name="价格监测", width=11, widths={1: 14, 2: 24, 3: 12, 4: 24})
    form.title(f"{region}重点药品和检测试剂价格监测日报({report['date']})")
    form.line((11, f"填报单位:{filing_unit}  (单位:元)"))
    head = form.add(
        "药品编码",
        "药品名称",
        "机构编码",
        "机构名称",
        "结算笔数",
        "数量",
        "金额",
        "最低单价",
        "平均单价",
        "最高单价",
        "监测限价",
    )
    form.header = (head, head)
    for item in report["items"]:
        form.add(
            item["med_list_codg"],
            item["med_list_name"],
            item["fixmedins_code"],
            item["fixmedins_name"],
            item["lines"],
            Quantity(item["quantity"]),
            _yuan(item["amount"]),
            _yuan(item["lowest_pric"]),
            _yuan(item["average_pric"]),
            _yuan(item["highest_pric"]),
            _yuan(item["cap"]),
        )
    form.body_end = len(form.rows)
    return form


def sales_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """重点药品和检测试剂药店销售日报: per district, pharmacy and code."""
    form = Form(sheet_name="药店销售", width=8, widths={1: 16, 2: 12, 3: 24, 4: 14, 5: 24})
    form.title(f"{region}重点药品和检测试剂定点药店销售日报({report['date']})")
    form.line((8, f"填报单位:{filing_unit}  (单位:元)"))
    head = form.add("统筹区", "药店编码", "药店名称", "药品编码", "药品名称", "结算笔数", "数量", "金额")
    form.header = (head, head)
    for item in report["items"]:
        form.add(
            item["area_name"],
            item["fixmedins_code"],
            item["fixmedins_name"],
            item["med_list_codg"],
            item["med_list_name"],
            item["settlements"],
            Quantity(item["quantity"]),
            _yuan(item["amount"]),
        )
    for district in report["districts"]:
        form.add(
            f"{district['area_name']} 合计",
            "",
            f"{district['pharmacies']} 家药店",
            "",
            "",
            "",
            Quantity(district["quantity"]),
            _yuan(district["amount"]),
        )
    form.body_end = len(form.rows)
    return form


def month_indicators_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """定点医疗机构月度监测指标: each indicator's value, threshold and whether it fails."""
    names = list(INDICATOR_LABELS)
    form = Form(sheet_name="机构月度指标", width=4 + len(names), widths={1: 12, 2: 22})
    form.title(f"{region}定点医疗机构医保监测指标({report['month']})")
    form.line((4 + len(names), f"填报单位:{filing_unit}  规则版本:{report['rule_version']}  (带 * 为预警)"))
    head = form.add("机构编码", "机构名称", "级别", "结算人次", *[INDICATOR_LABELS[n] for n in names])
    form.header = (head, head)
    for item in report["items"]:
        by_name = {i["indicator"]: i for i in item["indicators"]}
        cells = []
        for name in names:
            indicator = by_name.get(name)
            if indicator is None or indicator["value"] is None:
                cells.append("")
            elif indicator["flagged"] and item["judged"]:
                cells.append(f"{Decimal(indicator['value']) * 100:.2f}% *")
            else:
                cells.append(Ratio(indicator["value"]))
        form.add(item["fixmedins_code"], item["fixmedins_name"], item["level"] or "", item["settlements"], *cells)
    form.body_end = len(form.rows)
    form.note(f"结算人次少于 {report['min_settlements']} 的机构当月不作预警。")
    return form
