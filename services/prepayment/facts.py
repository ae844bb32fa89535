"""What the prepayment service takes from each consumed event (docs/events.md), parsed and checked.

Pure: plain payload dicts in, frozen values out; a payload that breaks the document raises
`FactsError` (the consumer then retries and dead-letters it, writing nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from services.prepayment.ledger import ADVANCE_PAYERS, CODE_PATTERN, FINANCE_LEVELS
from shared.events.envelope import BUSINESS_TZ
from shared.money import FEN, ZERO

_CODE = re.compile(CODE_PATTERN)
MAX_EVENT_AMOUNT = Decimal("1000000000.00")


class FactsError(ValueError):
    """An event payload that does not follow docs/events.md."""


def money(payload: dict, name: str, *, default: Decimal | None = None) -> Decimal:
    """A money field: a string (or integer) with at most two decimals, 0 ≤ amount ≤ 10⁹."""
    raw = payload.get(name)
    if raw is None:
        if default is not None:
            return default
        raise FactsError(f"{name} is missing")
    if isinstance(raw, (bool, float)):
        raise FactsError(f"{name} must be a decimal string")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise FactsError(f"{name} is not a decimal amount") from None
    if not amount.is_finite() or amount != amount.quantize(FEN) or not ZERO <= amount <= MAX_EVENT_AMOUNT:
        raise FactsError(f"{name} {raw!r} is not an amount in fen between 0 and 10^9")
    return amount.quantize(FEN)


def day(payload: dict, name: str, *, fallback_time: str | None = None) -> date:
    """A business date `YYYY-MM-DD`, or the Asia/Shanghai date of an RFC 3339 time."""
    raw = payload.get(name)
    try:
        if raw:
            return date.fromisoformat(str(raw)[:10])
        if fallback_time and payload.get(fallback_time):
            return business_date_of(str(payload[fallback_time]))
    except ValueError:
        raise FactsError(f"{name} {raw!r} is not a date") from None
    raise FactsError(f"{name} is missing")


def business_date_of(moment: str) -> date:
    """The business day (Asia/Shanghai) of an RFC 3339 time."""
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BUSINESS_TZ)
    return parsed.astimezone(BUSINESS_TZ).date()


def code(payload: dict, name: str = "fixmedins_code") -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not _CODE.match(value):
        raise FactsError(f"{name} {value!r} is not an institution code")
    return value


def setl_id(payload: dict) -> str:
    value = payload.get("setl_id")
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise FactsError("setl_id is missing or longer than 64 characters")
    return value


@dataclass(frozen=True, slots=True)
class SettlementFacts:
    """What a settlement means for the books: the funds' shares, the day, COVID or not."""

    setl_id: str
    fixmedins_code: str
    setl_date: date
    covid_status: str | None
    hifp_pay: Decimal
    hifmi_pay: Decimal
    maf_pay: Decimal
    tilt_aid_pay: Decimal
    fund_pay_sumamt: Decimal
    fin_subsidy_pay: Decimal
    acct_pay: Decimal | None = None  # the personal account's part (own and family); None: stored before it was booked

    @property
    def aid_pay(self) -> Decimal:
        """Medical aid including tilted aid: both are paid by the aid fund (`fund:maf`)."""
        return self.maf_pay + self.tilt_aid_pay


def settlement_facts(payload: dict) -> SettlementFacts:
    """Parse a `settled` payload (or the `original` inside `settlement-reversed`)."""
    if not isinstance(payload, dict):
        raise FactsError("settlement payload is not an object")
    status = payload.get("covid_status")
    if status not in (None, "suspected", "confirmed"):
        raise FactsError(f"covid_status {status!r} is not null, suspected or confirmed")
    facts = SettlementFacts(
        setl_id=setl_id(payload),
        fixmedins_code=code(payload),
        setl_date=day(payload, "setl_date", fallback_time="setl_time"),
        covid_status=status,
        hifp_pay=money(payload, "hifp_pay"),
        hifmi_pay=money(payload, "hifmi_pay", default=ZERO),
        maf_pay=money(payload, "maf_pay", default=ZERO),
        tilt_aid_pay=money(payload, "tilt_aid_pay", default=ZERO),
        fund_pay_sumamt=money(payload, "fund_pay_sumamt"),
        fin_subsidy_pay=money(payload, "fin_subsidy_pay", default=ZERO),
        acct_pay=money(payload, "acct_pay", default=ZERO),
    )
    parts = facts.hifp_pay + facts.hifmi_pay + facts.aid_pay
    if parts != facts.fund_pay_sumamt:
        raise FactsError(
            f"settlement {facts.setl_id}: hifp + hifmi + maf + tilt = {parts} "
            f"but fund_pay_sumamt = {facts.fund_pay_sumamt}"
        )
    return facts


@dataclass(frozen=True, slots=True)
class ReversalFacts:
    """A settlement reversal: its business day and, when the payload carries it, the original."""

    setl_id: str
    fixmedins_code: str
    rev_date: date
    original: SettlementFacts | None


def reversal_facts(payload: dict) -> ReversalFacts:
    """Parse a `settlement-reversed` payload."""
    original = payload.get("original")
    parsed = settlement_facts(original) if isinstance(original, dict) and original else None
    facts = ReversalFacts(
        setl_id=setl_id(payload),
        fixmedins_code=code(payload),
        rev_date=day(payload, "rev_date", fallback_time="reversed_at"),
        original=parsed,
    )
    if parsed is not None and (parsed.setl_id, parsed.fixmedins_code) != (facts.setl_id, facts.fixmedins_code):
        raise FactsError(f"reversal {facts.setl_id}: its original is another settlement")
    return facts


@dataclass(frozen=True, slots=True)
class SubsidyFacts:
    """A COVID finance subsidy as the settlement engine split it: who advances, who finally owes."""

    setl_id: str
    fixmedins_code: str
    case_status: str
    amount: Decimal
    advance_payer: str
    shares: tuple[tuple[str, Decimal], ...]
    setl_date: date
    reversal: bool = False

    def share_of(self, payer: str) -> Decimal:
        return sum((amount for p, amount in self.shares if p == payer), ZERO)


def subsidy_facts(payload: dict, *, occurred_on: date) -> SubsidyFacts:
    """Parse a `subsidy-due` payload; shares must name distinct levels and add up to the amount."""
    status = payload.get("case_status")
    if status not in ("confirmed", "suspected"):
        raise FactsError(f"case_status {status!r} is not confirmed or suspected")
    advance = payload.get("advance_payer")
    if advance not in ADVANCE_PAYERS:
        raise FactsError(f"advance_payer {advance!r} is not city or county")
    raw_shares = payload.get("shares")
    if not isinstance(raw_shares, list) or not 1 <= len(raw_shares) <= len(FINANCE_LEVELS):
        raise FactsError("shares must be a list of 1 to 4 {payer, amount}")
    shares = []
    for share in raw_shares:
        if not isinstance(share, dict) or share.get("payer") not in FINANCE_LEVELS:
            raise FactsError(f"share {share!r} does not name central, provincial, city or county")
        shares.append((share["payer"], money(share, "amount")))
    if len({payer for payer, _ in shares}) != len(shares):
        raise FactsError("a finance level appears twice in shares")
    amount = money(payload, "amount")
    if sum((a for _, a in shares), ZERO) != amount:
        raise FactsError(f"subsidy {payload.get('setl_id')}: shares do not add up to {amount}")
    reversal = payload.get("reversal", False)
    if not isinstance(reversal, bool):
        raise FactsError("reversal must be true or false")
    setl_day = day(payload, "setl_date") if payload.get("setl_date") else occurred_on
    return SubsidyFacts(
        setl_id=setl_id(payload),
        fixmedins_code=code(payload),
        case_status=status,
        amount=amount,
        advance_payer=advance,
        shares=tuple(shares),
        setl_date=setl_day,
        reversal=reversal,
    )


def subsidy_reversal_day(payload: dict, *, occurred_on: date) -> date:
    """The business day of a subsidy reversal: its `rev_date` if given, else the day it was published."""
    return day(payload, "rev_date") if payload.get("rev_date") else occurred_on
