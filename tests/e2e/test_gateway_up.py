"""The national-platform gateway under `yibao up`: started on B+5, supervised like the other services, with the
dev credentials it prints; an HIS written from the spec plays an outpatient and an inpatient day through it, and
the amounts are the REST API's to the fen."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psutil

from tests.e2e import launch
from tests.e2e.conftest import make_certno

sys.path.insert(0, str(launch.REPO / "tests" / "service" / "gateway"))
from his_client import (  # noqa: E402
    His,
    Item,
    Patient,
    admit_2401,
    amount,
    check_identities,
    discharge_2402,
    fees_2204,
    fees_2301,
    inpatient_settle,
    now,
    numbered,
    person_1101,
    register_2201,
    settle_data,
    settlement_5203,
    sign_in,
    visit_2203,
)


def _gateway_child(proc: subprocess.Popen) -> psutil.Process:
    for child in psutil.Process(proc.pid).children():
        try:
            if "services.gateway.app:app" in " ".join(child.cmdline()):
                return child
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    raise AssertionError("no gateway process under yibao up")


async def _world(base: int, data_dir: Path) -> tuple[dict, dict]:
    keys = json.loads((data_dir / "api-keys.json").read_text())
    clients = json.loads((data_dir / "nhsa-clients.json").read_text())
    admin = {"X-Api-Key": next(k for k, v in keys.items() if v["role"] == "admin")}
    async with httpx.AsyncClient(timeout=10, headers=admin) as http:
        for code, spec in {
            "H1": {"kind": "hospital", "level": 3, "affiliation": "city", "admdvs": "621000"},
            "P1": {"kind": "pharmacy", "level": None, "affiliation": "county", "admdvs": "621022"},
        }.items():
            created = await http.post(
                f"http://127.0.0.1:{base + 1}/v1/institutions",
                json={"fixmedins_code": code, "fixmedins_name": f"医院{code}", **spec},
            )
            assert created.status_code in (200, 201), created.text
        for code, entry in {
            "XE2EA01": {"med_list_name": "甲类药", "item_class": "A"},
            "XE2EB01": {"med_list_name": "乙类药", "item_class": "B", "preselfpay_prop": "0.15"},
        }.items():
            put = await http.put(f"http://127.0.0.1:{base + 2}/v1/catalog/{code}", json=entry)
            assert put.status_code in (200, 201), put.text
    return keys, clients


async def _patients(base: int, admin: str, n: int) -> list[Patient]:
    found = []
    async with httpx.AsyncClient(timeout=10, headers={"X-Api-Key": admin}) as http:
        for _ in range(n):
            certno = make_certno(region="621022")
            created = await http.post(
                f"http://127.0.0.1:{base + 1}/v1/persons",
                json={"certno": certno, "psn_name": "赵六", "insutype": "390", "insuplc_admdvs": "621000"},
            )
            assert created.status_code == 201, created.text
            found.append(Patient(psn_no=created.json()["psn_no"], certno=certno, psn_name="赵六", insutype="390"))
    return found


async def _rest_settle(base: int, his_key: str, p: Patient, items: list[Item], **visit) -> dict:
    key = {"X-Api-Key": his_key}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{base + 2}", timeout=10, headers=key) as http:
        created = await http.post(
            "/v1/visits",
            json={"psn_no": p.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno, "fixmedins_code": "H1"}
            | {k: v for k, v in visit.items() if k != "endtime"},
        )
        assert created.status_code == 201, created.text
        mdtrt_id = created.json()["mdtrt_id"]
        lines = [
            {"feedetl_sn": f"R{i}", "med_list_codg": it.codg, "pric": it.pric, "cnt": it.cnt}
            for i, it in enumerate(items)
        ]
        assert (await http.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": lines})).status_code == 201
        if visit.get("endtime"):
            left = await http.post(f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": visit["endtime"]})
            assert left.status_code == 200, left.text
        done = await http.post(f"/v1/visits/{mdtrt_id}/settle", json={})
        assert done.status_code == 201, done.text
        return done.json()


async def _days(base: int, data_dir: Path) -> None:
    keys, clients = await _world(base, data_dir)
    admin = next(k for k, v in keys.items() if v["role"] == "admin")
    his_key = next(k for k, v in keys.items() if v["role"] == "his")
    access_key, spec = next((k, v) for k, v in clients.items() if v["fixmedins_code"] == "H1")
    p, twin, q, twin2 = await _patients(base, admin, 4)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{base + 5}", timeout=15) as http:
        his = His(http, access_key=access_key, secret=spec["secret"], fixmedins_code="H1")
        await his.call("9001", sign_in())
        when = now() - timedelta(minutes=10)
        for _ in range(100):  # until settlement's copy of the institution has H1
            answer = await his.send("2201", register_2201(p, when=when, ipt_otp_no="E2E1"))
            if answer.ok:
                break
            await asyncio.sleep(0.1)
        assert answer.ok, answer.body
        mdtrt_id = answer.output["data"]["mdtrt_id"]
        await his.call("1101", person_1101(p))
        await his.call("2203", visit_2203(p, mdtrt_id, when=when))
        items = numbered([Item("XE2EA01", "35.00", "2"), Item("XE2EB01", "80.00", "1")])
        await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
        medfee = sum((i.total for i in items), Decimal("0.00"))
        await his.call("2206", settle_data(p, mdtrt_id, medfee))
        setl = (await his.call("2207", settle_data(p, mdtrt_id, medfee))).output["setlinfo"]
        check_identities(setl)
        await his.call("5203", settlement_5203(p, mdtrt_id, setl["setl_id"]))
        rest = await _rest_settle(
            base, his_key, twin, items, med_type="11", begntime=when.isoformat(), diagnoses=["J06.900"]
        )
        for name in ("medfee_sumamt", "hifp_pay", "psn_cash_pay", "preselfpay_amt", "inscp_scp_amt"):
            assert amount(setl[name]) == Decimal(rest[name]), name
        # the inpatient day, a refund line included
        admitted, left = now() - timedelta(days=2), now() - timedelta(hours=1)
        admission = await his.call("2401", admit_2401(q, when=admitted, ipt_no="E2EZY", diagnoses=["K35.800"]))
        stay = admission.output["result"]["mdtrt_id"]
        charged = numbered([Item("XE2EA01", "200.00", "5"), Item("XE2EB01", "60.00", "3")])
        await his.call("2301", fees_2301(q, stay, charged, when=admitted + timedelta(hours=1)))
        await his.call(
            "2301", fees_2301(q, stay, numbered([Item("XE2EA01", "200.00", "-1", init=charged[0].sn)]), when=left)
        )
        await his.call("2402", discharge_2402(q, stay, when=left, diagnoses=["K35.800"]))
        total = Decimal("800.00") + Decimal("180.00")
        await his.call("2303", inpatient_settle(q, stay, total, leaving=left))
        inpatient = (await his.call("2304", inpatient_settle(q, stay, total, leaving=left))).output["setlinfo"]
        check_identities(inpatient)
        rest = await _rest_settle(
            base,
            his_key,
            twin2,
            [Item("XE2EA01", "200.00", "4"), charged[1]],
            med_type="21",
            begntime=admitted.isoformat(),
            endtime=left.isoformat(),
            diagnoses=["K35.800"],
        )
        for name in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "psn_cash_pay", "act_pay_dedc"):
            assert amount(inpatient[name]) == Decimal(rest[name]), name


def test_yibao_up_runs_the_gateway_and_an_his_settles_its_days_through_it(tmp_path):
    base = launch.port_base()
    data_dir, log = tmp_path / "data", tmp_path / "up.log"
    proc = launch.start(data_dir, base, log)
    try:
        launch.wait_all_ready(proc, base, log, timeout=90)
        clients = json.loads((data_dir / "nhsa-clients.json").read_text())
        deadline = time.monotonic() + 20  # the credentials are printed once every service said ready
        while not all(f"access key {key}" in log.read_text() for key in clients) and time.monotonic() < deadline:
            time.sleep(0.1)
        printed = log.read_text()
        assert f"gateway      http://127.0.0.1:{base + 5}  ready" in printed
        assert {c["fixmedins_code"] for c in clients.values()} == {"H1", "P1"}
        assert all(f"access key {key}" in printed for key in clients)
        asyncio.run(_days(base, data_dir))
        _gateway_child(proc).kill()  # supervised like the others: restarted, ready again
        deadline = time.monotonic() + 30
        while "gateway restarted (restart #1)" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "gateway restarted (restart #1)" in log.read_text(), log.read_text()[-2000:]
        launch.wait_all_ready(proc, base, log, timeout=30)
    finally:
        family = launch.stop(proc)
    assert launch.left(family) == [] and proc.returncode == 0, log.read_text()[-2000:]
