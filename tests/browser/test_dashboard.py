"""The ops dashboard in headless Chromium: log in with the ops key, see a settlement made during the test appear in
the live feed (SSE), download 附件2 as xlsx and check its cells with openpyxl.

The settlement is made for real, through the stack: eligibility, settlement (relay on) and reporting (broker
consumer on) run on real ports; the institution and the person are registered through eligibility's API, the visit,
its fee lines and the settlement through settlement's API with the institution's HIS key. The settled event goes
settlement outbox → relay → broker → reporting's consumer → live feed → browser.

Own database and own broker (as in tests/integration/test_reporting_reconciliation.py): reporting's read models
then hold exactly this test's settlement, so today's 附件2 totals are this settlement's amounts. Reporting's consumer
runs under a consumer group of its own (the Settings have no knob for the group id: CONSUMERS_ENABLED=False, then
the same Consumer the composition root would build, with a unique group id).

Needs Debian's `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver); skipped where they
are missing, except under CI=true, where their absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from openpyxl import load_workbook
from webdriver import Browser, available

import services.eligibility.app as eligibility_module
import services.reporting.app as reporting_module
import services.settlement.app as settlement_module
from deploy.embedded import EmbeddedBroker, free_port
from shared.events.consumer import Consumer
from shared.events.envelope import BUSINESS_TZ
from shared.service import create_app
from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY, fetchval, make_settings, running_app
from tests.integration.conftest import create_database, eventually

if not available():
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)

ADMIN = {"X-Api-Key": ADMIN_KEY}
CODE = "H1"  # the test suite's HIS key for H1 (shared.testing.HIS_KEYS) acts for institution H1
HIS = {"X-Api-Key": HIS_KEYS[CODE]}
INSTITUTION = {
    "fixmedins_code": CODE,
    "fixmedins_name": "浏览器测试医院",
    "kind": "hospital",
    "level": 3,
    "affiliation": "city",
    "admdvs": "621000",
}
FEES = [  # a COVID outpatient visit: 1 × 1,890.00 + 2 × 123.45 = 2,136.90 (0.2137 万元: rounding is exercised)
    {"feedetl_sn": "1", "med_list_codg": "COVID-NMTW", "med_list_name": "奈玛特韦", "pric": "1890.00", "cnt": "1"},
    {
        "feedetl_sn": "2",
        "med_list_codg": "TA015",
        "med_list_name": "测试项目",
        "item_class": "A",
        "pric": "123.45",
        "cnt": "2",
    },
]
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DAILY_HEADER = [
    "项 目",
    None,
    None,
    "当日结算人数",
    "医疗总费用",
    "基本医保支付",
    "大病保险支付",
    "医疗救助支付",
    "应由个人负担的费用",
]


def synthetic_certno(region: str = "621000") -> str:
    """A made-up resident ID number with a valid GB 11643 check digit (random birth date and serial)."""
    born = date(1950, 1, 1) + timedelta(days=random.randrange(365 * 50))
    first17 = f"{region}{born:%Y%m%d}{random.randrange(1, 1000):03d}"
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def wan(yuan: str | Decimal) -> float:
    """Yuan → 万元 with four decimals (half-up), as 附件2 is filled; a float, as openpyxl reads the cell."""
    return float((Decimal(yuan) / 10000).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def money(yuan: str | Decimal) -> str:
    """An amount as the dashboard shows it (zh-CN grouping, two decimals)."""
    return f"{Decimal(yuan):,.2f}"


async def ok(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in (codes or (200, 201)), (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
    )
    return response.json()


@asynccontextmanager
async def serving(app: FastAPI):
    """The app's lifespan, then a uvicorn server for it on a free port of 127.0.0.1, in this event loop."""
    async with running_app(app, ready=False):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    raise RuntimeError(f"uvicorn did not start: {task.exception()!r}")
                await asyncio.sleep(0.05)
            yield url
        finally:
            server.should_exit = True
            try:
                await asyncio.wait_for(task, 15)
            finally:
                sock.close()


async def wait_ready(client: httpx.AsyncClient, what: str, timeout: float = 60) -> None:
    """/readyz says ready: database reachable, relay and consumer connected to the broker."""

    async def ready():
        return (await client.get("/readyz")).status_code == 200

    await eventually(ready, timeout=timeout, what=f"{what} ready")


@dataclass
class Stack:
    eligibility: httpx.AsyncClient
    settlement: httpx.AsyncClient
    reporting_url: str
    settlement_app: FastAPI


@pytest.fixture
async def stack(pg, workdir):
    """Eligibility, settlement and reporting on real ports, over their own database and their own broker."""
    database = await create_database(pg, "browser")
    broker = EmbeddedBroker(free_port(), log_dir=workdir)
    broker.start()
    try:
        async with AsyncExitStack() as stack:
            eligibility_app = create_app(
                eligibility_module.spec, make_settings("eligibility", database_url=database, bootstrap=broker.bootstrap)
            )
            eligibility_url = await stack.enter_async_context(serving(eligibility_app))

            settlement_app = create_app(
                settlement_module.spec,
                make_settings(
                    "settlement", database_url=database, bootstrap=broker.bootstrap, ELIGIBILITY_URL=eligibility_url
                ),
            )
            settlement_url = await stack.enter_async_context(serving(settlement_app))

            reporting_app = create_app(
                reporting_module.spec,
                make_settings(
                    "reporting",
                    database_url=database,
                    bootstrap=broker.bootstrap,
                    CONSUMERS_ENABLED=False,
                    SETTLEMENT_URL=settlement_url,
                ),
            )
            reporting_url = await stack.enter_async_context(serving(reporting_app))
            consumer = Consumer(
                db=reporting_app.state.db,
                bootstrap=broker.bootstrap,
                group_id=f"reporting-browser-{uuid.uuid4().hex[:8]}",
                handlers=reporting_module.spec.handlers(reporting_app),
                partitions=reporting_app.state.settings.kafka_partitions,
            )
            reporting_app.state.consumer = consumer  # /readyz now waits for it; the lifespan stops it
            reporting_app.state.tasks.start(consumer.run(), name="reporting-browser-consumer")

            clients = {}
            for name, url in (
                ("eligibility", eligibility_url),
                ("settlement", settlement_url),
                ("reporting", reporting_url),
            ):
                clients[name] = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
                await wait_ready(clients[name], name)
            yield Stack(
                eligibility=clients["eligibility"],
                settlement=clients["settlement"],
                reporting_url=reporting_url,
                settlement_app=settlement_app,
            )
    finally:
        broker.stop()


async def register(stack: Stack) -> tuple[str, str]:
    """Institution H1 and a resident-scheme person of the city, through eligibility's API; the institution is then
    awaited at settlement (institution-changed over the broker)."""
    await ok(await stack.eligibility.post("/v1/institutions", headers=ADMIN, json=INSTITUTION), 201)
    certno = synthetic_certno()
    person = await ok(
        await stack.eligibility.post(
            "/v1/persons",
            headers=ADMIN,
            json={"certno": certno, "psn_name": "测试", "insutype": "390", "insuplc_admdvs": "621000"},
        ),
        201,
    )

    async def known_at_settlement():
        return await fetchval(
            stack.settlement_app, "SELECT fixmedins_code FROM institutions WHERE fixmedins_code = :code", code=CODE
        )

    await eventually(known_at_settlement, timeout=90, what=f"institution {CODE} at the settlement service")
    return person["psn_no"], certno


async def settled_visit(
    stack: Stack, psn_no: str, certno: str, *, diagnoses: list[str], lines: list[dict], timed: bool = False
) -> dict:
    """An outpatient visit at H1 begun five minutes ago, its fee lines (`timed`: each with the visit's time as
    fee_ocur_time) and its settlement, with H1's HIS key."""
    begntime = (datetime.now(BUSINESS_TZ) - timedelta(minutes=5)).replace(microsecond=0)
    visit = {
        "psn_no": psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": certno,
        "fixmedins_code": CODE,
        "med_type": "11",
        "begntime": begntime.isoformat(),
        "diagnoses": diagnoses,
    }
    mdtrt_id = (await ok(await stack.settlement.post("/v1/visits", headers=HIS, json=visit), 201))["mdtrt_id"]
    items = [dict(line, fee_ocur_time=begntime.isoformat()) for line in lines] if timed else lines
    await ok(await stack.settlement.post(f"/v1/visits/{mdtrt_id}/fees", headers=HIS, json={"items": items}), 201)
    return await ok(await stack.settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=HIS, json={}), 201)


async def settle(stack: Stack, psn_no: str, certno: str) -> dict:
    """A COVID (confirmed) outpatient visit, its fee lines and its settlement."""
    answer = await settled_visit(stack, psn_no, certno, diagnoses=["U07.1"], lines=FEES)
    assert answer["covid_status"] == "confirmed" and answer["fixmedins_code"] == CODE, answer
    assert Decimal(answer["medfee_sumamt"]) == Decimal("2136.90"), answer
    return answer


async def log_in(browser: Browser, url: str, key: str) -> None:
    """The dashboard at `url`, logged in with `key`, its event stream connected (with a ticket)."""
    await browser.get(url + "/")
    await browser.type(await browser.wait_for("#key"), key)
    await browser.click(await browser.wait_for("#login-button"))
    await browser.wait_for("#board:not([hidden])")
    await browser.wait_for("#live.on", timeout=30)


async def wait_text(browser: Browser, css: str, want: str, timeout: float = 30) -> str:
    async def matches():
        element = await browser.find(css)
        return element is not None and (await browser.text(element)) == want

    try:
        await eventually(matches, timeout=timeout, what=f"{css} showing {want!r}")
    except AssertionError:
        element = await browser.find(css)
        shown = await browser.text(element) if element else None
        raise AssertionError(f"{css} shows {shown!r}, not {want!r}") from None
    return want


async def test_live_feed_and_xlsx_download(stack: Stack, tmp_path):
    psn_no, certno = await register(stack)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with Browser(downloads) as browser:
        await log_in(browser, stack.reporting_url, OPS_KEY)

        answer = await settle(stack, psn_no, certno)
        setl_id, day = answer["setl_id"], date.fromisoformat(answer["setl_date"])
        # the day picker is left alone until then: nothing but the event stream can bring the settlement in
        item = await browser.wait_for(f'#feed li[data-setl-id="{setl_id}"][data-type="settled"]', timeout=90)
        text_ = await browser.text(item)
        assert "结算" in text_ and setl_id in text_ and CODE in text_, text_
        assert money(answer["medfee_sumamt"]) in text_ and money(answer["fund_pay_sumamt"]) in text_, text_
        assert "新冠确诊" in text_, text_
        feed = await browser.text(await browser.find("#feed"))
        assert psn_no not in feed and certno not in feed  # the feed shows no personal data

        if await browser.script("return document.getElementById('day').value;") != day.isoformat():
            # the settlement fell on the other side of midnight from the page's "today"
            await browser.script(
                "const d = document.getElementById('day'); d.value = arguments[0];"
                "d.dispatchEvent(new Event('change'));",
                day.isoformat(),
            )
        await wait_text(browser, "#c-count", "1")  # the summary refreshes after a settlement event
        assert await browser.text(await browser.find("#c-medfee")) == money(answer["medfee_sumamt"])
        assert await browser.text(await browser.find("#c-fund")) == money(answer["fund_pay_sumamt"])
        assert await browser.text(await browser.find("#c-covid")) == f"1 笔 / {money(answer['medfee_sumamt'])} 元"
        hour = datetime.fromisoformat(answer["setl_time"]).astimezone(BUSINESS_TZ).hour
        assert await browser.find(f'#hour-chart rect[data-hour="{hour}"][data-count="1"]')
        await browser.screenshot(tmp_path / "dashboard.png")

        await browser.click(await browser.find("#dl-daily-xlsx"))
        target = downloads / f"daily-{day.isoformat()}.xlsx"

        async def downloaded():
            return target.exists() and target.stat().st_size > 0

        try:
            await eventually(downloaded, timeout=30, what="the xlsx download")
        except AssertionError:
            raise AssertionError(f"no download; found {[p.name for p in downloads.iterdir()]}") from None

    sheet = load_workbook(target).active
    assert sheet.title == "附件2 日报"
    assert sheet["A1"].value.endswith("参保患者门诊和住院医疗费用情况表")
    filed = day + timedelta(days=1)
    assert sheet["E2"].value == f"填报日期:{filed.year}年{filed.month}月{filed.day}日"
    assert sheet["A3"].value == f"数据时间段:{day.year}年{day.month}月{day.day}日当日结算"
    assert [sheet.cell(row=4, column=c).value for c in range(1, 10)] == DAILY_HEADER
    assert "A4:C4" in {str(r) for r in sheet.merged_cells.ranges}

    medfee, hifp, hifmi, maf, tilt = (
        Decimal(answer[k]) for k in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay")
    )
    figures = [1, wan(medfee), wan(hifp), wan(hifmi), wan(maf), wan(medfee - hifp - hifmi - maf - tilt)]
    assert figures[1] == 0.2137
    # 确诊 · 本市 · 居民 is row 6; 万元 with four decimals
    assert [sheet.cell(row=6, column=c).value for c in range(3, 10)] == ["居民医保", *figures]
    assert sheet["A17"].value == "合 计"
    assert [sheet.cell(row=17, column=c).value for c in range(4, 10)] == figures
    assert all(sheet.cell(row=17, column=c).number_format == "0.0000" for c in range(5, 10))
    for row in (5, *range(7, 17)):  # this settlement is the day's only one: every other row is zero
        assert [sheet.cell(row=row, column=c).value for c in range(4, 10)] == [0] * 6, row


WATCHED = [  # an ibuprofen sold above its monitoring cap of 30.00 (deploy/policy/supervision): a price alert
    {"feedetl_sn": "1", "med_list_codg": "OTC-IBU", "med_list_name": "布洛芬缓释胶囊", "pric": "35.00", "cnt": "2"},
]


async def settle_watched(stack: Stack, psn_no: str, certno: str) -> dict:
    """An ordinary outpatient visit whose line (with its time) is a watched good above its cap."""
    return await settled_visit(stack, psn_no, certno, diagnoses=["J06.9"], lines=WATCHED, timed=True)


async def test_an_alert_raised_by_a_settlement_is_resolved_on_the_alert_page(stack: Stack, tmp_path):
    """Issue 16: the alert page shows an alert a real settlement raised (through the broker and reporting's rules),
    the admin resolves it there, and it leaves the open list."""
    psn_no, certno = await register(stack)
    async with Browser(tmp_path) as browser:
        await log_in(browser, stack.reporting_url, ADMIN_KEY)
        await browser.click(await browser.find("#nav-alerts"))
        await browser.wait_for("#alerts-page:not([hidden])")
        assert await browser.find(f'#alerts tr[data-fixmedins-code="{CODE}"]') is None  # nothing open yet

        answer = await settle_watched(stack, psn_no, certno)
        row_css = f'#alerts tbody tr[data-rule="price.cap"][data-fixmedins-code="{CODE}"][data-status="open"]'
        row = await browser.wait_for(row_css, timeout=90)  # the page reloads the list on alert-raised (SSE)
        shown = await browser.text(row)
        assert "价格监测" in shown and "单价超过监测限价" in shown and "35.00" in shown and "30.00" in shown, shown
        alert_id = await browser.script("return document.querySelector(arguments[0]).dataset.alertId;", row_css)
        assert alert_id and alert_id.startswith("A"), alert_id
        await browser.screenshot(tmp_path / "alerts.png")

        await browser.click(await browser.find(f"{row_css} button.resolve-open"))
        await browser.wait_for("#resolve-form:not([hidden])")
        await browser.script("document.getElementById('resolve-resolution').value = 'confirmed';")
        await browser.type(await browser.find("#resolve-note"), "已约谈药店,退还差价")
        await browser.click(await browser.find("#resolve-submit"))

        async def gone():
            return await browser.find(f'#alerts tr[data-alert-id="{alert_id}"]') is None

        await eventually(gone, timeout=30, what="the resolved alert leaving the open list")
        assert "已处理" in await browser.text(await browser.find("#alerts-message"))

    async with httpx.AsyncClient(base_url=stack.reporting_url, timeout=30) as reporting:
        done = await ok(await reporting.get(f"/v1/alerts/{alert_id}", headers=ADMIN))
    assert (done["status"], done["resolution"], done["note"], done["resolved_by"]) == (
        "resolved",
        "confirmed",
        "已约谈药店,退还差价",
        "admin",
    )
    assert done["facts"]["setl_id"] == answer["setl_id"] and done["rule_version"] == "supervision/2022-01-01"
