"""The transactions the gateway answers (NHSA-GATEWAY.md "Transactions"), by infno.

`writes`: the transaction changes something (here or at a service) and runs inside the message log's transaction;
a read is answered first and logged after (services/gateway/messages.py). `lines_of`: the visit (from the input)
whose uploaded fee lines a settle checks its total against, read with the msgid's claim. `once`: a write whose twin
could move no money and whose work can be undone, run without a claim (messages.run_once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.gateway.runtime import Call
from services.gateway.transactions import inpatient, outpatient, person, pharmacy, queries, reversal
from services.gateway.transactions.common import visit_in_data


@dataclass(frozen=True, slots=True)
class Transaction:
    infno: str
    name: str
    run: Callable[[Call], Awaitable[dict[str, Any]]]
    writes: bool
    lines_of: Callable[[dict[str, Any]], str | None] | None = None
    once: bool = False


_ALL = (
    Transaction("9001", "签到", person.sign_in, True),
    Transaction("1101", "人员信息获取", person.person_info, False),
    Transaction("2201", "门诊挂号", outpatient.register, True, once=True),
    Transaction("2202", "门诊挂号撤销", outpatient.cancel_registration, True),
    Transaction("2203", "门诊就诊信息上传", outpatient.visit_information, True),
    Transaction("2203A", "药店门诊就诊信息上传", outpatient.visit_information, True),
    Transaction("2204", "门诊费用明细信息上传", outpatient.upload_fees, True, once=True),
    Transaction("2205", "门诊费用明细信息撤销", outpatient.cancel_fees, True),
    Transaction("2206", "门诊预结算", outpatient.presettle, False),
    Transaction("2207", "门诊结算", outpatient.settle, True, visit_in_data),
    Transaction("2208", "门诊结算撤销", outpatient.cancel_settle, True),
    Transaction("2301", "住院费用明细上传", inpatient.upload_fees, True),
    Transaction("2302", "住院费用明细撤销", inpatient.cancel_fees, True),
    Transaction("2303", "住院预结算", inpatient.presettle, False),
    Transaction("2304", "住院结算", inpatient.settle, True, visit_in_data),
    Transaction("2305", "住院结算撤销", inpatient.cancel_settle, True),
    Transaction("2401", "入院办理", inpatient.admit, True),
    Transaction("2402", "出院办理", inpatient.discharge, True),
    Transaction("2404", "入院撤销", inpatient.cancel_admission, True),
    Transaction("2405", "出院撤销", inpatient.cancel_discharge, True),
    Transaction("2101", "药店预结算", pharmacy.presettle, False),
    Transaction("2102", "药店结算", pharmacy.settle, True),
    Transaction("2103", "药店结算撤销", pharmacy.cancel, True),
    Transaction("2601", "冲正交易", reversal.reverse, True),
    Transaction("3201", "医药机构费用结算对总账", queries.reconcile, False),
    Transaction("5203", "结算信息查询", queries.settlement, False),
    Transaction("5206", "人员累计信息查询", queries.accumulations, False),
)
TRANSACTIONS: dict[str, Transaction] = {t.infno: t for t in _ALL}
