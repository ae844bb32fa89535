"""Builders of the events the prepayment service consumes, scenarios for property tests, a simple model."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from shared.events.envelope import Envelope

D = Decimal
ZERO = D("0.00")


def yuan(fen: int) -> str:
    return f"{D(fen) / 100:.2f}"


def settled_payload(
    setl_id: str,
    code: str,
    *,
    hifp: str = "0.00",
    hifmi: str = "0.00",
    maf: str = "0.00",
    tilt: str = "0.00",
    fin_subsidy: str = "0.00",
    covid_status: str | None = None,
    setl_date: str = "2024-03-01",
    acct: str = "0.00",
) -> dict:
    """A `settled` payload as docs/events.md defines it (fields the prepayment service ignores included); `acct`:
    what the personal account paid (the cash part is 10.00)."""
    fund = D(hifp) + D(hifmi) + D(maf) + D(tilt)
    medfee = fund + D(fin_subsidy) + D("10.00") + D(acct)
    return {
        "setl_id": setl_id,
        "mdtrt_id": f"M-{setl_id}",
        "psn_no": "P0001",
        "insutype": "310",
        "psn_type": "in_service",
        "insuplc_admdvs": "621000",
        "origin": "local",
        "fixmedins_code": code,
        "fixmedins_kind": "hospital",
        "fixmedins_level": 2,
        "fixmedins_affiliation": "city",
        "fixmedins_admdvs": "621000",
        "med_type": "21",
        "chronic_disease": None,
        "two_disease": None,
        "aid_category": None,
        "setl_time": f"{setl_date}T10:00:00+08:00",
        "setl_date": setl_date,
        "begndate": setl_date,
        "enddate": setl_date,
        "covid_status": covid_status,
        "offsite": False,
        "declared": False,
        "medfee_sumamt": f"{medfee:.2f}",
        "fulamt_ownpay_amt": "0.00",
        "preselfpay_amt": "0.00",
        "inscp_scp_amt": f"{medfee:.2f}",
        "act_pay_dedc": "0.00",
        "hifp_pay": hifp,
        "hifmi_pay": hifmi,
        "maf_pay": maf,
        "tilt_aid_pay": tilt,
        "fin_subsidy_pay": fin_subsidy,
        "fund_pay_sumamt": f"{fund:.2f}",
        "psn_pay": f"{D('10.00') + D(acct):.2f}",
        "acct_pay": acct,
        "psn_cash_pay": "10.00",
    }


def reversal_payload(original: dict, *, rev_date: str = "2024-03-02", with_original: bool = True) -> dict:
    payload = {
        "setl_id": original["setl_id"],
        "mdtrt_id": original["mdtrt_id"],
        "psn_no": original["psn_no"],
        "fixmedins_code": original["fixmedins_code"],
        "reversed_at": f"{rev_date}T09:00:00+08:00",
        "rev_date": rev_date,
    }
    if with_original:
        payload["original"] = original
    return payload


def subsidy_payload(
    setl_id: str,
    code: str,
    *,
    case_status: str,
    amount: str,
    advance_payer: str,
    shares: dict[str, str],
    reversal: bool = False,
    setl_date: str = "2024-03-01",
) -> dict:
    return {
        "setl_id": setl_id,
        "fixmedins_code": code,
        "case_status": case_status,
        "amount": amount,
        "advance_payer": advance_payer,
        "shares": [{"payer": p, "amount": a} for p, a in shares.items()],
        "psn_no": "P0001",
        "setl_date": setl_date,
        "reversal": reversal,
    }


def envelope(
    topic: str,
    payload: dict,
    *,
    event_id: str | None = None,
    key: str = "P0001",
    occurred_at: str = "2024-03-02T09:00:00+08:00",
) -> Envelope:
    return Envelope(
        event_id=event_id or str(uuid.uuid4()),
        type=topic,
        version=1,
        occurred_at=occurred_at,
        producer="settlement",
        key=key,
        payload=json.loads(json.dumps(payload)),
    )


# ---------------------------------------------------------------- scenarios and the simple model

SPLITS = {  # (case_status, advance payer = the hospital's affiliation, final shares) — DOMAIN §6
    "confirmed_city_hospital": ("confirmed", "city", (("central", D("0.6")), ("provincial", D("0.4")))),
    "confirmed_county_hospital": ("confirmed", "county", (("central", D("0.6")), ("provincial", D("0.4")))),
    "suspected_city_patient_city_hospital": ("suspected", "city", (("city", D("1")),)),
    "suspected_city_patient_county_hospital": ("suspected", "county", (("city", D("1")),)),
    "suspected_county_patient": ("suspected", "county", (("city", D("0.6")), ("county", D("0.4")))),
}


def split(amount: Decimal, fractions) -> dict[str, str]:
    """First shares rounded half-up to the fen, the last the remainder (what the settlement engine does)."""
    from shared.money import to_fen

    parts, left = {}, amount
    for index, (payer, fraction) in enumerate(fractions):
        part = left if index == len(fractions) - 1 else to_fen(amount * fraction)
        parts[payer] = f"{part:.2f}"
        left -= part
    return parts


@dataclass
class SettlementCase:
    setl_id: str
    code: str
    hifp: int
    hifmi: int
    maf: int
    tilt: int
    subsidy: int  # fen; 0 = not COVID
    split: str
    settled_delivered: bool
    reversed: bool
    reversal_carries_original: bool
    subsidy_delivered: bool
    subsidy_reversed: bool
    day: int
    acct: int = 0  # fen paid from the personal account (never for a COVID settlement)

    @property
    def setl_date(self) -> str:
        return (date(2024, 1, 1) + timedelta(days=self.day)).isoformat()

    def settled(self) -> dict:
        status = SPLITS[self.split][0] if self.subsidy else None
        return settled_payload(
            self.setl_id,
            self.code,
            hifp=yuan(self.hifp),
            hifmi=yuan(self.hifmi),
            maf=yuan(self.maf),
            tilt=yuan(self.tilt),
            fin_subsidy=yuan(self.subsidy),
            covid_status=status,
            setl_date=self.setl_date,
            acct=yuan(self.acct),
        )

    def subsidy_due(self, *, reversal: bool) -> dict:
        status, advance, fractions = SPLITS[self.split]
        return subsidy_payload(
            self.setl_id,
            self.code,
            case_status=status,
            amount=yuan(self.subsidy),
            advance_payer=advance,
            shares=split(D(yuan(self.subsidy)), fractions),
            reversal=reversal,
            setl_date=self.setl_date,
        )

    def events(self) -> list[tuple[str, dict]]:
        """The events this settlement produces (some possibly lost, per the flags)."""
        rev_date = (date.fromisoformat(self.setl_date) + timedelta(days=1)).isoformat()
        out = []
        if self.settled_delivered:
            out.append(("settled", self.settled()))
        if self.reversed:
            out.append(
                (
                    "settlement-reversed",
                    reversal_payload(self.settled(), rev_date=rev_date, with_original=self.reversal_carries_original),
                )
            )
        if self.subsidy and self.subsidy_delivered:
            out.append(("subsidy-due", self.subsidy_due(reversal=False)))
        if self.subsidy and self.subsidy_reversed:
            out.append(("subsidy-due", self.subsidy_due(reversal=True)))
        return out

    # what the books must show, by the simplest reading of the rules
    def fund_payable(self) -> Decimal:
        counted = self.settled_delivered and not self.reversed
        return D(yuan(self.hifp + self.hifmi + self.maf + self.tilt)) if counted else ZERO

    def acct_payable(self) -> Decimal:
        counted = self.settled_delivered and not self.reversed
        return D(yuan(self.acct)) if counted else ZERO

    def subsidy_counted(self) -> bool:
        return bool(self.subsidy) and self.subsidy_delivered and not (self.reversed or self.subsidy_reversed)

    def shares(self) -> dict[str, Decimal]:
        if not self.subsidy_counted():
            return {}
        return {p: D(a) for p, a in split(D(yuan(self.subsidy)), SPLITS[self.split][2]).items()}


@dataclass
class Scenario:
    settlements: list[SettlementCase]
    disbursements: list[tuple[str, int]]  # (code, fen)
    duplicates: list[int] = field(default_factory=list)

    def model_position(self, code: str) -> dict[str, Decimal]:
        prepaid = sum((D(yuan(a)) for c, a in self.disbursements if c == code), ZERO)
        fund = sum((s.fund_payable() for s in self.settlements if s.code == code), ZERO)
        subsidy = sum((D(yuan(s.subsidy)) for s in self.settlements if s.code == code and s.subsidy_counted()), ZERO)
        acct = sum((s.acct_payable() for s in self.settlements if s.code == code), ZERO)
        return {
            "prepaid": prepaid,
            "fund_payable": fund,
            "acct_payable": acct,
            "subsidy_receivable": subsidy,
            "net": fund + acct + subsidy - prepaid,
        }

    def model_finance_net(self, payer: str, code: str | None = None) -> Decimal:
        """A level's final burden over counted subsidies."""
        return sum((s.shares().get(payer, ZERO) for s in self.settlements if code in (None, s.code)), ZERO)

    def events(self) -> list[tuple[str, str, dict]]:
        """(event_id, topic, payload), each event once."""
        out = []
        for case in self.settlements:
            for topic, payload in case.events():
                out.append((str(uuid.uuid4()), topic, payload))
        return out


@st.composite
def scenarios(draw, codes: tuple[str, ...] = ("H1", "H2", "H3"), max_settlements: int = 8) -> Scenario:
    count = draw(st.integers(0, max_settlements))
    cases = []
    for index in range(count):
        covid = draw(st.booleans())
        reversed_ = draw(st.booleans())
        cases.append(
            SettlementCase(
                setl_id=f"S{index}-{uuid.uuid4().hex[:8]}",
                code=draw(st.sampled_from(codes)),
                hifp=draw(st.integers(0, 500_000)),
                hifmi=draw(st.integers(0, 100_000)),
                maf=draw(st.integers(0, 50_000)),
                tilt=draw(st.integers(0, 20_000)),
                subsidy=draw(st.integers(1, 300_000)) if covid else 0,
                split=draw(st.sampled_from(sorted(SPLITS))),
                settled_delivered=draw(st.booleans()) if reversed_ else draw(st.sampled_from([True, True, False])),
                reversed=reversed_,
                reversal_carries_original=draw(st.booleans()),
                subsidy_delivered=draw(st.booleans()) if covid else False,
                subsidy_reversed=draw(st.booleans()) if covid else False,
                day=draw(st.integers(0, 360)),
                acct=0 if covid else draw(st.sampled_from([0, 0, draw(st.integers(1, 80_000))])),
            )
        )
    disbursements = draw(st.lists(st.tuples(st.sampled_from(codes), st.integers(1, 1_000_000)), max_size=5))
    return Scenario(settlements=cases, disbursements=disbursements)


@st.composite
def deliveries(draw, scenario: Scenario) -> list[tuple[str, str, dict]]:
    """The scenario's events, some delivered twice (same event_id), in a random order."""
    events = scenario.events()
    repeated = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    return draw(st.permutations(events + repeated))
