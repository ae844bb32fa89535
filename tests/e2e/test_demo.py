"""The demo (`yibao up` with --demo, then `yibao seed-demo` again): it runs through the public APIs, sets the
hospitals' global budgets (the indicators show their use), settles dual-channel prescriptions at pharmacies,
and a second run the same day adds nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

import httpx

from deploy.demo import BUDGETS, PHARMACIES
from shared.events.envelope import BUSINESS_TZ
from tests.e2e import launch

DEMO_TIMEOUT = 600  # seconds for the whole demo on a busy machine (about 40 s on an idle one)


def _wait_for_demo(proc: subprocess.Popen, log, timeout: float = DEMO_TIMEOUT) -> str:
    """The demo's closing line from the `yibao up` log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        assert "demo: stopped" not in text, text[-3000:]
        assert proc.poll() is None, text[-3000:]
        done = [line for line in text.splitlines() if line.startswith("demo: ") and "new persons" in line]
        if done:
            return done[-1]
        time.sleep(1)
    raise AssertionError(f"the demo did not finish within {timeout} s:\n{log.read_text()[-3000:]}")


def _eventually(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_the_demo_sets_budgets_and_settles_prescriptions_at_pharmacies(tmp_path):
    base = launch.port_base()
    data_dir = tmp_path / "data"
    log = tmp_path / "up.log"
    proc = launch.start(data_dir, base, log, demo=True)
    try:
        launch.wait_all_ready(proc, base, log)
        today = datetime.now(BUSINESS_TZ).date()
        summary = _wait_for_demo(proc, log)
        assert f"{len(BUDGETS)} hospital budgets for {today.year}" in summary, summary
        dispensed = int(summary.split(" dual-channel prescriptions")[0].rsplit(" ", 1)[1])
        assert dispensed > 0, summary

        keys = json.loads((data_dir / "api-keys.json").read_text())
        ops = {"X-Api-Key": next(k for k, v in keys.items() if v["role"] == "ops")}
        url = lambda offset: f"http://127.0.0.1:{base + offset}"  # noqa: E731
        with httpx.Client(timeout=30, headers=ops) as client:
            for code, amount in BUDGETS.items():
                budget = client.get(f"{url(3)}/v1/budgets/{code}", params={"year": today.year})
                assert budget.status_code == 200 and budget.json()["budget"] == amount, budget.text

            at_pharmacies = []
            for code in PHARMACIES:
                listed = client.get(
                    f"{url(2)}/v1/settlements", params={"setl_date": today.isoformat(), "fixmedins_code": code}
                )
                assert listed.status_code == 200, listed.text
                at_pharmacies += listed.json()["items"]
            assert len(at_pharmacies) >= dispensed
            assert {s["med_type"] for s in at_pharmacies} == {"41"} and all(s["rx_no"] for s in at_pharmacies)

            def indicators():
                body = client.get(f"{url(4)}/v1/reports/indicators", params={"year": today.year}).json()
                items = {item["fixmedins_code"]: item for item in body["items"]}
                hospitals = all(items.get(code, {}).get("budget") == amount for code, amount in BUDGETS.items())
                pharmacies = sum(items.get(code, {}).get("settlements", 0) for code in PHARMACIES)
                return items if hospitals and pharmacies >= dispensed else None

            items = _eventually(indicators)  # reporting learns it all through the broker
            assert items, client.get(f"{url(4)}/v1/reports/indicators", params={"year": today.year}).text
            for code in BUDGETS:
                assert items[code]["budget_status"] in ("ok", "warning", "exceeded")
                assert items[code]["budget_ratio"] is not None

        again = subprocess.run(
            [sys.executable, "-m", "deploy.cli", "seed-demo", "--port-base", str(base), "--data-dir", str(data_dir)],
            cwd=launch.REPO,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        if datetime.now(BUSINESS_TZ).date() == today:  # the same day: nothing new
            assert "0 new persons" in again.stdout and " 0 dual-channel prescriptions" in again.stdout, again.stdout
    finally:
        family = launch.stop(proc)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert launch.left(family) == []
