"""`yibao seed-demo` produces a few alerts of each kind (issue 16): the demo's supervision stage (deploy/demo.py), run
through the public APIs of eligibility, settlement and reporting — in-process, over their own database and broker, the
settlement service asking the real eligibility — leaves open alerts of every kind; a second run adds none."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from datetime import datetime, timedelta

import httpx
import pytest

import services.eligibility.app as eligibility_module
import services.reporting.app as reporting_module
import services.settlement.app as settlement_module
from deploy import demo
from deploy.embedded import EmbeddedBroker, free_port
from shared.events.envelope import BUSINESS_TZ
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import ADMIN_KEY, fetchval, make_settings, running_app
from tests.integration.conftest import create_database, eventually

KINDS = ("high_cost", "price", "fraud", "indicator", "filing")


@pytest.fixture
async def stack(pg, workdir):
    database = await create_database(pg, "demo")
    broker = EmbeddedBroker(free_port(), log_dir=workdir)
    broker.start()
    try:
        async with AsyncExitStack() as exits:
            clients = {}
            for name, module in (
                ("eligibility", eligibility_module),
                ("settlement", settlement_module),
                ("reporting", reporting_module),
            ):
                app = create_app(module.spec, make_settings(name, database_url=database, bootstrap=broker.bootstrap))
                clients[name] = await exits.enter_async_context(running_app(app))
            settlement_app = clients["settlement"]._transport.app
            settlement_app.state.eligibility = InternalClient(
                "http://eligibility",
                timeout=10,
                transport=httpx.ASGITransport(app=clients["eligibility"]._transport.app),
            )
            api = demo.Api({}, ADMIN_KEY)
            for name, client in clients.items():
                api.clients[name] = await exits.enter_async_context(
                    httpx.AsyncClient(
                        transport=client._transport,
                        base_url="http://test",
                        headers={"X-Api-Key": ADMIN_KEY},
                        timeout=30,
                    )
                )
            yield api, clients
    finally:
        broker.stop()


async def _open(reporting) -> dict[str, list[dict]]:
    response = await reporting.get(
        "/v1/alerts", params={"status": "open", "limit": "1000"}, headers={"X-Api-Key": ADMIN_KEY}
    )
    assert response.status_code == 200, response.text
    found: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for alert in response.json()["items"]:
        found[alert["kind"]].append(alert)
    return found


async def test_the_demo_leaves_open_alerts_of_every_kind(stack):
    api, clients = stack
    now = datetime.now(BUSINESS_TZ)
    for institution in demo.INSTITUTIONS:
        await api.call("eligibility", "POST", "/v1/institutions", body=institution)
    city = demo.people(demo.PERSONS)
    local = [p for p in reversed(city) if p.local]  # whom the stage picks: as deploy/demo.py picks them
    chronic = next(p for p in local if p.chronic == "hypertension")
    monitored = [p for p in local if p.insutype == "390" and not p.chronic][:2]
    for person in {p.psn_no: p for p in (*local[:20], chronic, *monitored)}.values():
        await demo._register(api, person, random.Random(person.psn_no), now.date())

    async def institutions_known():
        known = await fetchval(clients["settlement"]._transport.app, "SELECT count(*) FROM institutions")
        return known >= len(demo.INSTITUTIONS)

    await eventually(institutions_known, timeout=60, what="institutions at the settlement service")
    said: list[str] = []
    await demo._supervision(api, city, now, said.append)
    assert said[0] == "demo: civil affairs import: 2 applied, 0 unchanged, 1 refused", said

    found = await _open(clients["reporting"])
    assert {kind for kind, alerts in found.items() if alerts} == set(KINDS), {k: len(v) for k, v in found.items()}
    rules = {alert["rule"] for alerts in found.values() for alert in alerts}
    assert {
        "high_cost.burden",
        "price.cap",
        "fraud.visit_frequency",
        "fraud.repeat_exam",
        "fraud.idle_stay",
        "fraud.stockpiling",
        "fraud.shared_credential",
        "filing.late",
    } <= rules, rules
    assert {a["psn_no"] for a in found["high_cost"]} == {p.psn_no for p in monitored}
    # the demo's day: 9 areas, 2 filed. The service's own check adds the days since whose deadline (08:30) passed
    demo_day = (now.date() - timedelta(days=2)).isoformat()
    assert len([a for a in found["filing"] if a["window"]["start"] == demo_day]) == 7
    assert said[-1].startswith("demo: open alerts high_cost 2, price 2, fraud ")

    again: list[str] = []
    await demo._supervision(api, city, now, again.append)  # a second run the same day
    assert again[0] == "demo: civil affairs import: 0 applied, 2 unchanged, 1 refused", again
    assert {k: len(v) for k, v in (await _open(clients["reporting"])).items()} == {k: len(v) for k, v in found.items()}
