"""The official layouts (seed 001, 附件2/3/4) and the two statistics sheets, filled from the JSON answers.

Money on the forms is in 万元 with four decimals; the JSON answers stay in yuan.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from services.reporting.domain import (
    BUDGET_STATUS_LABELS,
    CASE_LABELS,
    CASE_STATUSES,
    DISEASE_LABELS,
    GEND_LABELS,
    INSUTYPE_LABELS,
    INSUTYPES,
    ORIGIN_LABELS,
    ORIGINS,
    to_wan,
)
from services.reporting.forms import Form, Ratio, chinese_date

DAILY_COLUMNS = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "psn_burden")


def _wan(value: str) -> Decimal:
    return to_wan(Decimal(value))


def _ratio(value: str | None):
    return Ratio(value) if value is not None else ""


def _percent(ratio: str) -> str:
    """'0.8000' → '80%' (as the form's notes quote a threshold)."""
    return f"{(Decimal(ratio) * 100).normalize():f}%"


def daily_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """附件2: 新型冠状病毒感染的肺炎参保患者门诊和住院医疗费用情况表."""
    day = date.fromisoformat(report["date"])
    cumulative = report.get("cumulative", False)
    form = Form(sheet_name="附件2 日报", width=9, widths={1: 8, 2: 16, 3: 10, 4: 12, 5: 14, 6: 14, 7: 14, 8: 14, 9: 16})
    form.title(f"{region}新型冠状病毒感染的肺炎参保患者门诊和住院医疗费用情况表")
    form.line(
        (4, f"填报单位(盖章):{filing_unit}"),
        (3, f"填报日期:{chinese_date(day + timedelta(days=1))}"),
        (2, "(单位:人、万元)"),
    )
    period = f"截至{chinese_date(day)}累计(首次填报)" if cumulative else f"{chinese_date(day)}当日结算"
    form.line((9, f"数据时间段:{period}"))
    persons = "累计结算人数" if cumulative else "当日结算人数"
    top = form.add(
        "项 目", "", "", persons, "医疗总费用", "基本医保支付", "大病保险支付", "医疗救助支付", "应由个人负担的费用"
    )
    form.merge(top, 1, top, 3)
    form.header = (top, top)
    rows = {(r["case_status"], r["origin"], r["insutype"]): r for r in report["rows"]}
    for status in CASE_STATUSES:
        status_first = len(form.rows) + 1
        for origin in ORIGINS:
            origin_first = len(form.rows) + 1
            for insutype in INSUTYPES:
                r = rows[(status, origin, insutype)]
                form.add(
                    CASE_LABELS[status],
                    ORIGIN_LABELS[origin],
                    INSUTYPE_LABELS[insutype],
                    r["persons"],
                    *(_wan(r[c]) for c in DAILY_COLUMNS),
                )
            form.merge(origin_first, 2, origin_first + len(INSUTYPES) - 1, 2)
        form.merge(status_first, 1, len(form.rows), 1)
    total = report["total"]
    last = form.add("合 计", "", "", total["persons"], *(_wan(total[c]) for c in DAILY_COLUMNS))
    form.merge(last, 1, last, 3)
    form.body_end = last
    form.line((4, "填表人:"), (3, "联系电话:"), (2, "审批人:"))
    form.note("填表说明:1.住院患者不需每日填报,仅填报出院结算人数和与其对应的结算费用,可以零报告。")
    form.note(
        "2.本表于次日8:30点前报市医疗保障局,数据时间段前一日结算的人数和发生的费用,每日人数和费用不可重叠、缺漏。"
    )
    form.note("3.第一次填报范围含既往全部累计结算人数和费用。结算冲销在冲销当日以负数计。")
    return form


def ledger_form(ledger: dict, *, filing_unit: str, region: str) -> Form:
    """附件3: 新型冠状病毒感染的肺炎疫情医疗保障服务管理台账."""
    filing = date.fromisoformat(ledger["date"])
    form = Form(
        sheet_name="附件3 台账",
        width=12,
        widths={1: 10, 2: 6, 3: 6, 4: 22, 5: 18, 6: 12, 7: 20, 8: 9, 9: 9, 10: 14, 11: 6, 12: 6},
    )
    form.title(f"{region}新型冠状病毒感染的肺炎疫情医疗保障服务管理台账")
    form.line((6, f"填报单位(盖章):{filing_unit}"), (4, f"填报日期:{chinese_date(filing)}"), (2, "(单位:人、万元)"))
    cutoff = ledger["cutoff"][:16].replace("T", " ")
    form.line((12, f"数据截止时间:{cutoff}" + (";姓名、身份证号已脱敏" if ledger.get("masked") else "")))
    first = form.add(
        "姓名",
        "性别",
        "年龄",
        "身份证号",
        "收治诊断",
        "收治入院日期",
        "收治医疗机构",
        "参保险种",
        "",
        "参保地",
        "疑似",
        "确诊",
    )
    second = form.add("", "", "", "", "", "", "", "职工医保", "居民医保", "", "", "")
    for col in (1, 2, 3, 4, 5, 6, 7, 10, 11, 12):
        form.merge(first, col, second, col)
    form.merge(first, 8, first, 9)
    form.header = (first, second)
    for item in ledger["items"]:
        form.add(
            item["psn_name"],
            GEND_LABELS.get(item.get("gend") or "", ""),
            item["age"] if item.get("age") is not None else "",
            item["certno"],
            item["diagnosis"],
            item["admission_date"],
            item["fixmedins_name"],
            "√" if item.get("insutype") == "310" else "",
            "√" if item.get("insutype") == "390" else "",
            item.get("insuplc_name") or "",
            "√" if item["status"] == "suspected" else "",
            "√" if item["status"] == "confirmed" else "",
        )
    form.body_end = len(form.rows)
    form.line((6, "填报人:"), (6, "联系电话:"))
    form.note("填表说明:1.本表仅统计由相关部门正式公布的患者信息。")
    form.note("2.本表于次日8:30点前报市医疗保障局,数据截止时间为前一日17点。")
    return form


def prepayment_form(table: dict, *, filing_unit: str, region: str) -> Form:
    """附件4: 医保专项预付金拨付情况表."""
    filing = date.fromisoformat(table["date"])
    form = Form(sheet_name="附件4 预付金", width=4, widths={1: 22, 2: 18, 3: 18, 4: 18})
    form.title(f"{region}医保专项预付金拨付情况表")
    form.line((2, f"填报时间:{chinese_date(filing)}"), (2, "单位:万元"))
    cutoff = table["cutoff"][:16].replace("T", " ")
    form.line((4, f"数据截止时间:{cutoff}"))
    head = form.add("统筹区", "累计预付金额", "其中:专项预付金", "其中:追加专项预付金")
    form.header = (head, head)
    for row in table["rows"]:
        form.add(
            f"{row['area_name']}({row['admdvs']})" if row["area_name"] != row["admdvs"] else row["admdvs"],
            _wan(row["amount"]),
            _wan(row["covid_special"]),
            _wan(row["top_up"]),
        )
    total = table["total"]
    form.body_end = form.add("合计", _wan(total["amount"]), _wan(total["covid_special"]), _wan(total["top_up"]))
    form.line((2, f"填报单位(盖章):{filing_unit}"), (1, "填表人:"), (1, "联系电话:"))
    form.note("填表说明:1.预付金是指专项为新型冠状病毒感染的肺炎防治列支的预算。")
    form.note("2.本表于次日8:30点前报市医疗保障局,数据截止时间为前一日17点。")
    return form


def two_disease_form(stats: dict, *, filing_unit: str, region: str) -> Form:
    """两病门诊用药保障月度统计表."""
    year, month = stats["month"].split("-")
    form = Form(sheet_name="两病月报", width=6, widths={1: 14, 2: 14, 3: 12, 4: 16, 5: 16, 6: 16})
    form.title(f"{region}“两病”(高血压、糖尿病)门诊用药保障情况统计表")
    form.line(
        (3, f"填报单位(盖章):{filing_unit}"), (2, f"统计月份:{int(year)}年{int(month)}月"), (1, "(单位:人、人次、万元)")
    )
    head = form.add("病种", "享受待遇人数", "结算人次", "医疗总费用", "统筹基金支付", "基金支付合计")
    form.header = (head, head)
    money = ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt")
    for row in stats["rows"]:
        form.add(
            DISEASE_LABELS.get(row["disease"], row["disease"]),
            row["beneficiaries"],
            row["visits"],
            *(_wan(row[k]) for k in money),
        )
    total = stats["total"]
    form.body_end = form.add("合计", total["beneficiaries"], total["visits"], *(_wan(total[k]) for k in money))
    form.note("说明:医院于次月2日前、县区于次月5日前报送;结算冲销在冲销当月扣减。合计人数按人去重。")
    return form


def indicators_form(report: dict, *, filing_unit: str, region: str) -> Form:
    """定点医疗机构监测指标表."""
    form = Form(
        sheet_name="机构指标",
        width=12,
        widths={1: 12, 2: 20, 3: 8, 4: 12, 5: 14, 6: 14, 7: 16, 8: 12, 9: 14, 10: 14, 11: 12, 12: 10},
    )
    form.title(f"{region}定点医疗机构监测指标表({report['year']}年)")
    county = report["county_aid_self_pay"]
    share = county["share"]
    form.line((7, f"填报单位(盖章):{filing_unit}"), (5, "(单位:万元、%)"))
    form.line(
        (
            12,
            "县管医院救助对象住院政策范围内个人自付比例:"
            + (f"{Decimal(share) * 100:.2f}%" if share else "无数据")
            + "(指标 ≤ 10%)",
        )
    )
    head = form.add(
        "机构编码",
        "机构名称",
        "隶属",
        "结算人次",
        "医疗总费用",
        "目录外费用占比",
        "救助对象范围内自付比例",
        "次均费用增长",
        "总额预算已用(非新冠)",
        "总额预算",
        "预算使用率",
        "预算状态",
    )
    form.header = (head, head)
    for item in report["items"]:
        form.add(
            item["fixmedins_code"],
            item["fixmedins_name"],
            {"city": "市管", "county": "县管"}.get(item["affiliation"] or "", ""),
            item["settlements"],
            _wan(item["medfee_sumamt"]),
            _ratio(item["outside_catalogue_share"]),
            _ratio(item["aid_self_pay_share"]),
            _ratio(item["cost_growth"]),
            _wan(item["budget_used"]),
            _wan(item["budget"]) if item["budget"] is not None else "",
            _ratio(item["budget_ratio"]),
            BUDGET_STATUS_LABELS.get(item["budget_status"] or "", ""),
        )
    form.body_end = len(form.rows)
    form.note(
        "说明:救助对象自付比例 = 政策范围内费用中基本医保、大病保险、医疗救助(含倾斜救助)支付后的剩余部分"
        " ÷ 政策范围内费用。"
    )
    thresholds = report["budget_thresholds"]
    form.note(
        f"总额预算使用率 = 当年非新冠结算的基金支付 ÷ 总额预算;≥ {_percent(thresholds['warning'])} 预警,"
        f"≥ {_percent(thresholds['exceeded'])} 超支;新冠肺炎医疗费用单独记账,不受总额预算限制。"
    )
    return form
