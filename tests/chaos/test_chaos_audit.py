"""The chaos audit's judgement on its own (pure): books that agree are clean, and every way of losing or doubling
a settlement, a reversal or a subsidy is named for its setl_id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from chaos_audit import Books, judge
from chaos_load import Seen

DAY = date(2026, 11, 30)


def _world(specs: list[tuple[str, str, str, bool]]) -> tuple[Books, Seen]:
    """(setl_id, fund, subsidy, reversed) → books in full agreement and the clients who saw it all."""
    seen = Seen()
    books = Books(truth_rows=[], pp_states={}, pp_subsidies={}, pp_entries={}, rp_moves={}, rp_subsidies={})
    for setl_id, fund, subsidy, reversed_ in specs:
        f, s = Decimal(fund), Decimal(subsidy)
        money = {"medfee_sumamt": f + s + 10, "fund_pay_sumamt": f, "fin_subsidy_pay": s, "psn_pay": Decimal(10)}
        books.truth_rows.append(
            {
                "setl_id": setl_id,
                "mdtrt_id": f"M-{setl_id}",
                "fixmedins_code": "H1",
                "status": "reversed" if reversed_ else "settled",
                "setl_date": DAY,
                "rev_date": DAY if reversed_ else None,
                **money,
            }
        )
        seen.settled[setl_id] = {
            "mdtrt_id": f"M-{setl_id}",
            "fixmedins_code": "H1",
            "covid_status": "confirmed" if s else None,
            **{k: str(v) for k, v in money.items()},
        }
        if reversed_:
            seen.reversed[setl_id] = {"setl_id": setl_id}
        books.pp_states[setl_id] = {"known": True, "reversed_on": DAY if reversed_ else None, "fund_pay_sumamt": f}
        books.pp_entries[(setl_id, "settlement")] = {"n": 1, "payable_cr": f}
        books.rp_moves[(setl_id, "settle")] = {"n": 1, **money}
        if reversed_:
            books.pp_entries[(setl_id, "settlement-reversal")] = {"n": 1, "payable_dr": f}
            books.rp_moves[(setl_id, "reverse")] = {"n": 1, **{k: -v for k, v in money.items()}}
        if s:
            books.pp_subsidies[setl_id] = {"known": True, "reversed_on": DAY if reversed_ else None, "amount": s}
            books.pp_entries[(setl_id, "subsidy")] = {"n": 1, "subsidy_cr": s}
            books.rp_subsidies[(setl_id, False)] = {"n": 1, "amount": s}
            if reversed_:
                books.pp_entries[(setl_id, "subsidy-reversal")] = {"n": 1, "subsidy_dr": s}
                books.rp_subsidies[(setl_id, True)] = {"n": 1, "amount": s}
    return books, seen


SPECS = [
    ("S1", "80.00", "0.00", False),
    ("S2", "50.00", "0.00", True),
    ("C1", "300.00", "120.50", False),  # COVID, with a finance subsidy
    ("C2", "200.00", "60.00", True),  # COVID, reversed
]


def test_books_that_agree_are_clean():
    books, seen = _world(SPECS)
    audit = judge(books, seen)
    assert audit.clean, audit.summary()
    assert "AUDIT: CLEAN" in audit.summary()


def _drop(mapping: dict, key) -> None:
    del mapping[key]


def _double(mapping: dict, key) -> None:
    mapping[key] = {**mapping[key], "n": 2}


def _set(mapping: dict, key, **values) -> None:
    mapping[key] = {**mapping[key], **values}


R, P, S = "reporting", "prepayment", "settlement"


@pytest.mark.parametrize(
    "change, problem, setl_id",
    [
        (lambda b: _drop(b.rp_moves, ("S1", "settle")), (R, "settled", "missing", "settlement_moves settle"), "S1"),
        (
            lambda b: _drop(b.rp_moves, ("S2", "reverse")),
            (R, "settlement-reversed", "missing", "settlement_moves reverse"),
            "S2",
        ),
        (lambda b: _double(b.rp_moves, ("S1", "settle")), (R, "settled", "doubled", "settlement_moves settle"), "S1"),
        (
            lambda b: _set(b.rp_moves, ("C1", "settle"), fund_pay_sumamt=Decimal("1.00")),
            (R, "settled", "amount", "settlement_moves settle"),
            "C1",
        ),
        (
            lambda b: _drop(b.rp_subsidies, ("C1", False)),
            (R, "subsidy-due", "missing", "subsidies reversal=false"),
            "C1",
        ),
        (
            lambda b: _drop(b.rp_subsidies, ("C2", True)),
            (R, "subsidy-due reversal", "missing", "subsidies reversal=true"),
            "C2",
        ),
        (
            lambda b: _double(b.rp_subsidies, ("C1", False)),
            (R, "subsidy-due", "doubled", "subsidies reversal=false"),
            "C1",
        ),
        (
            lambda b: b.rp_moves.__setitem__(("X9", "settle"), {"n": 1}),
            (R, "settled", "unexpected", "read models name a settlement settlement does not have"),
            "X9",
        ),
        (lambda b: _drop(b.pp_states, "S1"), (P, "settled", "missing", "per-settlement state"), "S1"),
        (lambda b: _drop(b.pp_entries, ("S1", "settlement")), (P, "settled", "missing", "journal settlement"), "S1"),
        (lambda b: _double(b.pp_entries, ("S1", "settlement")), (P, "settled", "doubled", "journal settlement"), "S1"),
        (
            lambda b: _set(b.pp_entries, ("S1", "settlement"), payable_cr=Decimal("81.00")),
            (P, "settled", "amount", "journal settlement"),
            "S1",
        ),
        (
            lambda b: _drop(b.pp_entries, ("S2", "settlement-reversal")),
            (P, "settlement-reversed", "missing", "journal settlement-reversal"),
            "S2",
        ),
        (
            lambda b: _set(b.pp_states, "S2", reversed_on=None),
            (P, "settlement-reversed", "missing", "per-settlement state"),
            "S2",
        ),
        (lambda b: _drop(b.pp_subsidies, "C1"), (P, "subsidy-due", "missing", "subsidy state"), "C1"),
        (lambda b: _drop(b.pp_entries, ("C1", "subsidy")), (P, "subsidy-due", "missing", "journal subsidy"), "C1"),
        (
            lambda b: _drop(b.pp_entries, ("C2", "subsidy-reversal")),
            (P, "subsidy-due reversal", "missing", "journal subsidy-reversal"),
            "C2",
        ),
        (
            lambda b: _double(b.pp_entries, ("C2", "subsidy-reversal")),
            (P, "subsidy-due reversal", "doubled", "journal subsidy-reversal"),
            "C2",
        ),
    ],
)
def test_each_loss_or_double_is_named_with_its_setl_id(change, problem, setl_id):
    books, seen = _world(SPECS)
    change(books)
    audit = judge(books, seen)
    assert not audit.clean
    assert {key: ids for key, ids in audit.problems.items() if ids} == {problem: [setl_id]}, audit.summary()
    service, event, kind, _ = problem
    assert audit.ids(service, kind, event) == {setl_id}
    assert "AUDIT: FOUND PROBLEMS" in audit.summary()


def test_a_201_without_a_row_in_settlement_is_missing_there_and_a_stranger_downstream():
    books, seen = _world(SPECS)
    books.truth_rows.pop(0)  # S1
    audit = judge(books, seen)
    assert audit.problems[(S, "settled", "missing", "a 201 the clients saw has no row")] == ["S1"]
    assert audit.ids(P, "unexpected") == audit.ids(R, "unexpected") == {"S1"}


def test_a_settlement_nobody_saw_is_allowed_only_for_an_answer_that_was_lost():
    books, seen = _world(SPECS)
    del seen.settled["S1"]  # its 201 never reached the client
    audit = judge(books, seen)
    assert audit.problems[("settlement", "settled", "unexpected", "a row the clients never asked for")] == ["S1"]
    seen.lost_settles["M-S1"] = "chaos-c0-1-settle"  # … because the client gave up on that settle call
    assert judge(books, seen).clean


def test_amounts_that_differ_from_the_201_are_named():
    books, seen = _world(SPECS)
    seen.settled["C1"]["fin_subsidy_pay"] = "120.51"
    audit = judge(books, seen)
    assert audit.problems[("settlement", "settled", "amount", "the row differs from the 201")] == ["C1"]
