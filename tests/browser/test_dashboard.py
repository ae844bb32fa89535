"""The ops dashboard in headless Chromium: log in with the ops key, see a settlement applied during the test appear
in the live feed (SSE), download 附件2 as xlsx and check its cells with openpyxl.

Needs Debian's `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver); skipped where they
are missing, except under CI=true, where their absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from openpyxl import load_workbook

from services.reporting.app import spec
from shared.events.consumer import Consumer
from shared.events.topics import SETTLED
from shared.service import create_app
from shared.testing import OPS_KEY, make_settings, running_app
from webdriver import Browser, available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "reporting"))
from reporting_support import envelope, fresh_day, settled  # noqa: E402

if not available():
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def dashboard(pg, broker):
    """The reporting app on a real port (uvicorn in this event loop). Its broker consumer is off: the test feeds
    events through a consumer of its own, so no consumer group is shared with other tests' apps."""
    settings = make_settings("reporting", database_url=pg.url, bootstrap=broker.bootstrap, CONSUMERS_ENABLED=False)
    app = create_app(spec, settings)
    async with running_app(app):
        app.state.consumer = Consumer(sessions=app.state.sessions, tables=spec.events, bootstrap=broker.bootstrap,
                                      group_id="reporting-browser-test", handlers=spec.handlers,
                                      after_commit=lambda event: spec.after_event(app, event))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                               timeout_graceful_shutdown=1))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            yield app, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


async def test_live_feed_and_xlsx_download(dashboard, tmp_path):
    app, url = dashboard
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    day = fresh_day()
    async with Browser(downloads) as browser:
        await browser.get(url + "/")
        await browser.type(await browser.wait_for("#key"), OPS_KEY)
        await browser.click(await browser.wait_for("#login-button"))
        await browser.wait_for("#board:not([hidden])")
        await browser.wait_for("#live.on")  # the EventSource is connected (with a ticket)
        await browser.script("const d = document.getElementById('day'); d.value = arguments[0];"
                             "d.dispatchEvent(new Event('change'));", day.isoformat())

        payload = settled(day=day, covid="confirmed", origin="local", insutype="390", medfee="23456.78",
                          hifp="15000.00", hifmi="3000.00", maf="456.78")
        await app.state.consumer.apply(SETTLED, envelope(SETTLED, payload).to_json())
        item = await browser.wait_for(f'#feed li[data-setl-id="{payload["setl_id"]}"]')
        text = await browser.text(item)
        assert "结算" in text and "23,456.78" in text and "新冠确诊" in text
        await browser.wait_for("#c-count")
        deadline = time.monotonic() + 10
        while (await browser.text(await browser.find("#c-count"))) != "1" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # the summary refreshes after a settlement event
        assert await browser.text(await browser.find("#c-medfee")) == "23,456.78"
        assert await browser.find('#hour-chart rect[data-hour="10"][data-count="1"]')
        await browser.screenshot(tmp_path / "dashboard.png")

        await browser.click(await browser.find("#dl-daily-xlsx"))
        target = downloads / f"daily-{day.isoformat()}.xlsx"
        deadline = time.monotonic() + 20
        while not target.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert target.exists(), f"no download; found {[p.name for p in downloads.iterdir()]}"

    sheet = load_workbook(target).active
    assert sheet["A1"].value.endswith("参保患者门诊和住院医疗费用情况表")
    assert "A4:C4" in {str(r) for r in sheet.merged_cells.ranges}
    assert sheet["D4"].value == "当日结算人数"
    filed = day + timedelta(days=1)
    assert sheet["E2"].value == f"填报日期:{filed.year}年{filed.month}月{filed.day}日"
    # 确诊 · 本市 · 居民 is row 6; 万元 with four decimals
    assert [sheet.cell(row=6, column=c).value for c in range(3, 10)] == [
        "居民医保", 1, 2.3457, 1.5, 0.3, 0.0457, 0.5]
    assert [sheet.cell(row=17, column=c).value for c in range(4, 10)] == [1, 2.3457, 1.5, 0.3, 0.0457, 0.5]
