"""Finance pays its share (DOMAIN §6): the level that advanced a hospital's COVID subsidy pays the hospital, and the
central and provincial levels (and the city, for a county's advance) pay their final shares to the level that
advanced them. A payment never exceeds what is outstanding between payer and receiver.

Outstanding (reversed settlements net out):
- payer P → hospital H: Σ subsidies of H advanced by P − Σ P's payments to H;
- payer P → level A: Σ P's final shares of subsidies advanced by A − Σ P's payments to A.

Each payment is one row (`ref`, the payer's reference: the same ref again answers the first payment), one journal
entry `subsidy-payment:{ref}` (postings.subsidy_payment_entry) and one `subsidy-paid` event, all in one transaction:
the reports (reporting) hear of a payment exactly when it is booked, never of a repeated ref. Payments of one payer
are serialised by an advisory lock, so two payments can never both pass the outstanding check.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

from services.prepayment import postings, store
from services.prepayment.ledger import FINANCE_LEVELS
from services.prepayment.schemas import SubsidyPaymentIn, SubsidyPaymentOut
from shared.db import Sql, Unit
from shared.events.topics import SUBSIDY_PAID
from shared.money import ZERO, fmt
from shared.problems import Problem

LOCK_PAYER = 0x5942_5003
MAX_INSTITUTIONS = 5000
MAX_PAYMENTS = 5000  # of one day, in one answer

_BY_REF = Sql("SELECT request_hash, answer FROM subsidy_payments WHERE ref = :ref")
_HOSPITAL_AREA = Sql("SELECT admdvs FROM institutions WHERE fixmedins_code = :code")
_OWED_TO_HOSPITAL = Sql("""
SELECT (SELECT coalesce(sum(amount), 0) FROM subsidies
         WHERE known AND reversed_on IS NULL AND fixmedins_code = :code AND advance_payer = :payer)
     - (SELECT coalesce(sum(amount), 0) FROM subsidy_payments WHERE payer = :payer AND to_fixmedins_code = :code)
""")
_OWED_TO_LEVEL = Sql("""
SELECT (SELECT coalesce(sum(sh.share), 0) FROM subsidy_shares sh JOIN subsidies s ON s.setl_id = sh.setl_id
         WHERE s.known AND s.reversed_on IS NULL AND sh.payer = :payer AND s.advance_payer = :level)
     - (SELECT coalesce(sum(amount), 0) FROM subsidy_payments WHERE payer = :payer AND to_level = :level)
""")
_ADD = Sql("""
INSERT INTO subsidy_payments (ref, payer, to_fixmedins_code, to_level, amount, paid_on, request_hash, answer)
VALUES (:ref, :payer, :to_fixmedins_code, :to_level, :amount, :paid_on, :hash, CAST(:answer AS jsonb))
ON CONFLICT (ref) DO NOTHING RETURNING ref
""")
_OF_DAY = Sql("""
SELECT ref, payer, to_fixmedins_code, to_level, amount, paid_on FROM subsidy_payments
 WHERE paid_on = :day ORDER BY ref LIMIT :limit
""")
# Every level, zeros included, so both sides of a reconciliation name the same rows.
_DAY_BY_PAYER = Sql("""
SELECT l.level AS payer, count(p.ref) AS count, coalesce(sum(p.amount), 0) AS amount
  FROM unnest(CAST(:levels AS text[])) WITH ORDINALITY AS l(level, n)
  LEFT JOIN subsidy_payments p ON p.payer = l.level AND p.paid_on = :day
 GROUP BY l.level, l.n ORDER BY l.n
""")
_LEVELS = Sql("""
SELECT l.level,
       (SELECT coalesce(sum(sh.advanced), 0) FROM subsidy_shares sh JOIN subsidies s ON s.setl_id = sh.setl_id
         WHERE s.known AND s.reversed_on IS NULL AND sh.payer = l.level) AS advanced,
       (SELECT coalesce(sum(sh.recoverable), 0) FROM subsidy_shares sh JOIN subsidies s ON s.setl_id = sh.setl_id
         WHERE s.known AND s.reversed_on IS NULL AND sh.payer = l.level) AS recoverable,
       (SELECT coalesce(sum(sh.share), 0) FROM subsidy_shares sh JOIN subsidies s ON s.setl_id = sh.setl_id
         WHERE s.known AND s.reversed_on IS NULL AND sh.payer = l.level AND s.advance_payer <> l.level) AS share_due,
       (SELECT coalesce(sum(amount), 0) FROM subsidy_payments WHERE payer = l.level) AS paid,
       (SELECT coalesce(sum(amount), 0) FROM subsidy_payments WHERE to_level = l.level) AS received
  FROM unnest(CAST(:levels AS text[])) WITH ORDINALITY AS l(level, n)
 ORDER BY l.n
""")
_INSTITUTIONS = Sql("""
SELECT code, sum(receivable) AS receivable, sum(paid) AS paid
  FROM (SELECT fixmedins_code AS code, amount AS receivable, 0 AS paid FROM subsidies
         WHERE known AND reversed_on IS NULL
        UNION ALL
        SELECT to_fixmedins_code, 0, amount FROM subsidy_payments WHERE to_fixmedins_code IS NOT NULL) m
 WHERE CAST(:code AS text) IS NULL OR code = :code
 GROUP BY code ORDER BY code LIMIT :limit
""")


def request_hash(body: SubsidyPaymentIn) -> str:
    """What a payment asks, for comparing a repeated `ref`."""
    text = "|".join(str(v) for v in (body.payer, body.to_fixmedins_code, body.to_level, fmt(body.amount), body.paid_on))
    return hashlib.sha256(text.encode()).hexdigest()


async def _existing(unit: Unit, body: SubsidyPaymentIn, digest: str) -> dict[str, Any] | None:
    row = await unit.fetchrow(_BY_REF, ref=body.ref)
    if row is None:
        return None
    if row.request_hash != digest:
        raise Problem(
            409,
            "PAYMENT_REF_REUSED",
            f"payment {body.ref} was recorded with other terms",
            errors=[{"field": "ref", "code": "PAYMENT_REF_REUSED", "detail": "another payment has this ref"}],
        )
    return dict(row.answer)


async def record_payment(unit: Unit, body: SubsidyPaymentIn) -> tuple[dict[str, Any], bool]:
    """The payment booked (True), or the first payment of the same `ref` (False); 422 beyond what is outstanding."""
    digest = request_hash(body)
    await store.lock(unit, LOCK_PAYER, body.payer)
    first = await _existing(unit, body, digest)
    if first is not None:
        return first, False
    admdvs = None
    if body.to_fixmedins_code is not None:
        store.check_code_known(await store.institution_known(unit, body.to_fixmedins_code), body.to_fixmedins_code)
        admdvs = await unit.fetchval(_HOSPITAL_AREA, code=body.to_fixmedins_code)  # None: known from the journal only
        outstanding = await unit.fetchval(_OWED_TO_HOSPITAL, payer=body.payer, code=body.to_fixmedins_code)
        receiver = f"hospital {body.to_fixmedins_code}"
    else:
        outstanding = await unit.fetchval(_OWED_TO_LEVEL, payer=body.payer, level=body.to_level)
        receiver = f"the {body.to_level} level"
    outstanding = Decimal(outstanding)
    if body.amount > outstanding:
        detail = (
            f"{body.payer} owes {receiver} {fmt(max(outstanding, ZERO))} outstanding; "
            f"a payment of {fmt(body.amount)} exceeds it"
        )
        raise Problem(
            422,
            "PAYMENT_EXCEEDS_OUTSTANDING",
            detail,
            errors=[{"field": "amount", "code": "PAYMENT_EXCEEDS_OUTSTANDING", "detail": detail}],
        )
    payment = dict(body)  # ref, payer, to_fixmedins_code or to_level, amount, paid_on (as parsed)
    answer = SubsidyPaymentOut(
        **payment, outstanding_before=outstanding, outstanding_after=outstanding - body.amount
    ).model_dump(mode="json")
    added = await unit.fetchval(_ADD, **payment, hash=digest, answer=answer)
    if added is None:  # the same ref by another payer, committed meanwhile
        first = await _existing(unit, body, digest)
        assert first is not None
        return first, False
    await store.post(unit, [postings.subsidy_payment_entry(**payment)])
    await announce(unit, payment, admdvs=admdvs)
    return answer, True


async def announce(unit: Unit, payment: dict[str, Any], *, admdvs: str | None) -> None:
    """`subsidy-paid`, keyed by the payment's ref (a payment between levels has no institution to key it by);
    `admdvs`: the pooling area of the hospital paid, None for a payment to a level."""
    await unit.publish(
        topic=SUBSIDY_PAID,
        key=payment["ref"],
        payload={
            "ref": payment["ref"],
            "payer": payment["payer"],
            "to_fixmedins_code": payment["to_fixmedins_code"],
            "to_level": payment["to_level"],
            "amount": fmt(payment["amount"]),
            "paid_on": payment["paid_on"],
            "admdvs": admdvs,
        },
    )


async def positions(unit: Unit, *, fixmedins_code: str | None = None) -> dict[str, Any]:
    """Per level what it advanced, recovers, owes, paid, received and still has to pay; per hospital its COVID
    subsidies, what finance paid it and what is outstanding."""
    levels = []
    for row in await unit.fetch(_LEVELS, levels=list(FINANCE_LEVELS)):
        levels.append(
            {
                "level": row.level,
                "advanced": row.advanced,
                "recoverable": row.recoverable,
                "share_due": row.share_due,
                "paid": row.paid,
                "received": row.received,
                "outstanding": row.advanced + row.share_due - row.paid,
            }
        )
    rows = await unit.fetch(_INSTITUTIONS, code=fixmedins_code, limit=MAX_INSTITUTIONS + 1)
    institutions = [
        {
            "fixmedins_code": row.code,
            "receivable": row.receivable,
            "paid": row.paid,
            "outstanding": row.receivable - row.paid,
        }
        for row in rows[:MAX_INSTITUTIONS]
    ]
    return {"levels": levels, "institutions": institutions, "truncated": len(rows) > MAX_INSTITUTIONS}


async def payments_of_day(unit: Unit, *, day: date, limit: int = MAX_PAYMENTS) -> dict[str, Any]:
    """The payments finance made on `day` (`paid_on`): count and amount, in all and per payer level, and the payments
    themselves (up to `limit`) — what reporting reconciles its `subsidy-paid` read model with."""
    payers = [
        {"payer": row.payer, "count": row.count, "amount": row.amount}
        for row in await unit.fetch(_DAY_BY_PAYER, levels=list(FINANCE_LEVELS), day=day)
    ]
    rows = await unit.fetch(_OF_DAY, day=day, limit=limit + 1)
    return {
        "date": day,
        "count": sum(p["count"] for p in payers),
        "amount": sum((p["amount"] for p in payers), ZERO),
        "payers": payers,
        "items": [dict(row.items()) for row in rows[:limit]],
        "truncated": len(rows) > limit,
    }
