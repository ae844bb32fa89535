"""The national-platform gateway's cost: an HIS's outpatient day through the gateway against the same day over
the REST API, in one run, on this machine.

    .venv/bin/python benchmarks/gateway.py [--seconds 15] [--concurrency 16] [--lines 10] [--rounds 2]
        [--rate DAYS_PER_SECOND] [--statements N] [--syscalls] [--profile-gateway FILE] [--floor]

Starts embedded PostgreSQL and the broker, then eligibility, settlement and the gateway as real uvicorn processes,
registers a hospital, catalogue entries and persons through the APIs, and drives C in-flight loops of one
outpatient day each, for the same number of seconds, alternately (REST then gateway, gateway then REST, …, --rounds
times; the tables grow as it runs):

- REST: GET /v1/credential-holder and GET /v1/accounts/{psn_no} (what 1101 answers) → POST /v1/visits (with the
  diagnoses) → POST …/fees (10 lines) → POST …/presettle → POST …/settle → GET /v1/settlements/{setl_id};
- gateway: 1101 → 2201 → 2203 → 2204 (10 lines) → 2206 → 2207 → 5203, each an envelope signed with the gateway
  headers (表5), as an HIS sends them.

It prints days per second, the latency of a day and of its settle step, the CPU each process spent per settled day,
and the ratio of service CPU per day (eligibility + settlement + gateway + PostgreSQL; the load generator left
out) of the gateway path to the REST path. The aim: at most 1.25.

- The loops are closed (each starts its next day when its last one ends): each path runs as fast as 16 in flight
  allow, and the gateway path, with more round trips a day, settles fewer days a second, so its CPU per day also
  carries more idle CPU and the lower efficiency of processes that wait more (the second ratio leaves the idle
  CPU out). `--rate R` starts R days a second on both paths instead (open loop), for the cost of a day at equal
  throughput.
- The cost follows round trips: each statement or call wakes a process that waits on its socket. `--statements N`
  (pg_stat_statements: statements a day and the costliest) and `--syscalls` (read and write system calls a day of
  each process) show where they are.
- `--floor` adds a round of the same envelopes under transaction numbers the gateway does not have: signature
  checked, envelope parsed, refused, nothing else, at the pace the gateway path ran (days a second, open loop).
  The gateway's CPU there is what receiving and answering a day's seven envelopes costs before any translation,
  statement or call; the rest of its CPU is the work of the transactions.
- PostgreSQL's CPU counts the backends that ended during a round (their time is the postmaster's, once reaped).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from settle import (  # noqa: E402
    Http,
    analyze,
    certno,
    cpu_report,
    cpu_seconds,
    describe,
    start_service,
    statement_stats,
    wait_ready,
)

from deploy.embedded import EmbeddedBroker, EmbeddedPostgres, free_port  # noqa: E402
from shared.server import uvicorn_command  # noqa: E402
from shared.testing import ADMIN_KEY, HIS_KEYS, service_env  # noqa: E402

BEIJING = ZoneInfo("Asia/Shanghai")
CODE = "H1"
ACCESS_KEY, SECRET = "bench-h1", "bench-secret-of-the-h1-client"
NHSA_CLIENTS = json.dumps({ACCESS_KEY: {"secret": SECRET, "fixmedins_code": CODE, "infcode_type": "number"}})
CATALOGUE = {f"XBEN{c}{i:02d}": c for i in range(10) for c in "ABC"}
SERVICE_GROUPS = ("eligibility", "settlement", "gateway", "postgres")


def dt(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class Lines:
    """The fee lines of one day: classes A, B, C in turn, random prices and counts."""

    def __init__(self, n: int) -> None:
        self.items = [
            (
                f"XBEN{'ABC'[i % 3]}{i // 3:02d}",
                f"{random.randint(5, 120)}.{random.randint(0, 99):02d}",
                random.randint(1, 3),
            )
            for i in range(n)
        ]

    @property
    def total(self) -> Decimal:
        return sum((Decimal(p) * c for _, p, c in self.items), Decimal("0.00"))


class Hospital:
    """An HIS sending envelopes to the gateway (表2, signed per 表5)."""

    serial = 0

    def __init__(self, port: int) -> None:
        self.http = Http(port)

    def msgid(self) -> str:
        Hospital.serial += 1
        return f"{CODE}{datetime.now(BEIJING):%Y%m%d%H%M%S}{Hospital.serial:06d}"[:30]

    async def call(self, infno: str, input_: dict) -> dict:
        fields = {
            "_api_name": infno,
            "_api_version": "1.0.0",
            "_api_timestamp": str(int(time.time() * 1000)),
            "_api_access_key": ACCESS_KEY,
        }
        text = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
        fields["_api_signature"] = base64.b64encode(
            hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).digest()
        ).decode()
        envelope = {
            "infno": infno,
            "msgid": self.msgid(),
            "mdtrtarea_admvs": "621000",
            "insuplc_admdvs": "621000",
            "recer_sys_code": "FSI",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "01",
            "opter_name": "收费员",
            "inf_time": dt(datetime.now(BEIJING)),
            "fixmedins_code": CODE,
            "fixmedins_name": "压测医院",
            "sign_no": "",
            "input": input_,
        }
        status, body = await self.http.request("POST", "/fsi/api/rsfComIfsService/callService", envelope, fields)
        if status != 200 or body.get("infcode") != 0:
            raise RuntimeError(f"{infno}: {status} {body}")
        return body["output"]


class Unknown(Hospital):
    """The same envelopes, each under a transaction number the gateway does not have (F2201 …): signature checked,
    envelope parsed, refused; no statement, no call to a service (the floor of the gateway's cost)."""

    async def call(self, infno: str, input_: dict) -> dict:
        try:
            await super().call(f"F{infno}", input_)
        except RuntimeError as refused:
            if '"infcode": -1' not in str(refused) and "'infcode': -1" not in str(refused):
                raise
        else:
            raise RuntimeError(f"F{infno} was answered")
        return {"data": {"mdtrt_id": "M0"}, "setlinfo": {"setl_id": "S0"}}


async def gateway_day(his: Hospital, person: tuple[str, str], lines: Lines) -> float:
    """One outpatient day through the gateway; the seconds its settle (2207) took."""
    psn_no, cert = person
    when = dt(datetime.now(BEIJING) - timedelta(minutes=1))
    await his.call(
        "1101",
        {
            "data": {
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "psn_cert_type": "01",
                "certno": cert,
                "psn_name": "压测",
            }
        },
    )
    registered = await his.call(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "insutype": "390",
                "begntime": when,
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "psn_cert_type": "01",
                "certno": cert,
                "psn_type": "1701",
                "psn_name": "压测",
                "ipt_otp_no": "MZ1",
                "dept_code": "01",
                "dept_name": "内科",
                "caty": "A03",
            }
        },
    )
    mdtrt_id = registered["data"]["mdtrt_id"]
    diag = {
        "diag_type": "1",
        "diag_srt_no": 1,
        "diag_code": "J06.900",
        "diag_name": "上感",
        "diag_dept": "内科",
        "dise_dor_no": "D1",
        "dise_dor_name": "医生",
        "diag_time": when,
        "vali_flag": "1",
    }
    await his.call(
        "2203",
        {
            "mdtrtinfo": {
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
                "med_type": "11",
                "begntime": when,
                "dise_codg": "J06.900",
                "dise_name": "上感",
            },
            "diseinfo": [diag],
        },
    )
    feedetail = [
        {
            "feedetl_sn": str(i + 1),
            "mdtrt_id": mdtrt_id,
            "psn_no": psn_no,
            "chrg_bchno": "1",
            "rx_circ_flag": "0",
            "fee_ocur_time": when,
            "med_list_codg": codg,
            "medins_list_codg": codg,
            "det_item_fee_sumamt": str((Decimal(pric) * cnt).quantize(Decimal("0.01"))),
            "cnt": str(cnt),
            "pric": pric,
            "bilg_dept_codg": "01",
            "bilg_dept_name": "内科",
            "bilg_dr_codg": "D1",
            "bilg_dr_name": "医生",
            "hosp_appr_flag": "1",
        }
        for i, (codg, pric, cnt) in enumerate(lines.items)
    ]
    await his.call("2204", {"feedetail": feedetail})
    data = {
        "psn_no": psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": cert,
        "psn_cert_type": "01",
        "certno": cert,
        "psn_type": "1701",
        "psn_name": "压测",
        "med_type": "11",
        "medfee_sumamt": str(lines.total),
        "psn_setlway": "01",
        "mdtrt_id": mdtrt_id,
        "chrg_bchno": "1",
        "acct_used_flag": "0",
        "insutype": "390",
    }
    await his.call("2206", {"data": data})
    started = time.monotonic()
    settled = await his.call("2207", {"data": data})
    took = time.monotonic() - started
    setl_id = settled["setlinfo"]["setl_id"]
    await his.call("5203", {"data": {"psn_no": psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt_id}})
    return took


async def rest_day(eligibility: Http, settlement: Http, person: tuple[str, str], lines: Lines) -> float:
    """The same day over the REST API; the seconds its settle took."""
    psn_no, cert = person
    key = {"X-Api-Key": HIS_KEYS[CODE]}
    when = (datetime.now(BEIJING) - timedelta(minutes=1)).isoformat()

    async def ok(http: Http, method: str, path: str, body: dict | None = None) -> dict:
        status, answer = await http.request(method, path, body, key)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    query = f"mdtrt_cert_type=02&mdtrt_cert_no={cert}"
    await ok(eligibility, "GET", f"/v1/credential-holder?{query}")
    await ok(settlement, "GET", f"/v1/accounts/{psn_no}?{query}")
    visit = await ok(
        settlement,
        "POST",
        "/v1/visits",
        {
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": cert,
            "fixmedins_code": CODE,
            "med_type": "11",
            "begntime": when,
            "diagnoses": ["J06.900"],
        },
    )
    mdtrt_id = visit["mdtrt_id"]
    items = [
        {"feedetl_sn": str(i + 1), "med_list_codg": codg, "pric": pric, "cnt": str(cnt), "fee_ocur_time": when}
        for i, (codg, pric, cnt) in enumerate(lines.items)
    ]
    await ok(settlement, "POST", f"/v1/visits/{mdtrt_id}/fees", {"items": items})
    await ok(settlement, "POST", f"/v1/visits/{mdtrt_id}/presettle", {})
    started = time.monotonic()
    settled = await ok(settlement, "POST", f"/v1/visits/{mdtrt_id}/settle", {})
    took = time.monotonic() - started
    await ok(settlement, "GET", f"/v1/settlements/{settled['setl_id']}")
    return took


async def loops(
    kind: str, ports: dict[str, int], people: list, seconds: float, concurrency: int, n: int, rate: float = 0
) -> dict:
    """C loops of days for `seconds`, each starting its next day when its last one ends (closed loop), or, with
    `rate`, when the next of `rate` days a second is due (open loop: both paths settle as many days a second)."""
    results: dict = {"day": [], "settle": [], "errors": []}
    started_at = time.monotonic()
    until = started_at + seconds
    due = iter(range(1 << 30))

    async def one() -> None:
        his = (Unknown if kind == "floor" else Hospital)(ports["gateway"])
        eligibility, settlement = Http(ports["eligibility"]), Http(ports["settlement"])
        while time.monotonic() < until:
            if rate:
                wait = started_at + next(due) / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if time.monotonic() >= until:
                    break
            person, lines = random.choice(people), Lines(n)
            started = time.monotonic()
            try:
                if kind in ("gateway", "floor"):
                    took = await gateway_day(his, person, lines)
                else:
                    took = await rest_day(eligibility, settlement, person, lines)
            except Exception as exc:  # noqa: BLE001 - counted and shown
                results["errors"].append(str(exc)[:300])
                for http in (his.http, eligibility, settlement):
                    http.close()
                continue
            results["day"].append(time.monotonic() - started)
            results["settle"].append(took)

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return results


async def setup(ports: dict[str, int], persons: int) -> list[tuple[str, str]]:
    admin = {"X-Api-Key": ADMIN_KEY}
    eligibility, settlement = Http(ports["eligibility"]), Http(ports["settlement"])
    institution = {"fixmedins_code": CODE, "fixmedins_name": CODE, "kind": "hospital", "level": 3}
    status, body = await eligibility.request(
        "POST", "/v1/institutions", institution | {"affiliation": "city", "admdvs": "621000"}, admin
    )
    assert status in (200, 201), body
    for code, item_class in CATALOGUE.items():
        status, body = await settlement.request(
            "PUT", f"/v1/catalog/{code}", {"med_list_name": code, "item_class": item_class}, admin
        )
        assert status in (200, 201), body
    people = []
    run = random.randrange(900)
    for n in range(persons):
        number = certno("621022", run * 1000 + n)
        status, body = await eligibility.request(
            "POST",
            "/v1/persons",
            {"certno": number, "psn_name": "压测", "insutype": "390", "insuplc_admdvs": "621000"},
            admin,
        )
        assert status == 201, body
        people.append((body["psn_no"], number))
    his = Hospital(ports["gateway"])
    for _ in range(300):  # until settlement's copy of the institution has it
        try:
            await gateway_day(his, people[0], Lines(2))
            return people
        except RuntimeError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway never settled a day")


def syscalls(groups: dict[str, list[int]]) -> dict[str, tuple[int, int]]:
    """(read, write) system calls so far of each group of processes and their children (/proc/PID/io)."""
    out = {}
    for name, pids in groups.items():
        reads = writes = 0
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for proc in [root] if pid == os.getpid() else [root, *root.children(recursive=True)]:
                    io = proc.io_counters()
                    reads, writes = reads + io.read_count, writes + io.write_count
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        out[name] = (reads, writes)
    return out


def syscall_report(before: dict, after: dict, count: int) -> str:
    n = max(count, 1)
    parts = [
        f"{g} {(after[g][0] - before[g][0]) / n:.1f}/{(after[g][1] - before[g][1]) / n:.1f}" for g in SERVICE_GROUPS
    ]
    return "  system calls per day (read/write): " + ", ".join(parts)


def share(before: dict, after: dict, count: int) -> float:
    return 1000 * sum(after[g] - before[g] for g in SERVICE_GROUPS) / max(count, 1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--persons", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="REST then gateway, gateway then REST, … this many times")
    parser.add_argument("--statements", type=int, default=0, metavar="N", help="PostgreSQL's N costliest statements")
    parser.add_argument("--syscalls", action="store_true", help="also the read/write system calls per day")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="days a second per path, open loop (default: closed loop, as fast as the concurrency allows)",
    )
    parser.add_argument("--idle", type=float, default=3, help="seconds of idle CPU measured before the runs")
    parser.add_argument("--profile-gateway", metavar="FILE", help="run the gateway under cProfile, stats to FILE")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also a round of the same envelopes refused before any work (unknown infno): the gateway's floor",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="yibao-gateway-bench-"))
    pg = EmbeddedPostgres(
        work / "pg",
        free_port(),
        fast=True,
        unix_socket=True,
        settings={"shared_preload_libraries": "pg_stat_statements"} if args.statements else None,
    )
    broker = EmbeddedBroker(free_port(), log_dir=work)
    procs: dict[str, subprocess.Popen] = {}
    try:
        pg.start()
        broker.start()
        ports = {name: free_port() for name in ("eligibility", "settlement", "gateway")}
        env = service_env(
            database_url=pg.local_url,
            bootstrap=broker.bootstrap,
            ELIGIBILITY_URL=f"http://127.0.0.1:{ports['eligibility']}",
            SETTLEMENT_URL=f"http://127.0.0.1:{ports['settlement']}",
            NHSA_CLIENTS=NHSA_CLIENTS,
            DB_POOL_SIZE="20",
            RELAY_POLL_SECONDS="0.25",
        )
        for name in ports:
            procs[name] = start_service(name, ports[name], env, work, 1)
        if args.profile_gateway:  # the same command under cProfile (stats written when it stops on SIGINT)
            procs["gateway"].terminate()
            procs["gateway"].wait(20)
            command = uvicorn_command("gateway", port=ports["gateway"], log_level="warning")
            command[1:1] = ["-m", "cProfile", "-o", args.profile_gateway]
            out = open(work / "gateway.log", "ab")
            procs["gateway"] = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=out)
        for name, proc in procs.items():
            await wait_ready(ports[name], proc)
        people = await setup(ports, args.persons)
        print(
            f"setup: {len(people)} persons, concurrency {args.concurrency}, {args.lines} lines a day, "
            f"{args.seconds:.0f} s per path and round; cores {os.cpu_count()}"
        )
        groups = {
            "eligibility": [procs["eligibility"].pid],
            "settlement": [procs["settlement"].pid],
            "gateway": [procs["gateway"].pid],
            "postgres": [pg.proc.pid],
            "broker": [broker.proc.pid],
            "load generator": [os.getpid()],
        }
        for kind in ("rest", "gateway"):  # warm-up
            await loops(kind, ports, people, 3, args.concurrency, args.lines)
        await analyze(pg.url)  # as autovacuum would on a live database (see benchmarks/settle.py)
        idle_before, idle_started = cpu_seconds(groups), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_after, idle_seconds = cpu_seconds(groups), time.monotonic() - idle_started
        idle = {g: (idle_after[g] - idle_before[g]) / idle_seconds for g in SERVICE_GROUPS}
        print(
            "idle CPU ms per second (relays, consumers, timers): "
            + ", ".join(f"{g} {1000 * idle[g]:.1f}" for g in SERVICE_GROUPS)
        )
        totals = {"rest": [0.0, 0, 0.0, 0.0], "gateway": [0.0, 0, 0.0, 0.0]}  # CPU ms, days, idle ms, seconds
        for round_ in range(1, args.rounds + 1):
            for kind in ("rest", "gateway") if round_ % 2 else ("gateway", "rest"):  # the tables grow: alternate
                if args.statements:
                    await statement_stats(pg.url, reset=True)
                calls_before = syscalls(groups) if args.syscalls else {}
                before = cpu_seconds(groups)
                started = time.monotonic()
                results = await loops(kind, ports, people, args.seconds, args.concurrency, args.lines, args.rate)
                elapsed = time.monotonic() - started
                after = cpu_seconds(groups)
                count = len(results["day"])
                label = "REST day (7 calls)" if kind == "rest" else "gateway day (1101 … 5203, 7 envelopes)"
                print(f"round {round_}: " + describe(label, count, elapsed, results["day"]))
                print(describe("  of which the settle step", count, elapsed, results["settle"]))
                print(cpu_report(before, after, count, "day"))
                if args.syscalls:
                    print(syscall_report(calls_before, syscalls(groups), count))
                if results["errors"]:
                    print(f"  errors: {len(results['errors'])}, first: {results['errors'][0]}")
                if args.statements:
                    for line in await statement_stats(pg.url, count=count, limit=args.statements):
                        print(line.replace("per settlement", "per day").replace("/settlement", "/day"))
                totals[kind][0] += share(before, after, count) * count
                totals[kind][1] += count
                totals[kind][2] += 1000 * sum(idle.values()) * elapsed
                totals[kind][3] += elapsed
        if args.floor:
            before = cpu_seconds(groups)
            started = time.monotonic()
            pace = args.rate or totals["gateway"][1] / max(totals["gateway"][3], 1e-9)  # the gateway path's days/s
            results = await loops("floor", ports, people, args.seconds, args.concurrency, args.lines, pace)
            elapsed, after, count = time.monotonic() - started, cpu_seconds(groups), len(results["day"])
            print("floor: " + describe("the same 7 envelopes refused before any work", count, elapsed, results["day"]))
            print(cpu_report(before, after, count, "day"))
            if results["errors"]:
                print(f"  errors: {len(results['errors'])}, first: {results['errors'][0]}")
            floor = 1000 * (after["gateway"] - before["gateway"]) / max(count, 1)
        rest = totals["rest"][0] / max(totals["rest"][1], 1)
        gateway = totals["gateway"][0] / max(totals["gateway"][1], 1)
        print(
            f"service CPU per settled day (eligibility + settlement + gateway + PostgreSQL): REST {rest:.2f} ms, "
            f"gateway {gateway:.2f} ms; ratio gateway ÷ REST = {gateway / rest:.2f} (aim ≤ 1.25)"
        )
        if args.floor:
            print(
                f"the gateway process only receiving, checking and answering a day's envelopes: {floor:.2f} ms a day; "
                f"a gateway doing nothing else would cost (REST + that) ÷ REST = {(rest + floor) / rest:.2f}"
            )
        rest_work = (totals["rest"][0] - totals["rest"][2]) / max(totals["rest"][1], 1)
        gateway_work = (totals["gateway"][0] - totals["gateway"][2]) / max(totals["gateway"][1], 1)
        print(
            f"the same without the idle CPU of the time each path ran: REST {rest_work:.2f} ms, gateway "
            f"{gateway_work:.2f} ms; ratio {gateway_work / rest_work:.2f}"
        )
    finally:
        if args.profile_gateway and "gateway" in procs:
            procs["gateway"].send_signal(signal.SIGINT)
            procs["gateway"].wait(20)
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
