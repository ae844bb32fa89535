"""附件2, the daily report: rows and total to the fen, zero reports, the first report cumulative, reversals
negative on their own day, consecutive days neither overlapping nor leaving gaps."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from reporting_support import OPS, daily, feed, fresh_day, reverse, reversed_, row, settle, settled

from shared.events.topics import SETTLED, SETTLEMENT_REVERSED

MONEY = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "psn_burden")


def _expected(payloads: list[dict]) -> dict:
    out = {"persons": len(payloads), **{k: Decimal("0.00") for k in MONEY}}
    for p in payloads:
        for k in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay"):
            out[k] += Decimal(p[k])
        out["psn_burden"] += (
            Decimal(p["medfee_sumamt"])
            - Decimal(p["hifp_pay"])
            - Decimal(p["hifmi_pay"])
            - Decimal(p["maf_pay"])
            - Decimal(p["tilt_aid_pay"])
        )
    return {"persons": out["persons"], **{k: f"{out[k]:.2f}" for k in MONEY}}


async def test_rows_and_total_to_the_fen(reporting):
    day = fresh_day()
    a = await settle(
        reporting,
        day=day,
        covid="confirmed",
        origin="local",
        insutype="310",
        medfee="12345.67",
        hifp="8000.01",
        hifmi="1234.56",
        maf="100.10",
        tilt="11.11",
    )
    b = await settle(
        reporting,
        day=day,
        covid="confirmed",
        origin="local",
        insutype="310",
        medfee="0.03",
        hifp="0.01",
        hifmi="0.00",
        maf="0.00",
    )
    c = await settle(
        reporting,
        day=day,
        covid="suspected",
        origin="other_province",
        insutype="390",
        medfee="999.99",
        hifp="500.00",
        hifmi="0.00",
        maf="0.00",
        hour=23,
    )
    d = await settle(
        reporting,
        day=day,
        covid="confirmed",
        origin="province",
        insutype="390",
        medfee="80.00",
        hifp="40.00",
        hifmi="0.00",
        maf="0.00",
        hour=0,
    )
    await settle(reporting, day=day, covid=None, medfee="5000.00")  # not a COVID patient: not on the form
    await settle(reporting, day=day - timedelta(days=1), covid="confirmed", hour=23)  # the day before
    await settle(reporting, day=day + timedelta(days=1), covid="confirmed", hour=0)  # the day after

    report = await daily(reporting, day)
    assert report["date"] == day.isoformat() and report["unit"] == "yuan"
    assert len(report["rows"]) == 12
    assert {k: v for k, v in row(report, "confirmed", "local", "310").items() if k in ("persons", *MONEY)} == _expected(
        [a, b]
    )
    assert (
        row(report, "confirmed", "local", "310")["psn_burden"] == "2999.91"
    )  # 12345.70 − 8000.02 − 1234.56 − 100.10 − 11.11
    assert {k: row(report, "suspected", "other_province", "390")[k] for k in ("persons", *MONEY)} == _expected([c])
    assert {k: row(report, "confirmed", "province", "390")[k] for k in ("persons", *MONEY)} == _expected([d])
    assert report["total"] == _expected([a, b, c, d])
    untouched = [
        r
        for r in report["rows"]
        if (r["case_status"], r["origin"], r["insutype"])
        not in {("confirmed", "local", "310"), ("suspected", "other_province", "390"), ("confirmed", "province", "390")}
    ]
    assert all(r["persons"] == 0 and all(r[k] == "0.00" for k in MONEY) for r in untouched)


async def test_zero_report_has_every_row(reporting):
    report = await daily(reporting, fresh_day())
    assert [(r["case_status"], r["origin"], r["insutype"]) for r in report["rows"]] == [
        (c, o, i)
        for c in ("confirmed", "suspected")
        for o in ("local", "province", "other_province")
        for i in ("310", "390")
    ]
    assert all(r["persons"] == 0 and all(r[k] == "0.00" for k in MONEY) for r in report["rows"])
    assert report["total"] == {"persons": 0, **{k: "0.00" for k in MONEY}}


async def test_reversal_is_negative_on_its_own_day(reporting):
    day = fresh_day(span=3)
    original = await settle(
        reporting,
        day=day,
        covid="suspected",
        origin="local",
        insutype="390",
        medfee="2000.00",
        hifp="1200.00",
        hifmi="0.00",
        maf="300.00",
    )
    before = await daily(reporting, day)
    await reverse(reporting, original, day=day + timedelta(days=2))

    assert await daily(reporting, day) == before  # the settlement's day is not rewritten
    assert (await daily(reporting, day + timedelta(days=1)))["total"]["persons"] == 0
    negative = row(await daily(reporting, day + timedelta(days=2)), "suspected", "local", "390")
    assert negative == {
        "case_status": "suspected",
        "origin": "local",
        "insutype": "390",
        "persons": -1,
        "medfee_sumamt": "-2000.00",
        "hifp_pay": "-1200.00",
        "hifmi_pay": "0.00",
        "maf_pay": "-300.00",
        "psn_burden": "-500.00",
    }
    net = [await daily(reporting, day + timedelta(days=i), cumulative=True) for i in (-1, 2)]
    assert net[0]["total"] == net[1]["total"]  # settled and reversed: nothing left over the three days


async def test_reversal_arriving_before_its_settlement_counts_the_same(reporting):
    day = fresh_day(span=2)
    original = settled(day=day, covid="confirmed", medfee="300.00", hifp="100.00", hifmi="0.00", maf="0.00")
    await feed(reporting, SETTLEMENT_REVERSED, reversed_(original, day=day + timedelta(days=1)))
    await feed(reporting, SETTLED, original)
    await feed(reporting, SETTLED, original)  # redelivered under a new event id: still once
    assert (await daily(reporting, day))["total"]["medfee_sumamt"] == "300.00"
    assert (await daily(reporting, day + timedelta(days=1)))["total"]["medfee_sumamt"] == "-300.00"


async def test_same_event_twice_is_applied_once(reporting):
    from reporting_support import envelope

    day = fresh_day()
    event = envelope(
        SETTLED, settled(day=day, covid="confirmed", medfee="10.00", hifp="1.00", hifmi="0.00", maf="0.00")
    )
    consumer = reporting._transport.app.state.consumer
    assert await consumer.apply(SETTLED, event.to_json()) is True
    assert await consumer.apply(SETTLED, event.to_json()) is False
    assert (await daily(reporting, day))["total"]["persons"] == 1


async def test_days_neither_overlap_nor_leave_gaps_and_the_first_report_is_cumulative(reporting):
    first = fresh_day(span=6)
    days = [first + timedelta(days=i) for i in range(6)]
    rng = random.Random(7)
    settledd = []
    for _ in range(40):
        day = rng.choice(days)
        medfee = Decimal(rng.randrange(100, 500_000)) / 100
        hifp = (medfee * Decimal("0.6")).quantize(Decimal("0.01"))
        p = await settle(
            reporting,
            day=day,
            covid=rng.choice(["confirmed", "suspected"]),
            origin=rng.choice(["local", "province", "other_province"]),
            insutype=rng.choice(["310", "390"]),
            medfee=f"{medfee:.2f}",
            hifp=f"{hifp:.2f}",
            hifmi="0.00",
            maf="0.00",
            hour=rng.randrange(24),
        )
        settledd.append((day, p))
    for day, p in rng.sample(settledd, 8):
        await reverse(
            reporting, p, day=day + timedelta(days=rng.randrange(0, (days[-1] - day).days + 1)), hour=rng.randrange(24)
        )

    before = await daily(reporting, first - timedelta(days=1), cumulative=True)
    cumulative = await daily(reporting, days[-1], cumulative=True)
    assert cumulative["cumulative"] is True
    reports = [await daily(reporting, day) for day in days]
    for i, line in enumerate(cumulative["rows"]):
        for field in ("persons", *MONEY):
            summed = sum(Decimal(str(r["rows"][i][field])) for r in reports) + Decimal(str(before["rows"][i][field]))
            assert summed == Decimal(str(line[field])), (line, field)
    assert sum(r["total"]["persons"] for r in reports) == 40 - 8
    medfee = sum(Decimal(p["medfee_sumamt"]) for _, p in settledd)
    reversed_medfee = Decimal(cumulative["total"]["medfee_sumamt"]) - Decimal(before["total"]["medfee_sumamt"])
    assert reversed_medfee <= medfee
    # the first (cumulative) report of the last day holds everything up to it, the daily one only that day
    assert (await daily(reporting, days[-1]))["total"] == reports[-1]["total"]


async def test_reports_need_ops_or_admin(reporting):
    day = fresh_day().isoformat()
    assert (await reporting.get("/v1/reports/daily", params={"date": day})).status_code == 401
    from reporting_support import HIS

    forbidden = await reporting.get("/v1/reports/daily", params={"date": day}, headers=HIS)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "FORBIDDEN"
    bad = await reporting.get("/v1/reports/daily", params={"date": "2024-02-30"}, headers=OPS)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    fmt = await reporting.get("/v1/reports/daily", params={"date": day, "format": "pdf"}, headers=OPS)
    assert fmt.status_code == 422
