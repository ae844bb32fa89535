"""Supervision rules about a person (DOMAIN §13), each at its threshold and just below it, under the reference policy
(deploy/policy/supervision/2022-01-01.toml): 防返贫 high cost, visit frequency, repeated examinations, idle inpatient
days (挂床), stockpiling, one credential at several institutions on one day. The same settlement replayed raises
nothing new; a reversal withdraws an alert that no longer holds (and a new settlement raises it again)."""

from __future__ import annotations

from datetime import timedelta

from alerts_support import REFERENCE, days, line, outbox, reverse, rule_alerts, settle
from reporting_support import envelope, feed, fresh_day, uid

from shared.events.topics import ALERT_RAISED, ALERT_RESOLVED, SETTLED


async def test_high_cost_at_the_threshold_and_just_below(reporting):
    day = fresh_day(3)
    psn = uid("P")
    aid = {"aid_categories": ["dibao"], "insuplc_admdvs": "621022"}
    first = await settle(reporting, day=day, psn_no=psn, psn_pay="6000.00", **aid)
    await settle(reporting, day=day + timedelta(days=1), psn_no=psn, psn_pay="3999.99", **aid)
    assert await rule_alerts(reporting, "high_cost.burden", psn) == []  # 9,999.99: below 10,000.00

    last = await settle(reporting, day=day + timedelta(days=2), psn_no=psn, psn_pay="0.01", **aid)
    [alert] = await rule_alerts(reporting, "high_cost.burden", psn)
    assert alert["kind"] == "high_cost" and alert["status"] == "open"
    assert alert["rule_version"] == REFERENCE and alert["psn_no"] == psn and alert["admdvs"] == "621022"
    facts = alert["facts"]
    assert (facts["burden"], facts["threshold"], facts["year"]) == ("10000.00", "10000.00", day.year)
    assert facts["aid_categories"] == ["dibao"]
    behind = [s["setl_id"] for s in facts["settlements"]]
    assert len(behind) == 3 and behind[0] == first["setl_id"] and behind[-1] == last["setl_id"]
    assert set(alert["setl_ids"]) == {s["setl_id"] for s in facts["settlements"]}
    assert [e["topic"] for e in await outbox(reporting, alert["alert_id"])] == [ALERT_RAISED]

    # the same settlement again: the exact event (the inbox drops it) and a re-announcement (a new event id)
    again = envelope(SETTLED, last)
    consumer = reporting._transport.app.state.consumer
    assert await consumer.apply(SETTLED, again.to_json())
    assert not await consumer.apply(SETTLED, again.to_json())
    await feed(reporting, SETTLED, {**last, "reannounced": True})
    await settle(reporting, day=day + timedelta(days=2), psn_no=psn, psn_pay="5.00", **aid)  # above: still one
    assert [a["alert_id"] for a in await rule_alerts(reporting, "high_cost.burden", psn)] == [alert["alert_id"]]
    assert len(await outbox(reporting, alert["alert_id"])) == 1


async def test_a_reversal_withdraws_the_alert_and_a_new_settlement_raises_it_again(reporting):
    day = fresh_day(3)
    psn = uid("P")
    aid = {"aid_categories": ["monitored"]}  # 防返贫监测对象
    await settle(reporting, day=day, psn_no=psn, psn_pay="9000.00", **aid)
    crossing = await settle(reporting, day=day + timedelta(days=1), psn_no=psn, psn_pay="1000.00", **aid)
    [alert] = await rule_alerts(reporting, "high_cost.burden", psn)

    await reverse(reporting, crossing, day=day + timedelta(days=2))
    [withdrawn] = await rule_alerts(reporting, "high_cost.burden", psn)
    assert withdrawn["status"] == "resolved" and withdrawn["resolution"] == "withdrawn"
    assert withdrawn["resolved_by"] == "system" and crossing["setl_id"] in withdrawn["note"]
    events = await outbox(reporting, alert["alert_id"])
    assert [e["topic"] for e in events] == [ALERT_RAISED, ALERT_RESOLVED]
    assert events[1]["resolution"] == "withdrawn"

    await settle(reporting, day=day + timedelta(days=2), psn_no=psn, psn_pay="1200.00", **aid)
    [again] = await rule_alerts(reporting, "high_cost.burden", psn)
    assert again["alert_id"] == alert["alert_id"] and again["status"] == "open" and again["raised_count"] == 2
    assert again["facts"]["burden"] == "10200.00" and again["resolution"] is None
    assert [e["topic"] for e in await outbox(reporting, alert["alert_id"])] == [
        ALERT_RAISED,
        ALERT_RESOLVED,
        ALERT_RAISED,
    ]


async def test_high_cost_needs_an_identity_and_each_threshold_raises_once(reporting):
    day = fresh_day()
    plain, held = uid("P"), uid("P")
    await settle(reporting, day=day, psn_no=plain, psn_pay="35000.00")  # nobody civil affairs watches
    assert await rule_alerts(reporting, "high_cost.burden", plain) == []
    await settle(reporting, day=day, psn_no=held, psn_pay="29999.99", aid_categories=["dibian", "tekun"])
    assert [a["facts"]["threshold"] for a in await rule_alerts(reporting, "high_cost.burden", held)] == ["10000.00"]
    await settle(reporting, day=day, psn_no=held, psn_pay="0.01")  # the identity was on an earlier settlement
    raised = await rule_alerts(reporting, "high_cost.burden", held)
    assert sorted(a["facts"]["threshold"] for a in raised) == ["10000.00", "30000.00"]
    assert raised[-1]["facts"]["aid_categories"] == ["dibian", "tekun"]


async def test_visit_frequency_more_than_eight_in_thirty_days(reporting):
    first = fresh_day(31)
    psn = uid("P")
    await settle(reporting, day=first, psn_no=psn)  # 30 days before the last visits: outside their window
    for day in days(first, 1, 5, 9, 13, 17, 21, 25):
        await settle(reporting, day=day, psn_no=psn)
    await settle(reporting, day=first + timedelta(days=30), psn_no=psn)
    assert await rule_alerts(reporting, "fraud.visit_frequency", psn) == []  # 8 in any 30 days: not more than 8
    await settle(reporting, day=first + timedelta(days=2), psn_no=psn, med_type="21")  # a stay is not a visit
    assert await rule_alerts(reporting, "fraud.visit_frequency", psn) == []
    ninth = await settle(reporting, day=first + timedelta(days=30), psn_no=psn, fixmedins_code="H7")
    [alert] = await rule_alerts(reporting, "fraud.visit_frequency", psn)
    assert alert["kind"] == "fraud" and alert["fixmedins_code"] == "H7"
    assert alert["window"] == {
        "start": (first + timedelta(days=1)).isoformat(),
        "end": (first + timedelta(days=30)).isoformat(),
    }
    assert alert["facts"]["visits"] == 9 and alert["facts"]["limit"] == 8
    assert len(alert["facts"]["settlements"]) == 9 and ninth["setl_id"] in alert["setl_ids"]
    tenth = await settle(reporting, day=first + timedelta(days=30), psn_no=psn)  # the same window stands
    assert len(await rule_alerts(reporting, "fraud.visit_frequency", psn)) == 1

    await reverse(reporting, ninth)  # nine visits are left in the window: it still holds
    assert (await rule_alerts(reporting, "fraud.visit_frequency", psn))[0]["status"] == "open"
    await reverse(reporting, tenth)  # eight
    [withdrawn] = await rule_alerts(reporting, "fraud.visit_frequency", psn)
    assert withdrawn["resolution"] == "withdrawn"


async def test_the_same_examination_twice_within_seven_days(reporting):
    first = fresh_day(14)
    psn, other = uid("P"), uid("P")
    ct = {"category": "examination", "name": "胸部CT平扫"}
    await settle(reporting, day=first, psn_no=psn, lines=[line("JC-CT", "200.00", day=first, **ct)])
    seventh = first + timedelta(days=7)
    await settle(reporting, day=seventh, psn_no=psn, lines=[line("JC-CT", "200.00", day=seventh, **ct)])
    assert await rule_alerts(reporting, "fraud.repeat_exam", psn) == []  # 7 days apart: not within 7 days
    await settle(
        reporting,
        day=first + timedelta(days=3),
        psn_no=other,
        lines=[line("JC-CT", "200.00", day=first + timedelta(days=3), **ct)],
    )  # another person
    sixth = seventh + timedelta(days=6)
    again = await settle(
        reporting,
        day=sixth,
        psn_no=psn,
        fixmedins_code="H5",
        lines=[line("JC-CT", "210.00", day=sixth, **ct), line("XM-GHF", "10.00", day=sixth)],
    )
    [alert] = await rule_alerts(reporting, "fraud.repeat_exam", psn)
    assert alert["subject"] == f"{psn}|JC-CT" and alert["facts"]["days_apart"] == 6
    assert alert["window"] == {"start": seventh.isoformat(), "end": sixth.isoformat()}
    assert [x["fee_day"] for x in alert["facts"]["lines"]] == [seventh.isoformat(), sixth.isoformat()]
    assert again["setl_id"] in alert["setl_ids"] and alert["fixmedins_code"] == "H5"
    assert await rule_alerts(reporting, "fraud.repeat_exam", other) == []


async def test_an_inpatient_stay_with_three_days_without_a_fee_line(reporting):
    admitted = fresh_day(12)
    left = admitted + timedelta(days=4)
    psn, other = uid("P"), uid("P")

    def stay(psn_no: str, *charged: int) -> dict:
        return {
            "psn_no": psn_no,
            "day": left,
            "med_type": "21",
            "begndate": admitted,
            "enddate": left,
            "lines": [line("ZY-CW", "60.00", day=admitted + timedelta(days=n), category="treatment") for n in charged],
        }

    await settle(reporting, **stay(other, 0, 1, 4))  # days 2, 3 idle: two
    assert await rule_alerts(reporting, "fraud.idle_stay", other) == []
    untimed = stay(other, 0)
    for x in untimed["lines"]:
        x["fee_ocur_time"] = None
    await settle(reporting, **untimed)  # lines without their times: not judged
    done = await settle(reporting, **stay(psn, 0, 4))  # days 1, 2, 3 idle: three
    [alert] = await rule_alerts(reporting, "fraud.idle_stay", done["mdtrt_id"])
    assert alert["psn_no"] == psn and alert["setl_ids"] == [done["setl_id"]]
    facts = alert["facts"]
    assert (facts["idle_days"], facts["idle_from"], facts["idle_to"]) == (
        3,
        (admitted + timedelta(days=1)).isoformat(),
        (admitted + timedelta(days=3)).isoformat(),
    )
    assert len(facts["lines"]) == 2
    await reverse(reporting, done)
    [withdrawn] = await rule_alerts(reporting, "fraud.idle_stay", done["mdtrt_id"])
    assert withdrawn["resolution"] == "withdrawn"


async def test_stockpiling_supply_days_above_ninety_plus_fourteen(reporting):
    first = fresh_day(90)
    psn, other = uid("P"), uid("P")
    drug = {"category": "drug", "name": "硝苯地平控释片"}
    for person, extra in ((psn, 45), (other, 44)):
        await settle(
            reporting,
            day=first,
            psn_no=person,
            lines=[line("YP-NFDP", "30.00", "6", day=first, days_supply=60, **drug)],
        )
        later = first + timedelta(days=89)
        await settle(
            reporting,
            day=later,
            psn_no=person,
            lines=[line("YP-NFDP", "30.00", "3", day=later, days_supply=extra, **drug)],
        )
    assert await rule_alerts(reporting, "fraud.stockpiling", other) == []  # 104 days: not above 90 + 14
    [alert] = await rule_alerts(reporting, "fraud.stockpiling", psn)  # 105 days
    assert alert["facts"]["supply_days"] == 105 and alert["facts"]["limit"] == 104
    assert alert["window"]["start"] == first.isoformat() and len(alert["setl_ids"]) == 2


async def test_one_credential_at_three_institutions_on_one_day(reporting):
    day = fresh_day()
    psn = uid("P")
    await settle(reporting, day=day, psn_no=psn, fixmedins_code="H1")
    await settle(reporting, day=day, psn_no=psn, fixmedins_code="H2")
    await settle(reporting, day=day, psn_no=psn, fixmedins_code="H2")
    assert await rule_alerts(reporting, "fraud.shared_credential", psn) == []  # two institutions
    await settle(reporting, day=day - timedelta(days=1), psn_no=psn, fixmedins_code="H3")  # another day
    assert await rule_alerts(reporting, "fraud.shared_credential", psn) == []
    third = await settle(reporting, day=day, psn_no=psn, fixmedins_code="H3")
    [alert] = await rule_alerts(reporting, "fraud.shared_credential", psn)
    assert alert["facts"]["institutions"] == 3 and alert["facts"]["fixmedins_codes"] == ["H1", "H2", "H3"]
    assert third["setl_id"] in alert["setl_ids"] and len(alert["setl_ids"]) == 4
