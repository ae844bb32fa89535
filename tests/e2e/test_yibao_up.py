"""`yibao up` from the command line: ready within 60 s, nothing left after Ctrl-C, data kept."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e import launch
from tests.e2e.conftest import make_certno


def _settlement_children(proc: subprocess.Popen) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(proc.pid).children():
        try:
            if "services.settlement.app:app" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return found


def _kill_child_and_see_it_restarted(proc: subprocess.Popen, base: int, log: Path) -> None:
    victim = _settlement_children(proc)[0]
    victim.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in _settlement_children(proc) if p.pid != victim.pid]
        if alive:
            break
        time.sleep(0.2)
    assert alive, log.read_text()[-2000:]
    launch.wait_all_ready(proc, base, log, timeout=30)
    assert "settlement restarted (restart #1)" in log.read_text()


def _usable_everywhere_within_a_second(base: int, keys: dict) -> None:
    """Right after `yibao up` says ready, a new hospital is usable at settlement and prepayment within a second of
    its 201 (issue 17: the consumers are ready only once they have joined their groups)."""
    admin = next(k for k, v in keys.items() if v["role"] == "admin")
    his, code = next((k, v["fixmedins_code"]) for k, v in keys.items() if v["role"] == "his")
    with httpx.Client(timeout=5, headers={"X-Api-Key": admin}) as client:
        person = client.post(
            f"http://127.0.0.1:{base + 1}/v1/persons",
            json={
                "certno": make_certno(region="621000"),
                "psn_name": "即时",
                "insutype": "390",
                "insuplc_admdvs": "621000",
            },
        )
        assert person.status_code == 201, person.text
        registered = client.post(
            f"http://127.0.0.1:{base + 1}/v1/institutions",
            json={
                "fixmedins_code": code,
                "fixmedins_name": "即时医院",
                "kind": "hospital",
                "level": 2,
                "affiliation": "city",
                "admdvs": "621000",
            },
        )
        assert registered.status_code == 201, registered.text
        at = time.monotonic()
        usable: dict[str, float] = {}
        visit = {
            "psn_no": person.json()["psn_no"],
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.json()["certno"],
            "fixmedins_code": code,
            "med_type": "11",
            "begntime": "2024-03-01T09:00:00+08:00",
            "diagnoses": [],
        }
        while len(usable) < 2 and time.monotonic() - at < 5:
            if (
                "settlement" not in usable
                and client.post(
                    f"http://127.0.0.1:{base + 2}/v1/visits", json=visit, headers={"X-Api-Key": his}
                ).status_code
                == 201
            ):
                usable["settlement"] = time.monotonic() - at
            if (
                "prepayment" not in usable
                and client.get(f"http://127.0.0.1:{base + 3}/v1/institutions/{code}/position").status_code == 200
            ):
                usable["prepayment"] = time.monotonic() - at
            time.sleep(0.05)
    print(f"a new hospital usable after: {usable}")
    assert set(usable) == {"settlement", "prepayment"} and max(usable.values()) < 1.0, usable


def test_up_ready_stop_and_restart_keeps_data(tmp_path):
    base = launch.port_base()
    data_dir = tmp_path / "data"
    log = tmp_path / "up.log"
    first = launch.start(data_dir, base, log)
    try:
        seconds = launch.wait_all_ready(first, base, log)
        assert seconds < 60
        keys = json.loads((data_dir / "api-keys.json").read_text())
        admin = next(k for k, v in keys.items() if v["role"] == "admin")
        assert {v["role"] for v in keys.values()} == {"admin", "ops", "his", "pharmacy"}
        created = httpx.post(
            f"http://127.0.0.1:{base + 1}/v1/institutions",
            headers={"X-Api-Key": admin},
            json={
                "fixmedins_code": "KEEP1",
                "fixmedins_name": "持久医院",
                "kind": "hospital",
                "level": 1,
                "affiliation": "county",
                "admdvs": "621022",
            },
        )
        assert created.status_code == 201, created.text
        _usable_everywhere_within_a_second(base, keys)
        _kill_child_and_see_it_restarted(first, base, log)
    finally:
        family = launch.stop(first)
    assert first.returncode == 0, log.read_text()[-2000:]
    assert len(family) >= 7  # postgres, broker and five services (postgres has helpers too)
    assert launch.left(family) == []

    second = launch.start(data_dir, base, log)
    try:
        launch.wait_all_ready(second, base, log)
        again = httpx.get(f"http://127.0.0.1:{base + 1}/v1/institutions/KEEP1", headers={"X-Api-Key": admin})
        assert again.status_code == 200 and again.json()["fixmedins_name"] == "持久医院"
    finally:
        family = launch.stop(second)
    assert launch.left(family) == []
    assert "ready in" in log.read_text()


@pytest.mark.parametrize("signum, sigint_ignored", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_sigterm_stops_everything(tmp_path, signum, sigint_ignored):
    """SIGTERM; and Ctrl-C even when started from a script's background, which starts it with SIGINT ignored."""
    base = launch.port_base()
    log = tmp_path / "up.log"
    proc = launch.start(tmp_path / "data", base, log, sigint_ignored=sigint_ignored)
    try:
        launch.wait_all_ready(proc, base, log)
    finally:
        family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signum)
        proc.wait(60)
    assert launch.left(family) == []


def test_up_with_two_instances_of_each_service(tmp_path):
    """`yibao up --instances 2`: two worker processes of every service on its port, all ready, and a settlement made
    through them reaches prepayment (each instance a whole one: its own pool, relay, consumer)."""
    base = launch.port_base()
    data_dir = tmp_path / "data"
    log = tmp_path / "up.log"
    proc = launch.start(data_dir, base, log, "--instances", "2")
    try:
        launch.wait_all_ready(proc, base, log, timeout=90)
        workers: dict[str, int] = {}
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            for name in ("eligibility", "settlement", "prepayment", "reporting", "gateway"):
                if f"services.{name}.app" in command or ("multiprocessing" in command and name in command):
                    workers[name] = workers.get(name, 0) + 1
        keys = json.loads((data_dir / "api-keys.json").read_text())
        _usable_everywhere_within_a_second(base, keys)
    finally:
        family = launch.stop(proc)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert launch.left(family) == []
    spawned = sum(1 for _ in family)
    assert spawned >= 2 + 5 * 3, (spawned, workers)  # postgres, broker, and per service a master with two workers
