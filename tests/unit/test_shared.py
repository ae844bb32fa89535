"""Shared pieces: money on the wire, masking in logs, the event envelope."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.events.envelope import BUSINESS_TZ, Envelope, _default, dumpb, dumps, new_event
from shared.logs import JsonFormatter, mask_certno, mask_name, scrub
from shared.money import Money, to_fen


class Body(BaseModel):
    amount: Money


@pytest.mark.parametrize("raw, expected", [("12.5", "12.50"), ("0", "0.00"), (7, "7.00"), ("1234.56", "1234.56")])
def test_money_in_and_out(raw, expected):
    body = Body(amount=raw)
    assert isinstance(body.amount, Decimal)
    assert body.model_dump(mode="json") == {"amount": expected}


@pytest.mark.parametrize("raw", [1.5, "1.005", "abc", "NaN", "Infinity", True, None, "1e20", "1e30", 10**26, "-1e400"])
def test_money_rejects_floats_fractions_of_fen_and_junk(raw):
    with pytest.raises(ValidationError):
        Body(amount=raw)


@pytest.mark.parametrize("value, fen", [("0.005", "0.01"), ("0.004", "0.00"), ("2.675", "2.68"), ("-0.005", "-0.01")])
def test_to_fen_rounds_half_up(value, fen):
    assert to_fen(Decimal(value)) == Decimal(fen)


def test_masking_hides_birth_date_names_and_keys():
    assert mask_certno("11010519491231002X") == "110105********002X"
    assert mask_name("张三丰") == "张**"
    text = scrub("person 11010519491231002X paid; x-api-key: yb-admin-abcdefghijklmnop")
    assert "19491231" not in text and "abcdefghijklmnop" not in text


def test_json_log_lines_are_masked():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "certno %s", ("11010519491231002X",), None)
    line = json.loads(JsonFormatter("test").format(record))
    assert line["msg"] == "certno 110105********002X" and line["service"] == "test"


def test_envelope_round_trip_keeps_money_as_strings():
    event = new_event(type="settled", key="P1", payload={"hifp_pay": Decimal("106"), "n": 1}, producer="settlement")
    again = Envelope.from_json(event.to_json())
    assert again == event
    assert again.payload == {"hifp_pay": "106.00", "n": 1}
    assert set(json.loads(event.to_json())) == {
        "event_id",
        "type",
        "version",
        "occurred_at",
        "producer",
        "key",
        "payload",
    }


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.datetimes(timezones=st.sampled_from([None, BUSINESS_TZ])),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(0, 99), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_dumps_writes_what_the_standard_library_wrote(value):
    """orjson behind dumps: byte for byte what json.dumps(default=_default) wrote, which is what is stored."""
    expected = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    assert dumps(value) == expected
    assert dumpb(value) == expected.encode()


def test_consumer_groups_name_every_service_that_handles_a_topic() -> None:
    """The relay learns what was applied from these groups' offsets: a handler missing here could lose events."""
    from types import SimpleNamespace

    from services.prepayment.app import spec as prepayment
    from services.reporting.app import spec as reporting
    from services.settlement.app import spec as settlement
    from services.settlement.store.institutions import InstitutionCache
    from shared.events.topics import ALL_TOPICS, CONSUMER_GROUPS

    app = SimpleNamespace(state=SimpleNamespace(institutions=InstitutionCache(), feed=None))
    handled: dict[str, set[str]] = {topic: set() for topic in ALL_TOPICS}
    for spec in (settlement, prepayment, reporting):
        assert spec.handlers is not None
        for topic in spec.handlers(app):  # type: ignore[arg-type]
            handled[topic].add(spec.name)
    assert {topic: set(groups) for topic, groups in CONSUMER_GROUPS.items()} == handled
