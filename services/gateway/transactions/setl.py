"""A settlement's breakdown (the services' CONTRACT answer) as the platform's `setlinfo` and `setldetail`.

setlinfo follows the spec's identities to the fen: medfee_sumamt = fund_pay_sumamt + psn_part_amt +
hosp_part_amt (hosp_part_amt 0), psn_part_amt = acct_pay + psn_cash_pay. fund_pay_sumamt is everything that is
not the patient's: the funds (hifp, hifmi, maf, tilted aid) and the COVID finance subsidy; 其他支出 (oth_pay) holds
the tilted aid and the subsidy. setldetail lists each payer that paid with its 基金支付类型 (data/codes.toml);
Σ fund_payamt = fund_pay_sumamt + acct_pay. A cancellation negates every amount except ratios and balances.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.gateway.codes import PARTS, Codes
from shared.events.envelope import BUSINESS_TZ

ZERO = Decimal("0.00")


def signed(value: Decimal, negate: bool) -> Decimal:
    """The value, negated for a cancellation (a zero stays 0.00, never -0.00)."""
    return -value if negate and value != 0 else value


def amount(value: Any) -> Decimal:
    """A service's money string ("12.50") as a Decimal of two places."""
    return Decimal(value if value is not None else "0").quantize(Decimal("0.01"))


def platform_time(value: str | None, fallback: datetime) -> str:
    """yyyy-MM-dd HH:mm:ss (Beijing) of an RFC 3339 time."""
    moment = datetime.fromisoformat(value) if value else fallback
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")


def age_on(brdy: str | None, on: date) -> Decimal:
    """Age in years on a day (N4,1)."""
    if not brdy:
        return Decimal("0.0")
    born = date.fromisoformat(brdy[:10])
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return Decimal(max(years, 0)).quantize(Decimal("0.1"))


def setlinfo(
    b: dict[str, Any],
    *,
    codes: Codes,
    basics: dict[str, Any],
    medins_setl_id: str,
    now: datetime,
    mdtrt_cert_type: str | None = None,
    with_setl_id: bool = True,
    negate: bool = False,
    balc: Decimal | None = None,
    setl_time: str | None = None,
) -> dict[str, Any]:
    """The platform's setlinfo of a breakdown (presettle: without setl_id)."""

    def s(value: Decimal) -> Decimal:
        return signed(value, negate)

    def m(name: str) -> Decimal:
        return s(amount(b.get(name)))

    funds = amount(b.get("fund_pay_sumamt")) + amount(b.get("fin_subsidy_pay"))
    acct, cash = amount(b.get("acct_pay")), amount(b.get("psn_cash_pay"))
    setl_moment = setl_time or b.get("setl_time")
    when = datetime.fromisoformat(setl_moment) if setl_moment else now
    insutype = b.get("insutype") or basics.get("insutype")
    family = b.get("acct_payer_psn_no") and b.get("acct_payer_psn_no") != b.get("psn_no")
    info: dict[str, Any] = {"mdtrt_id": b.get("mdtrt_id")}
    if with_setl_id:
        info["setl_id"] = b.get("setl_id")
    info.update(
        psn_no=b.get("psn_no"),
        psn_name=basics.get("psn_name") or "",
        psn_cert_type=basics.get("psn_cert_type") or "01",
        certno=basics.get("certno") or "",
        gend=basics.get("gend") or "0",
        brdy=(basics.get("brdy") or "")[:10] or None,
        age=age_on(basics.get("brdy"), when.astimezone(BUSINESS_TZ).date()),
        insutype=insutype,
        psn_type=basics.get("psn_type") or codes.psn_types["resident"],
        cvlserv_flag="0",
        setl_time=platform_time(setl_moment, now),
        mdtrt_cert_type=mdtrt_cert_type,
        med_type=b.get("med_type"),
        medfee_sumamt=m("medfee_sumamt"),
        fulamt_ownpay_amt=m("fulamt_ownpay_amt"),
        overlmt_selfpay=ZERO,
        preselfpay_amt=m("preselfpay_amt"),
        inscp_scp_amt=m("inscp_scp_amt"),
        act_pay_dedc=m("act_pay_dedc"),
        hifp_pay=m("hifp_pay"),
        pool_prop_selfpay=Decimal(b.get("pool_prop") or "0"),
        cvlserv_pay=ZERO,
        hifes_pay=ZERO,
        hifmi_pay=m("hifmi_pay"),
        hifob_pay=ZERO,
        maf_pay=m("maf_pay"),
        oth_pay=s(amount(b.get("tilt_aid_pay")) + amount(b.get("fin_subsidy_pay"))),
        fund_pay_sumamt=s(funds),
        psn_part_amt=s(acct + cash),
        acct_pay=s(acct),
        psn_cash_pay=s(cash),
        hosp_part_amt=ZERO,
        balc=amount(b.get("balc")) if balc is None else balc,
        acct_mulaid_pay=s(acct) if family else ZERO,
        medins_setl_id=medins_setl_id,
        clr_optins=basics.get("insuplc_admdvs"),
        clr_way="1",
        clr_type=codes.clr_types.get(b.get("med_type") or "11", "11"),
        hifdm_pay=ZERO,
    )
    return info


def setldetail(b: dict[str, Any], *, codes: Codes, negate: bool = False) -> list[dict[str, Any]]:
    """Each payer that paid: 基金支付类型, the amount in policy scope, the amount paid."""
    insutype = b.get("insutype") or "310"
    inscope = amount(b.get("inscp_scp_amt"))
    paid: dict[str, tuple[str, Decimal]] = {}
    for part in PARTS:
        value = amount(b.get(part))
        if value == 0:
            continue
        code, name = codes.fund_pay_type(part, insutype)
        before = paid.get(code, (name, ZERO))[1]
        paid[code] = (name, before + value)
    return [
        {
            "fund_pay_type": code,
            "inscp_scp_amt": signed(inscope, negate),
            "crt_payb_lmt_amt": signed(value, negate),
            "fund_payamt": signed(value, negate),
            "fund_pay_type_name": name,
        }
        for code, (name, value) in paid.items()
    ]
