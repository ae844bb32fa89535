"""Consumers against real PostgreSQL: idempotent, order-tolerant, and the COVID split booked to the fen."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from prepayment_support import reversal_payload, settled_payload, subsidy_payload

from shared.testing import OPS_KEY, fetchval

D = Decimal
OPS = {"X-Api-Key": OPS_KEY}


def _renamed(balances: dict[str, Decimal], old: str, new: str) -> dict[str, Decimal]:
    return {name.replace(f":{old}:", f":{new}:"): value for name, value in balances.items()}


async def test_the_same_event_twice_books_once(books, hospital):
    payload = settled_payload(f"S-{uuid.uuid4().hex}", hospital, hifp="300.00", hifmi="50.00", maf="20.00", tilt="5.00")
    event_id = str(uuid.uuid4())
    assert await books.deliver("settled", payload, event_id=event_id) is True
    first = (await books.trial(hospital), await books.position(hospital))
    assert await books.deliver("settled", payload, event_id=event_id) is False
    assert (await books.trial(hospital), await books.position(hospital)) == first
    assert first[1] == {
        "fixmedins_code": hospital,
        "prepaid": "0.00",
        "fund_payable": "375.00",
        "acct_payable": "0.00",
        "subsidy_receivable": "0.00",
        "net": "375.00",
    }
    assert first[0] == {
        "fund:hifp": D("300.00"),
        "fund:hifmi": D("50.00"),
        "fund:maf": D("25.00"),
        f"institution:{hospital}:fund_payable": D("-375.00"),
    }


async def test_the_same_settlement_published_again_under_a_new_event_id_books_once(books, hospital):
    payload = settled_payload(f"S-{uuid.uuid4().hex}", hospital, hifp="100.00")
    await books.deliver("settled", payload)
    await books.deliver("settled", payload)
    assert len(await books.entries(hospital)) == 1
    assert (await books.position(hospital))["fund_payable"] == "100.00"


@pytest.mark.parametrize("reversal_first", [False, True], ids=["in order", "reversal first"])
@pytest.mark.parametrize("with_original", [True, False], ids=["reversal carries original", "bare reversal"])
async def test_a_reversal_before_its_settlement_gives_the_same_books(books, reversal_first, with_original):
    in_order, out_of_order = "T" + uuid.uuid4().hex[:10], "T" + uuid.uuid4().hex[:10]
    results = {}
    for code, reverse_first in ((in_order, False), (out_of_order, reversal_first)):
        await books.institution(code)
        settled = settled_payload(f"S-{uuid.uuid4().hex}", code, hifp="812.34", hifmi="100.01", tilt="0.05")
        reversed_ = reversal_payload(settled, with_original=with_original)
        sequence = [("settlement-reversed", reversed_), ("settled", settled)]
        for topic, payload in sequence if reverse_first else sequence[::-1]:
            await books.deliver(topic, payload)
        entries = await books.entries(code)
        results[code] = (await books.trial(code), await books.position(code), sorted(e["kind"] for e in entries))
    assert results[out_of_order][0] == _renamed(results[in_order][0], in_order, out_of_order) == {}
    assert results[out_of_order][2] == results[in_order][2] == ["settlement", "settlement-reversal"]
    assert results[out_of_order][1]["net"] == results[in_order][1]["net"] == "0.00"


SUSPECTED_COUNTY = dict(
    case_status="suspected", amount="1000.01", advance_payer="county", shares={"city": "600.01", "county": "400.00"}
)


@pytest.mark.parametrize(
    "order",
    [
        ("due", "reversal"),
        ("reversal", "due"),
        ("reversal", "due", "settlement-reversed"),
        ("settlement-reversed", "due"),
        ("due", "settlement-reversed", "reversal"),
    ],
)
async def test_a_subsidy_reversal_in_any_order_nets_out_once(books, hospital, order):
    setl_id = f"S-{uuid.uuid4().hex}"
    settled = settled_payload(setl_id, hospital, hifp="400.00", fin_subsidy="1000.01", covid_status="suspected")
    await books.deliver("settled", settled)
    events_by_name = {
        "due": ("subsidy-due", subsidy_payload(setl_id, hospital, **SUSPECTED_COUNTY)),
        "reversal": ("subsidy-due", subsidy_payload(setl_id, hospital, reversal=True, **SUSPECTED_COUNTY)),
        "settlement-reversed": ("settlement-reversed", reversal_payload(settled)),
    }
    for name in order:
        await books.deliver(*events_by_name[name])
    kinds = sorted(e["kind"] for e in await books.entries(hospital))
    assert kinds.count("subsidy") == 1 and kinds.count("subsidy-reversal") == 1
    position = await books.position(hospital)
    assert position["subsidy_receivable"] == "0.00"
    county = (
        await books.client.get("/v1/subsidies", params={"payer": "county", "fixmedins_code": hospital}, headers=OPS)
    ).json()
    assert county["total"] == "0.00" and county["items"] == []
    balances = await books.trial(hospital)
    assert not any(name.startswith("finance:") for name in balances)


async def test_a_payload_against_the_document_is_dead_lettered_and_writes_nothing(books, hospital):
    payload = settled_payload(f"S-{uuid.uuid4().hex}", hospital, hifp="100.00")
    payload["fund_pay_sumamt"] = "99.00"
    event_id = str(uuid.uuid4())
    assert await books.deliver("settled", payload, event_id=event_id) is False
    assert await books.trial(hospital) == {}
    error = await fetchval(
        books.app, "SELECT error FROM dead_letter WHERE event_id = CAST(:event_id AS uuid)", event_id=event_id
    )
    assert "fund_pay_sumamt" in error


async def _subsidies(books, payer: str, *codes: str) -> tuple[Decimal, Decimal, Decimal, list[dict]]:
    total = advanced = recoverable = D("0.00")
    items = []
    for code in codes:
        response = await books.client.get("/v1/subsidies", params={"payer": payer, "fixmedins_code": code}, headers=OPS)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["payer"] == payer
        assert D(body["total"]) == sum((D(i["amount"]) for i in body["items"]), D("0.00"))
        total += D(body["total"])
        advanced += D(body["advanced_total"])
        recoverable += D(body["recoverable_total"])
        items += body["items"]
    return total, advanced, recoverable, items


async def test_covid_subsidies_of_the_four_cases_are_booked_per_payer_to_the_fen(books):
    """DOMAIN §6, shares worked out by hand (first share rounded half-up, the last the remainder).

    City hospital C, county hospital K; the hospital's affiliation finance advances:
    1. confirmed at C, 1,234.57: central 740.74 / provincial 493.83, advanced by city;
    2. confirmed at K, 2,000.03: central 1,200.02 / provincial 800.01, advanced by county;
    3. suspected city-level patient at K, 850.35: city 100 % = 850.35, advanced by county;
    4. suspected county-level patient at K, 1,000.01: city 600.01 / county 400.00, advanced by county.
    """
    city_h, county_h = "T" + uuid.uuid4().hex[:10], "T" + uuid.uuid4().hex[:10]
    await books.institution(city_h, affiliation="city", admdvs="621000")
    await books.institution(county_h, affiliation="county", admdvs="650121")
    cases = {
        "c1": (
            city_h,
            dict(
                case_status="confirmed",
                amount="1234.57",
                advance_payer="city",
                shares={"central": "740.74", "provincial": "493.83"},
            ),
        ),
        "c2": (
            county_h,
            dict(
                case_status="confirmed",
                amount="2000.03",
                advance_payer="county",
                shares={"central": "1200.02", "provincial": "800.01"},
            ),
        ),
        "c3": (
            county_h,
            dict(case_status="suspected", amount="850.35", advance_payer="county", shares={"city": "850.35"}),
        ),
        "c4": (county_h, SUSPECTED_COUNTY),
    }
    ids = {name: f"S-{name}-{uuid.uuid4().hex}" for name in cases}
    for name, (code, subsidy) in cases.items():
        settled = settled_payload(
            ids[name], code, hifp="100.00", fin_subsidy=subsidy["amount"], covid_status=subsidy["case_status"]
        )
        await books.deliver("settled", settled)
        await books.deliver("subsidy-due", subsidy_payload(ids[name], code, **subsidy))

    expected = {  # payer: (total of final shares, advanced, recoverable)
        "central": ("1940.76", "0.00", "0.00"),
        "provincial": ("1293.84", "0.00", "0.00"),
        "city": ("1450.36", "1234.57", "1234.57"),
        "county": ("400.00", "3850.39", "3450.39"),
    }
    for payer, (total, advanced, recoverable) in expected.items():
        got = await _subsidies(books, payer, city_h, county_h)
        assert got[:3] == (D(total), D(advanced), D(recoverable)), payer
    city_items = {i["setl_id"]: i for i in (await _subsidies(books, "city", city_h, county_h))[3]}
    assert city_items[ids["c1"]] == {
        "setl_id": ids["c1"],
        "fixmedins_code": city_h,
        "case_status": "confirmed",
        "amount": "0.00",
        "setl_date": "2024-03-01",
        "advance_payer": "city",
        "advanced": "1234.57",
        "recoverable": "1234.57",
    }
    assert city_items[ids["c4"]]["amount"] == "600.01" and city_items[ids["c4"]]["advanced"] == "0.00"

    ledger = {}
    for code in (city_h, county_h):
        for name, balance in (await books.trial(code)).items():
            ledger[name] = ledger.get(name, D("0.00")) + balance
    assert {k: v for k, v in ledger.items() if k.startswith("finance:") or k.endswith(":subsidy_receivable")} == {
        "finance:city:advanced": D("1234.57"),
        "finance:city:recoverable": D("-1234.57"),
        "finance:city:share_due": D("1450.36"),
        "finance:county:advanced": D("3850.39"),
        "finance:county:recoverable": D("-3450.39"),
        "finance:central:share_due": D("1940.76"),
        "finance:provincial:share_due": D("1293.84"),
        f"institution:{city_h}:subsidy_receivable": D("-1234.57"),
        f"institution:{county_h}:subsidy_receivable": D("-3850.39"),
    }
    assert (await books.position(county_h))["subsidy_receivable"] == "3850.39"

    # Case 4 reversed: both reversal events arrive; it nets out for every payer.
    settled4 = settled_payload(ids["c4"], county_h, hifp="100.00", fin_subsidy="1000.01", covid_status="suspected")
    await books.deliver("subsidy-due", subsidy_payload(ids["c4"], county_h, reversal=True, **SUSPECTED_COUNTY))
    await books.deliver("settlement-reversed", reversal_payload(settled4))
    assert (await _subsidies(books, "county", city_h, county_h))[:3] == (D("0.00"), D("2850.38"), D("2850.38"))
    city_total, _, _, city_list = await _subsidies(books, "city", city_h, county_h)
    assert city_total == D("850.35") and ids["c4"] not in {i["setl_id"] for i in city_list}
    assert (await books.position(county_h))["subsidy_receivable"] == "2850.38"


async def test_concurrent_deliveries_of_one_settlement_book_it_once(books, hospital):
    settled = settled_payload(
        f"S-{uuid.uuid4().hex}", hospital, hifp="64.00", fin_subsidy="10.00", covid_status="confirmed"
    )
    subsidy = subsidy_payload(
        settled["setl_id"],
        hospital,
        case_status="confirmed",
        amount="10.00",
        advance_payer="city",
        shares={"central": "6.00", "provincial": "4.00"},
    )
    deliveries = (
        [("settled", settled)] * 4
        + [("subsidy-due", subsidy)] * 4
        + [("settlement-reversed", reversal_payload(settled))] * 2
    )
    await asyncio.gather(*(books.deliver(topic, payload) for topic, payload in deliveries))
    kinds = sorted(e["kind"] for e in await books.entries(hospital))
    assert kinds == ["settlement", "settlement-reversal", "subsidy", "subsidy-reversal"]
    assert await books.trial(hospital) == {}
