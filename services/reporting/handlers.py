"""Event consumers of the reporting service: every topic into the read models of models.py.

Each handler is idempotent on its own (a repeated fact changes nothing) on top of the inbox, and
tolerant of order: a reversal carries its original settlement, versions keep the newest (cases, persons,
budgets). `APPLY` is what replay.py runs into a scratch schema; `handlers(app)` is the live service's, which
also hands every applied event, once committed, to the live feed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from fastapi import FastAPI

from services.reporting import watch
from services.reporting.domain import FINANCE_LEVELS, business_day, parse_moment, prepayment_effective_at
from services.reporting.feed import Feed
from services.reporting.lines import BadLines, Line, Settled, line_amounts, line_columns, parse_lines
from services.reporting.models import LINE_AMOUNTS, MOVE_AMOUNTS
from services.reporting.watch import settled_of
from shared.db import Sql, Unit
from shared.events.consumer import Batched, Handler
from shared.events.envelope import Envelope
from shared.events.topics import (
    BUDGET_SET,
    CLAIM_SUBMITTED,
    COVID_CASE_REGISTERED,
    INSTITUTION_CHANGED,
    PERSON_CHANGED,
    PREPAYMENT_DISBURSED,
    SETTLED,
    SETTLEMENT_REVERSED,
    SUBSIDY_DUE,
    SUBSIDY_PAID,
)
from shared.money import to_fen
from shared.readmodels import institution_changed_handler


class BadPayload(ValueError):
    """An event whose payload the reports cannot use (dead-lettered by the consumer)."""


def _money(payload: dict, name: str) -> Decimal:
    value = payload.get(name)
    if value is None:
        return Decimal("0.00")
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise BadPayload(f"{name} is not a finite amount")
    return amount


def _day(value) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _required(payload: dict, name: str):
    value = payload.get(name)
    if value in (None, ""):
        raise BadPayload(f"payload has no {name}")
    return value


def _categories(original: dict) -> list[str] | None:
    """The identities the person held (`aid_categories`), None for events from before the field."""
    value = original.get("aid_categories")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 16 for v in value):
        raise BadPayload("aid_categories is not a list of category names")
    return sorted(set(value))


def _lines(original: dict, *, setl_date: date) -> list[Line]:
    begndate = _day(original.get("begndate"))
    try:
        return parse_lines(original, default_day=begndate or setl_date)
    except BadLines as exc:
        raise BadPayload(str(exc)) from None


def _move(original: dict, *, kind: str, day: date, at, lines: list[Line] | None = None) -> dict:
    """One row of settlement_moves from a `settled` payload; amounts negated for a reversal."""
    sign = 1 if kind == "settle" else -1
    setl_time = parse_moment(original.get("setl_time"))
    setl_date = _day(original.get("setl_date")) or (business_day(setl_time) if setl_time else day)
    level = original.get("fixmedins_level")
    return {
        "setl_id": str(_required(original, "setl_id")),
        "kind": kind,
        "sign": sign,
        "day": day,
        "at": at,
        "setl_date": setl_date,
        "psn_no": str(_required(original, "psn_no")),
        "insutype": str(_required(original, "insutype")),
        "psn_type": original.get("psn_type"),
        "insuplc_admdvs": original.get("insuplc_admdvs"),
        "origin": original.get("origin") or "local",
        "fixmedins_code": str(_required(original, "fixmedins_code")),
        "fixmedins_kind": original.get("fixmedins_kind"),
        "fixmedins_level": int(level) if level else None,
        "fixmedins_affiliation": original.get("fixmedins_affiliation"),
        "fixmedins_admdvs": original.get("fixmedins_admdvs"),
        "med_type": str(_required(original, "med_type")),
        "chronic_disease": original.get("chronic_disease"),
        "two_disease": original.get("two_disease"),
        "aid_category": original.get("aid_category"),
        "covid_status": original.get("covid_status"),
        "offsite": bool(original.get("offsite")),
        "declared": bool(original.get("declared")),
        "begndate": _day(original.get("begndate")),
        "enddate": _day(original.get("enddate")),
        **{name: sign * _money(original, name) for name in MOVE_AMOUNTS},
        "retail_purchase": original.get("retail_purchase") is True,
        "acct_payer_psn_no": original.get("acct_payer_psn_no") or None,
        "aid_categories": _categories(original),
        **line_amounts(lines if lines is not None else _lines(original, setl_date=setl_date), sign),
    }


def _insert(table: str, columns: tuple[str, ...], *, key: tuple[str, ...]) -> Sql:
    """One row that, when its key is there already (a repeated fact), changes nothing."""
    return Sql(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )


def _newest(table: str, columns: tuple[str, ...], *, key: tuple[str, ...]) -> Sql:
    """Upsert that keeps the row with the highest `version` (events may arrive out of order)."""
    changed = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return Sql(
        f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {changed} WHERE EXCLUDED.version > t.version"
    )


_MOVE_COLUMNS = (
    "setl_id",
    "kind",
    "sign",
    "day",
    "at",
    "setl_date",
    "psn_no",
    "insutype",
    "psn_type",
    "insuplc_admdvs",
    "origin",
    "fixmedins_code",
    "fixmedins_kind",
    "fixmedins_level",
    "fixmedins_affiliation",
    "fixmedins_admdvs",
    "med_type",
    "chronic_disease",
    "two_disease",
    "aid_category",
    "covid_status",
    "offsite",
    "declared",
    "begndate",
    "enddate",
    *MOVE_AMOUNTS,
    "retail_purchase",
    "acct_payer_psn_no",
    "aid_categories",
    *LINE_AMOUNTS,
)
_ADD_MOVE = Sql(
    f"INSERT INTO settlement_moves ({', '.join(_MOVE_COLUMNS)}) VALUES ({', '.join(':' + c for c in _MOVE_COLUMNS)}) "
    "ON CONFLICT (setl_id, kind) DO NOTHING RETURNING setl_id"
)
# A settlement: its move and its lines in one statement; the lines only when the move is new (a repeated fact
# changes nothing). Answers 1 when the settlement is new here, else nothing.
_ADD_SETTLEMENT = Sql(f"""
WITH m AS (
  INSERT INTO settlement_moves ({", ".join(_MOVE_COLUMNS)}) VALUES ({", ".join(":" + c for c in _MOVE_COLUMNS)})
  ON CONFLICT (setl_id, kind) DO NOTHING RETURNING setl_id
), l AS (
  INSERT INTO settlement_lines (setl_id, feedetl_sn, psn_no, fixmedins_code, fixmedins_kind, fixmedins_admdvs,
                                med_type, retail_purchase, setl_date, fee_day, med_list_codg, med_list_name,
                                item_class, category, essential, watched, pric, cnt, amount, days_supply)
  SELECT m.setl_id, x.sn, :psn_no, :fixmedins_code, :fixmedins_kind, :fixmedins_admdvs, :med_type, :retail_purchase,
         :setl_date, x.day, x.codg, x.name, x.class, x.category, x.essential, x.watched, x.pric, x.cnt, x.amount,
         x.days
    FROM m, unnest(CAST(:l_sn AS text[]), CAST(:l_codg AS text[]), CAST(:l_name AS text[]),
                   CAST(:l_class AS text[]), CAST(:l_category AS text[]), CAST(:l_essential AS boolean[]),
                   CAST(:l_watched AS boolean[]), CAST(:l_pric AS numeric[]), CAST(:l_cnt AS numeric[]),
                   CAST(:l_amount AS numeric[]), CAST(:l_days AS int[]), CAST(:l_day AS date[]))
         AS x(sn, codg, name, class, category, essential, watched, pric, cnt, amount, days, day)
  ON CONFLICT (setl_id, feedetl_sn) DO NOTHING
)
SELECT count(*) FROM m
""")
_ADD_SUBSIDY = _insert(
    "subsidies",
    (
        "setl_id",
        "reversal",
        "fixmedins_code",
        "psn_no",
        "case_status",
        "advance_payer",
        "amount",
        "shares",
        "setl_date",
    ),
    key=("setl_id", "reversal"),
)
_ADD_PREPAYMENT = _insert(
    "prepayments",
    (
        "prepayment_id",
        "fixmedins_code",
        "kind",
        "amount",
        "disbursed_on",
        "scheduled_on",
        "admdvs",
        "recorded_at",
        "effective_at",
    ),
    key=("prepayment_id",),
)
_ADD_FINANCE_PAYMENT = _insert(
    "finance_payments",
    ("ref", "payer", "to_fixmedins_code", "to_level", "amount", "paid_on", "admdvs", "recorded_at"),
    key=("ref",),
)
_ADD_CLAIM = _insert("claims", ("claim_id", "psn_no", "fixmedins_code", "submitted_at"), key=("claim_id",))
_SET_CASE = _newest(
    "covid_cases",
    (
        "case_id",
        "version",
        "psn_no",
        "status",
        "diagnosed_at",
        "fixmedins_code",
        "diagnosis",
        "published",
        "psn_name",
        "gend",
        "brdy",
        "certno",
        "insutype",
        "insuplc_admdvs",
    ),
    key=("case_id",),
)
_SET_PERSON = _newest(
    "persons",
    ("psn_no", "version", "insutype", "psn_type", "insuplc_admdvs", "gend", "brdy", "emp_no"),
    key=("psn_no",),
)
_SET_BUDGET = _newest("budgets", ("fixmedins_code", "year", "amount", "version"), key=("fixmedins_code", "year"))


async def apply_settled(unit: Unit, event: Envelope) -> Settled | None:
    """The settlement's move and lines; what the rules read of it when it is new here, None for a repeated fact."""
    p = event.payload
    setl_time = parse_moment(_required(p, "setl_time"))
    day = _day(p.get("setl_date")) or business_day(setl_time)
    lines = _lines(p, setl_date=day)
    move = _move(p, kind="settle", day=day, at=setl_time, lines=lines)
    if not await unit.fetchval(_ADD_SETTLEMENT, **move, **line_columns(lines)):
        return None
    return settled_of(p, lines, setl_date=move["setl_date"])


async def on_settled(unit: Unit, event: Envelope) -> None:
    await apply_settled(unit, event)


async def apply_reversed(unit: Unit, event: Envelope) -> bool:
    """The reversal's move (negative, on its own day); True when it is new here."""
    p = event.payload
    original = dict(p.get("original") or {})
    if not original:
        raise BadPayload("settlement-reversed without its original settlement")
    original.setdefault("setl_id", p.get("setl_id"))
    reversed_at = parse_moment(_required(p, "reversed_at"))
    day = _day(p.get("rev_date")) or business_day(reversed_at)
    return await unit.fetchval(_ADD_MOVE, **_move(original, kind="reverse", day=day, at=reversed_at)) is not None


async def on_reversed(unit: Unit, event: Envelope) -> None:
    await apply_reversed(unit, event)


async def on_subsidy_due(unit: Unit, event: Envelope) -> None:
    p = event.payload
    await unit.execute(
        _ADD_SUBSIDY,
        setl_id=str(_required(p, "setl_id")),
        reversal=bool(p.get("reversal")),
        fixmedins_code=str(_required(p, "fixmedins_code")),
        psn_no=p.get("psn_no"),
        case_status=str(_required(p, "case_status")),
        advance_payer=str(p.get("advance_payer") or ""),
        amount=_money(p, "amount"),
        shares=list(p.get("shares") or []),
        setl_date=_day(p.get("setl_date")),
    )


async def on_prepayment_disbursed(unit: Unit, event: Envelope) -> None:
    p = event.payload
    recorded_at = parse_moment(event.occurred_at)
    disbursed_on = _day(_required(p, "disbursed_on"))
    await unit.execute(
        _ADD_PREPAYMENT,
        prepayment_id=str(_required(p, "prepayment_id")),
        fixmedins_code=str(_required(p, "fixmedins_code")),
        kind=str(_required(p, "kind")),
        amount=_money(p, "amount"),
        disbursed_on=disbursed_on,
        scheduled_on=_day(p.get("scheduled_on")),
        admdvs=str(p.get("admdvs") or ""),
        recorded_at=recorded_at,
        effective_at=prepayment_effective_at(disbursed_on=disbursed_on, recorded_at=recorded_at),
    )


def _text(payload: dict, name: str, longest: int) -> str | None:
    """An optional text field of at most `longest` characters (the column's width)."""
    value = payload.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise BadPayload(f"{name} is not a text of at most {longest} characters")
    return value


async def on_subsidy_paid(unit: Unit, event: Envelope) -> None:
    """Finance's payment, once per `ref`: the prepayment service announces a ref once, and the same ref again (under
    another event id) changes nothing."""
    p = event.payload
    ref, payer = _text(p, "ref", 64), _required(p, "payer")
    if ref is None:
        raise BadPayload("payload has no ref")
    if payer not in FINANCE_LEVELS:
        raise BadPayload(f"subsidy-paid with payer {str(payer)[:20]!r}, not a finance level")
    to_fixmedins_code, to_level = _text(p, "to_fixmedins_code", 32), _text(p, "to_level", 16)
    if (to_fixmedins_code is None) == (to_level is None):
        raise BadPayload("subsidy-paid names neither or both of to_fixmedins_code and to_level")
    amount = to_fen(_money(p, "amount"))
    if amount <= 0:
        raise BadPayload("subsidy-paid with an amount that is not positive")
    await unit.execute(
        _ADD_FINANCE_PAYMENT,
        ref=ref,
        payer=payer,
        to_fixmedins_code=to_fixmedins_code,
        to_level=to_level,
        amount=amount,
        paid_on=_day(_required(p, "paid_on")),
        admdvs=_text(p, "admdvs", 6),
        recorded_at=parse_moment(event.occurred_at),
    )


async def on_covid_case(unit: Unit, event: Envelope) -> None:
    p = event.payload
    await unit.execute(
        _SET_CASE,
        case_id=str(_required(p, "case_id")),
        version=int(p.get("version") or 1),
        psn_no=str(_required(p, "psn_no")),
        status=str(_required(p, "status")),
        diagnosed_at=parse_moment(_required(p, "diagnosed_at")),
        fixmedins_code=str(_required(p, "fixmedins_code")),
        diagnosis=str(p.get("diagnosis") or "")[:200],
        published=bool(p.get("published")),
        psn_name=p.get("psn_name"),
        gend=p.get("gend"),
        brdy=_day(p.get("brdy")),
        certno=p.get("certno"),
        insutype=p.get("insutype"),
        insuplc_admdvs=p.get("insuplc_admdvs"),
    )


async def on_person_changed(unit: Unit, event: Envelope) -> None:
    p = event.payload
    await unit.execute(
        _SET_PERSON,
        psn_no=str(_required(p, "psn_no")),
        version=int(p.get("version") or 1),
        insutype=p.get("insutype"),
        psn_type=p.get("psn_type"),
        insuplc_admdvs=p.get("insuplc_admdvs"),
        gend=p.get("gend"),
        brdy=_day(p.get("brdy")),
        emp_no=p.get("emp_no"),
    )


async def on_budget_set(unit: Unit, event: Envelope) -> None:
    """The newest budget of an institution's year: a later version replaces the amount, an older one changes nothing."""
    p = event.payload
    try:
        year, version = int(_required(p, "year")), int(_required(p, "version"))
    except (TypeError, ValueError):
        raise BadPayload("budget-set with a year or version that is not a whole number") from None
    amount = _money(p, "amount")
    if amount <= 0:
        raise BadPayload("budget-set with an amount that is not positive")
    await unit.execute(
        _SET_BUDGET, fixmedins_code=str(_required(p, "fixmedins_code")), year=year, amount=amount, version=version
    )


async def on_claim_submitted(unit: Unit, event: Envelope) -> None:
    p = event.payload
    await unit.execute(
        _ADD_CLAIM,
        claim_id=str(_required(p, "claim_id")),
        psn_no=p.get("psn_no"),
        fixmedins_code=p.get("fixmedins_code"),
        submitted_at=parse_moment(p.get("submitted_at")),
    )


APPLY: dict[str, Handler] = {
    CLAIM_SUBMITTED: on_claim_submitted,
    SETTLED: on_settled,
    SETTLEMENT_REVERSED: on_reversed,
    SUBSIDY_DUE: on_subsidy_due,
    PREPAYMENT_DISBURSED: on_prepayment_disbursed,
    PERSON_CHANGED: on_person_changed,
    INSTITUTION_CHANGED: institution_changed_handler(),
    COVID_CASE_REGISTERED: on_covid_case,
    BUDGET_SET: on_budget_set,
    SUBSIDY_PAID: on_subsidy_paid,
}


def _fed(apply: Handler, feed: Feed) -> Handler:
    async def handle(unit: Unit, event: Envelope) -> None:
        await apply(unit, event)
        unit.after_commit(lambda: feed.publish(event))

    return handle


def _supervised(state: Any, feed: Feed) -> Batched:
    """`settled` and `settlement-reversed`, a run of them at once: each applied in order (and, once committed, on the
    live feed), then supervision's rules on the settlements new here and its look again at what the reversals undo."""

    async def handle(unit: Unit, events: list[Envelope]) -> None:
        settled: list[Settled] = []
        reversals: list[tuple[str, str]] = []
        for event in events:
            if event.type == SETTLEMENT_REVERSED:
                if await apply_reversed(unit, event):
                    p = event.payload
                    psn_no = str(p.get("psn_no") or (p.get("original") or {}).get("psn_no"))
                    reversals.append((psn_no, str(p.get("setl_id"))))
            else:
                one = await apply_settled(unit, event)
                if one is not None:
                    settled.append(one)
            unit.after_commit(partial(feed.publish, event))
        supervision = state.supervision
        if settled:
            await watch.after_settled(unit, supervision, settled)
        if reversals:
            await watch.after_reversed(unit, supervision, reversals)

    return Batched(handle)


def handlers(app: FastAPI) -> dict[str, Handler]:
    """The live service's handlers: `APPLY`, with supervision's rules on settlements and reversals, and each applied
    event, once committed, to the live feed. (A rebuild, replay.py, runs `APPLY` alone: it raises no alert.)"""
    feed: Feed = app.state.feed
    live: dict[str, Handler] = {topic: _fed(apply, feed) for topic, apply in APPLY.items()}
    supervised = _supervised(app.state, feed)
    live[SETTLED] = live[SETTLEMENT_REVERSED] = supervised
    return live
