"""`yibao report daily --date D --out FILE.xlsx` writes the service's 附件2 workbook (the reporting service on a real
port, the command in a thread, as a user would run it against `yibao up`)."""

from __future__ import annotations

import asyncio
import socket
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn
from openpyxl import load_workbook
from typer.testing import CliRunner

from deploy import cli
from services.reporting.app import spec
from shared.events.consumer import Consumer
from shared.events.topics import SETTLED
from shared.service import create_app
from shared.testing import api_keys_json, make_settings, running_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "reporting"))
from reporting_support import envelope, fresh_day, settled  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_report_daily_writes_the_xlsx(pg, broker, tmp_path):
    settings = make_settings("reporting", database_url=pg.url, bootstrap=broker.bootstrap, CONSUMERS_ENABLED=False)
    app = create_app(spec, settings)
    day = fresh_day()
    async with running_app(app):
        consumer = Consumer(
            db=app.state.db, bootstrap=broker.bootstrap, group_id="reporting-cli-test", handlers=spec.handlers(app)
        )
        await consumer.apply(
            SETTLED,
            envelope(
                SETTLED,
                settled(
                    day=day,
                    covid="suspected",
                    origin="province",
                    insutype="310",
                    medfee="8888.88",
                    hifp="4444.44",
                    hifmi="0.00",
                    maf="0.00",
                ),
            ).to_json(),
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            runner = CliRunner()
            env = {"API_KEYS": api_keys_json(), "REPORTING_URL": f"http://127.0.0.1:{port}"}
            out = tmp_path / "daily.xlsx"
            result = await asyncio.to_thread(
                runner.invoke, cli.app, ["report", "daily", "--date", day.isoformat(), "--out", str(out)], env=env
            )
            assert result.exit_code == 0, result.output
            bad = await asyncio.to_thread(
                runner.invoke,
                cli.app,
                ["report", "daily", "--date", "2024-02-30", "--out", str(tmp_path / "x.xlsx")],
                env=env,
            )
            assert bad.exit_code == 1 and "422" in bad.output
            down = await asyncio.to_thread(
                runner.invoke,
                cli.app,
                ["report", "daily", "--date", day.isoformat(), "--out", str(tmp_path / "y.xlsx")],
                env={**env, "REPORTING_URL": "http://127.0.0.1:9"},
            )
            assert down.exit_code == 1 and "did not answer" in down.output
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)
    sheet = load_workbook(out).active
    filed = day + timedelta(days=1)
    assert sheet["E2"].value == f"填报日期:{filed.year}年{filed.month}月{filed.day}日"
    assert [sheet.cell(row=13, column=c).value for c in range(1, 10)] == [
        None,
        "收治省内其它市州参保患者",
        "职工医保",
        1,
        0.8889,
        0.4444,
        0,
        0,
        0.4444,
    ]
