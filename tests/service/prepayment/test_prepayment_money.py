"""The money after the settlement (issue 13), in the prepayment service's books, to the fen against real PostgreSQL:

- what institutions are owed for personal-account payments (acct_payable), cleared and paid, reversed;
- settlements booked before account payments were, brought up to date by their re-announcement;
- finance paying its share (POST /v1/subsidy-payments) and the positions per level and hospital.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from decimal import Decimal

from prepayment_http import ADMIN, OPS, refused
from prepayment_support import reversal_payload, settled_payload, subsidy_payload

from services.prepayment import postings, store
from services.prepayment.facts import settlement_facts
from shared.testing import fetchval

D = Decimal


def _sid() -> str:
    return f"S-{uuid.uuid4().hex}"


async def _clear(books, code: str, start: str, end: str) -> dict:
    response = await books.client.post(
        "/v1/clearings", headers=ADMIN, json={"period_start": start, "period_end": end, "fixmedins_code": code}
    )
    assert response.status_code in (200, 201), response.text
    (clearing,) = response.json()["clearings"]
    return clearing


async def test_account_payments_are_owed_to_the_institution_cleared_and_reversed(books, hospital):
    """A settlement paid partly from the account raises the position by the fund part plus the account part; the
    clearing pays both; the reversal takes both back; the trial balance stays balanced (all balances sum to 0)."""
    first = settled_payload(_sid(), hospital, hifp="700.00", hifmi="12.34", setl_date="2024-05-06", acct="87.66")
    await books.deliver("settled", first)
    position = await books.position(hospital)
    assert (position["fund_payable"], position["acct_payable"], position["net"]) == ("712.34", "87.66", "800.00")
    assert await books.trial(hospital) == {
        "fund:hifp": D("700.00"),
        "fund:hifmi": D("12.34"),
        "account_fund:payments": D("87.66"),
        f"institution:{hospital}:fund_payable": D("-712.34"),
        f"institution:{hospital}:acct_payable": D("-87.66"),
    }
    # a family payment at the same institution (the payer's account, the same book)
    family = settled_payload(_sid(), hospital, hifp="0.00", setl_date="2024-05-07", acct="20.00")
    await books.deliver("settled", family)
    assert (await books.position(hospital))["acct_payable"] == "107.66"

    # a COVID settlement: its funds' part is shown apart in the clearing (the finance subsidy is not cleared)
    covid = settled_payload(
        _sid(), hospital, hifp="100.00", fin_subsidy="50.00", covid_status="confirmed", setl_date="2024-05-08"
    )
    await books.deliver("settled", covid)

    may = await _clear(books, hospital, "2024-05-01", "2024-05-31")
    wanted = ("fund_payable", "covid_fund_payable", "paid", "acct_payable", "acct_paid", "total_paid")
    assert {k: may[k] for k in wanted} == {
        "fund_payable": "812.34",
        "covid_fund_payable": "100.00",
        "paid": "812.34",
        "acct_payable": "107.66",
        "acct_paid": "107.66",
        "total_paid": "920.00",
    }
    assert (await books.position(hospital))["net"] == "0.00"
    kinds = sorted(e["kind"] for e in await books.entries(hospital))
    assert kinds == ["account-payment", "account-payment", "clearing", "clearing", "settlement", "settlement"]

    # the reversal (in June) takes both parts back: the institution owes them until the next clearing
    await books.deliver("settlement-reversed", reversal_payload(first, rev_date="2024-06-02"))
    position = await books.position(hospital)
    assert (position["fund_payable"], position["acct_payable"], position["net"]) == ("-712.34", "-87.66", "-800.00")
    june = await _clear(books, hospital, "2024-06-01", "2024-06-30")
    assert (june["net_due"], june["paid"], june["carried_out"]) == ("-712.34", "0.00", "-712.34")
    assert (june["acct_payable"], june["acct_paid"], june["acct_carried_out"]) == ("-87.66", "0.00", "-87.66")
    ledger = await books.trial()
    assert sum(ledger.values()) == 0
    # carried into July and settled against July's claims
    await books.deliver(
        "settled", settled_payload(_sid(), hospital, hifp="1000.00", setl_date="2024-07-03", acct="100.00")
    )
    july = await _clear(books, hospital, "2024-07-01", "2024-07-31")
    assert (july["carried_in"], july["paid"], july["acct_carried_in"], july["acct_paid"]) == (
        "-712.34",
        "287.66",
        "-87.66",
        "12.34",
    )
    assert (await books.position(hospital))["net"] == "0.00"


async def test_a_settlement_booked_before_account_payments_learns_its_account_part(books, hospital):
    """Settlements the books took without their account part (acct_pay unknown) get it from the re-announcement of
    settlement's migration 0006 — once, whatever is repeated, and reversed when the settlement was."""
    kept, reversed_ = (
        settled_payload(_sid(), hospital, hifp="300.00", setl_date="2024-04-01", acct="45.55"),
        settled_payload(_sid(), hospital, hifp="80.00", setl_date="2024-04-02", acct="19.99"),
    )
    app = books.app
    for payload in (kept, reversed_):  # the books as the previous version kept them: pool entries, acct unknown
        facts = settlement_facts(payload)
        async with app.state.db.begin() as unit:
            old = postings.SettlementState(
                setl_id=facts.setl_id,
                fixmedins_code=hospital,
                facts=replace(facts, acct_pay=None),
            )
            await store.save_states(unit, ({old.setl_id: old}, {}), before=({}, {}))
            await store.post(unit, postings.settlement_entries(old))
    await books.deliver("settlement-reversed", reversal_payload(reversed_, rev_date="2024-04-03", with_original=False))
    before = await books.position(hospital)
    assert (before["fund_payable"], before["acct_payable"]) == ("300.00", "0.00")
    stored = await fetchval(app, "SELECT acct_pay FROM prepayment.settlements WHERE setl_id = :s", s=kept["setl_id"])
    assert stored is None

    for payload in (kept, reversed_):
        again = {**payload, "reannounced": True}
        assert await books.deliver("settled", again) is True
        assert await books.deliver("settled", again) is True  # another event id: nothing more
    after = await books.position(hospital)
    assert (after["fund_payable"], after["acct_payable"], after["net"]) == ("300.00", "45.55", "345.55")
    kinds = sorted(e["kind"] for e in await books.entries(hospital))
    assert kinds == [
        "account-payment",
        "account-payment",
        "account-payment-reversal",
        "settlement",
        "settlement",
        "settlement-reversal",
    ]
    stored = await fetchval(app, "SELECT acct_pay FROM prepayment.settlements WHERE setl_id = :s", s=kept["setl_id"])
    assert stored == D("45.55")


# ------------------------------------------------------------------ finance pays its share


async def _positions(books) -> tuple[dict[str, dict[str, D]], dict[str, dict[str, D]]]:
    response = await books.client.get("/v1/subsidies/positions", headers=OPS)
    assert response.status_code == 200, response.text
    body = response.json()
    levels = {row["level"]: {k: D(v) for k, v in row.items() if k != "level"} for row in body["levels"]}
    hospitals = {
        row["fixmedins_code"]: {k: D(v) for k, v in row.items() if k != "fixmedins_code"}
        for row in body["institutions"]
    }
    for level, row in levels.items():  # what a level still has to pay
        assert row["outstanding"] == row["advanced"] + row["share_due"] - row["paid"], level
    return levels, hospitals


async def _owed_by(books, payer: str, codes: tuple[str, ...]) -> dict[str, D]:
    """One level's part in the subsidies of these hospitals (GET /v1/subsidies, per hospital): its final shares,
    what it advanced and what it recovers."""
    found = {"share": D("0.00"), "advanced": D("0.00"), "recoverable": D("0.00")}
    for code in codes:
        body = (
            await books.client.get("/v1/subsidies", params={"payer": payer, "fixmedins_code": code}, headers=OPS)
        ).json()
        found["share"] += D(body["total"])
        found["advanced"] += D(body["advanced_total"])
        found["recoverable"] += D(body["recoverable_total"])
    return found


def _payments(levels: dict, before: dict) -> dict[str, tuple[D, D]]:
    """(paid, received) of each level since `before`: only this test pays, whatever else is booked meanwhile."""
    return {
        level: (levels[level]["paid"] - before[level]["paid"], levels[level]["received"] - before[level]["received"])
        for level in levels
    }


async def _pay(books, **body):
    return await books.client.post("/v1/subsidy-payments", headers=ADMIN, json=body)


async def test_finance_pays_its_share_and_the_positions_follow(books, hospital):
    """Positions per level and per hospital before and after finance pays; a payment above what is outstanding is
    refused. (Other tests book subsidies too: a level's figures are compared as the part of these hospitals.)"""
    county_h = "T" + uuid.uuid4().hex[:10]
    await books.institution(county_h, affiliation="county")
    mine = (hospital, county_h)
    levels_before, _ = await _positions(books)
    # a confirmed case at the city hospital (city advances 1000.00; central 600.00, provincial 400.00)
    confirmed = _sid()
    await books.deliver(
        "settled",
        settled_payload(confirmed, hospital, hifp="50.00", fin_subsidy="1000.00", covid_status="confirmed"),
    )
    await books.deliver(
        "subsidy-due",
        subsidy_payload(
            confirmed,
            hospital,
            case_status="confirmed",
            amount="1000.00",
            advance_payer="city",
            shares={"central": "600.00", "provincial": "400.00"},
        ),
    )
    # a suspected county patient at the county hospital (county advances 333.33; city 200.00, county 133.33)
    suspected = _sid()
    await books.deliver(
        "subsidy-due",
        subsidy_payload(
            suspected,
            county_h,
            case_status="suspected",
            amount="333.33",
            advance_payer="county",
            shares={"city": "200.00", "county": "133.33"},
        ),
    )
    expected_parts = {  # level: (final share, advanced, recoverable) in these two hospitals' subsidies
        "central": (D("600.00"), D("0.00"), D("0.00")),
        "provincial": (D("400.00"), D("0.00"), D("0.00")),
        "city": (D("200.00"), D("1000.00"), D("1000.00")),
        "county": (D("133.33"), D("333.33"), D("200.00")),
    }
    for level, (share, advanced, recoverable) in expected_parts.items():
        assert await _owed_by(books, level, mine) == {"share": share, "advanced": advanced, "recoverable": recoverable}
    levels, hospitals = await _positions(books)
    for level in levels:  # at least these two hospitals' parts were added
        assert levels[level]["advanced"] - levels_before[level]["advanced"] >= expected_parts[level][1]
    assert hospitals[hospital] == {"receivable": D("1000.00"), "paid": D("0.00"), "outstanding": D("1000.00")}
    assert hospitals[county_h] == {"receivable": D("333.33"), "paid": D("0.00"), "outstanding": D("333.33")}

    # more than is outstanding: refused with a clear error, nothing written
    payments = "SELECT count(*) FROM prepayment.subsidy_payments WHERE to_fixmedins_code = :c"
    too_much = await _pay(
        books,
        payer="city",
        to_fixmedins_code=hospital,
        amount="1000.01",
        paid_on="2024-03-10",
        ref=f"R-{uuid.uuid4().hex}",
    )
    refused(too_much, 422, "PAYMENT_EXCEEDS_OUTSTANDING")
    assert too_much.json()["detail"] == (
        f"city owes hospital {hospital} 1000.00 outstanding; a payment of 1000.01 exceeds it"
    )
    not_the_advancer = await _pay(
        books,
        payer="county",
        to_fixmedins_code=hospital,
        amount="1.00",
        paid_on="2024-03-10",
        ref=f"R-{uuid.uuid4().hex}",
    )
    refused(not_the_advancer, 422, "PAYMENT_EXCEEDS_OUTSTANDING")
    assert await fetchval(books.app, payments, c=hospital) == 0
    assert _payments((await _positions(books))[0], levels_before) == {level: (D("0.00"), D("0.00")) for level in levels}

    # the city pays the hospital in two parts; the hospital's receivable falls as it is paid
    ref = f"R-{uuid.uuid4().hex}"
    paid = await _pay(books, payer="city", to_fixmedins_code=hospital, amount="600.00", paid_on="2024-03-10", ref=ref)
    assert paid.status_code == 201, paid.text
    assert (paid.json()["outstanding_before"], paid.json()["outstanding_after"]) == ("1000.00", "400.00")
    assert (await books.position(hospital))["subsidy_receivable"] == "400.00"
    again = await _pay(books, payer="city", to_fixmedins_code=hospital, amount="600.00", paid_on="2024-03-10", ref=ref)
    assert again.status_code == 200 and again.json() == paid.json()
    refused(
        await _pay(books, payer="city", to_fixmedins_code=hospital, amount="1.00", paid_on="2024-03-10", ref=ref),
        409,
        "PAYMENT_REF_REUSED",
    )
    refused(
        await _pay(
            books,
            payer="city",
            to_fixmedins_code=hospital,
            amount="400.01",
            paid_on="2024-03-11",
            ref=f"R-{uuid.uuid4().hex}",
        ),
        422,
        "PAYMENT_EXCEEDS_OUTSTANDING",
    )
    rest = await _pay(
        books,
        payer="city",
        to_fixmedins_code=hospital,
        amount="400.00",
        paid_on="2024-03-11",
        ref=f"R-{uuid.uuid4().hex}",
    )
    assert rest.status_code == 201 and rest.json()["outstanding_after"] == "0.00"
    assert (await books.position(hospital))["subsidy_receivable"] == "0.00"
    # the county pays its hospital; the central and provincial levels pay the city their shares; the city pays the
    # county its share of the county's advance (what other tests left outstanding between levels stays so)
    for body in (
        {"payer": "county", "to_fixmedins_code": county_h, "amount": "333.33"},
        {"payer": "central", "to_level": "city", "amount": "600.00"},
        {"payer": "provincial", "to_level": "city", "amount": "400.00"},
        {"payer": "city", "to_level": "county", "amount": "200.00"},
    ):
        done = await _pay(books, paid_on="2024-03-20", ref=f"R-{uuid.uuid4().hex}", **body)
        assert done.status_code == 201, (body, done.text)
        answer = done.json()
        assert D(answer["outstanding_before"]) - D(answer["outstanding_after"]) == D(body["amount"])
        assert D(answer["outstanding_after"]) >= 0
    left = D(done.json()["outstanding_after"])  # what the city still owes the county (other tests' shares too)
    refused(
        await _pay(
            books,
            payer="city",
            to_level="county",
            amount=f"{left + D('0.01'):.2f}",
            paid_on="2024-03-21",
            ref=f"R-{uuid.uuid4().hex}",
        ),
        422,
        "PAYMENT_EXCEEDS_OUTSTANDING",
    )

    levels_after, hospitals = await _positions(books)
    assert _payments(levels_after, levels_before) == {
        "central": (D("600.00"), D("0.00")),
        "provincial": (D("400.00"), D("0.00")),
        "city": (D("1200.00"), D("1000.00")),
        "county": (D("333.33"), D("200.00")),
    }
    for level in ("central", "provincial"):  # their outstanding fell by what they paid, at least
        assert levels_after[level]["outstanding"] - levels_before[level]["outstanding"] <= D("0.00")
    assert hospitals[hospital] == {"receivable": D("1000.00"), "paid": D("1000.00"), "outstanding": D("0.00")}
    assert hospitals[county_h] == {"receivable": D("333.33"), "paid": D("333.33"), "outstanding": D("0.00")}
    trial = await books.trial()
    assert sum(trial.values()) == 0
    entries = (
        await books.client.get("/v1/ledger/entries", params={"kind": "subsidy-payment", "limit": 5000}, headers=OPS)
    ).json()["entries"]
    to_mine = [e for e in entries if e["fixmedins_code"] in mine]
    assert sorted((e["lines"][0]["account"], e["lines"][1]["account"]) for e in to_mine) == sorted(
        [(f"institution:{hospital}:subsidy_receivable", "finance:city:paid")] * 2
        + [(f"institution:{county_h}:subsidy_receivable", "finance:county:paid")]
    )


async def test_concurrent_payments_never_exceed_what_is_outstanding(books, hospital):
    setl_id = _sid()
    await books.deliver(
        "subsidy-due",
        subsidy_payload(
            setl_id,
            hospital,
            case_status="confirmed",
            amount="100.00",
            advance_payer="city",
            shares={"central": "60.00", "provincial": "40.00"},
        ),
    )
    answers = await asyncio.gather(
        *(
            _pay(
                books,
                payer="city",
                to_fixmedins_code=hospital,
                amount="30.00",
                paid_on="2024-03-10",
                ref=f"R-{uuid.uuid4().hex}",
            )
            for _ in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 201] + [422] * 5
    paid = await fetchval(
        books.app, "SELECT sum(amount) FROM prepayment.subsidy_payments WHERE to_fixmedins_code = :c", c=hospital
    )
    assert paid == D("90.00")
    assert (await books.position(hospital))["subsidy_receivable"] == "10.00"


async def test_a_reversed_subsidy_leaves_nothing_to_pay(books, hospital):
    setl_id = _sid()
    due = dict(case_status="suspected", amount="50.00", advance_payer="city", shares={"city": "50.00"})
    await books.deliver("subsidy-due", subsidy_payload(setl_id, hospital, **due))
    await books.deliver("subsidy-due", subsidy_payload(setl_id, hospital, reversal=True, **due))
    refused(
        await _pay(
            books,
            payer="city",
            to_fixmedins_code=hospital,
            amount="50.00",
            paid_on="2024-03-10",
            ref=f"R-{uuid.uuid4().hex}",
        ),
        422,
        "PAYMENT_EXCEEDS_OUTSTANDING",
    )
    for bad in (
        {"payer": "city", "amount": "1.00"},  # no receiver
        {"payer": "city", "to_level": "city", "amount": "1.00"},
        {"payer": "city", "to_level": "county", "to_fixmedins_code": hospital, "amount": "1.00"},
        {"payer": "mars", "to_level": "city", "amount": "1.00"},
        {"payer": "central", "to_level": "city", "amount": 1},
    ):
        response = await _pay(books, paid_on="2024-03-10", ref=f"R-{uuid.uuid4().hex}", **bad)
        refused(response, 422, "VALIDATION_FAILED")
    unknown = await _pay(
        books,
        payer="city",
        to_fixmedins_code="TNOBODY",
        amount="1.00",
        paid_on="2024-03-10",
        ref=f"R-{uuid.uuid4().hex}",
    )
    refused(unknown, 422, "UNKNOWN_INSTITUTION")
    by_his = await books.client.post(
        "/v1/subsidy-payments",
        headers=OPS,
        json={"payer": "city", "to_fixmedins_code": hospital, "amount": "1.00", "paid_on": "2024-03-10", "ref": "R-x"},
    )
    assert by_his.status_code == 403
