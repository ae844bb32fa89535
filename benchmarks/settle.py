"""End-to-end settlement throughput and latency over HTTP, on this machine.

    .venv/bin/python benchmarks/settle.py [--seconds 20] [--concurrency 16] [--workers 1] [--durable]

Starts embedded PostgreSQL and the broker (deploy.embedded), then the eligibility and settlement
services as real uvicorn processes (settlement with --workers N), registers institutions and persons
through the APIs, and drives C in-flight loops of: POST /v1/visits → POST /v1/visits/{id}/fees
(10 lines) → POST /v1/visits/{id}/settle. It prints settlements per second and the latency
distribution of the whole loop and of the settle call, then measures a baseline endpoint of the same
app that reads one row (GET /v1/settlements/{setl_id}) at the same concurrency, and the ratio.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams (httpx would spend
more CPU than the services on this 2-core machine). PostgreSQL runs with fsync off unless --durable.
It also prints the CPU each process spent per settlement (and per baseline read): on 2 cores the
sum is the ceiling, e.g. ~6.5 ms of CPU per settlement (settlement ~3.2, PostgreSQL ~2.1,
eligibility ~0.9) means at most ~300 settlements/s with nothing else running. `--statements N` adds
PostgreSQL's own account (pg_stat_statements): statements per settlement and the N costliest.
After the 3 s warm-up it runs ANALYZE, as autovacuum would on a live database within a minute.
One settlement worker is the default: a second one competes for the same two cores (try --workers 2).
16 loops in flight keep both cores busy; more only lengthen the queue (and the latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy.embedded import EmbeddedBroker, EmbeddedPostgres, free_port  # noqa: E402
from shared.server import uvicorn_command  # noqa: E402
from shared.testing import ADMIN_KEY, HIS_KEYS, service_env  # noqa: E402

INSTITUTIONS = {"H1": (3, "city", "621000"), "H2": (2, "county", "621022"), "H3": (1, "county", "621027")}


class Http:
    """One keep-alive HTTP/1.1 connection; JSON in, (status, JSON) out."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, object]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, (json.loads(data) if data else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def certno(region: str, n: int) -> str:
    brdy = date(1950, 1, 1) + timedelta(days=n % 18000)
    body = f"{region}{brdy:%Y%m%d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU time (user + system) of each group of processes and their children, now, with the children that have
    ended: a PostgreSQL backend whose connection a pool closed (idle for a minute) takes its CPU time to the
    postmaster's reaped-children times (without them a count can even go backwards)."""
    out = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                root = psutil.Process(pid)
                times = root.cpu_times()
                total += times.user + times.system
                if pid != os.getpid():
                    total += times.children_user + times.children_system
                    for child in root.children(recursive=True):
                        child_times = child.cpu_times()
                        total += child_times.user + child_times.system
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def cpu_report(before: dict[str, float], after: dict[str, float], count: int, what: str) -> str:
    parts = [f"{name} {1000 * (after[name] - before[name]) / max(count, 1):.1f}" for name in before]
    total = sum(after[n] - before[n] for n in before)
    return f"  CPU ms per {what}: " + ", ".join(parts) + f"; all {1000 * total / max(count, 1):.1f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(name: str, count: int, seconds: float, latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return (
        f"{name:<34} {count / seconds:8.1f}/s  n={count:<6} p50 {percentile(ms, 0.5):6.1f} ms  "
        f"p95 {percentile(ms, 0.95):6.1f} ms  p99 {percentile(ms, 0.99):6.1f} ms  max {max(ms):7.1f} ms  "
        f"mean {statistics.fmean(ms):6.1f} ms"
    )


def start_service(name: str, port: int, env: dict, log_dir: Path, workers: int) -> subprocess.Popen:
    out = open(log_dir / f"{name}.log", "ab")
    args = uvicorn_command(name, port=port, workers=workers, log_level="warning")
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


async def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service on {port} exited")
        try:
            status, _ = await Http(port).request("GET", "/readyz")
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"service on {port} not ready")


async def setup(eligibility: int, settlement: int, persons: int) -> list[tuple[str, str]]:
    admin = {"X-Api-Key": ADMIN_KEY}
    http = Http(eligibility)
    for code, (level, affiliation, admdvs) in INSTITUTIONS.items():
        status, body = await http.request(
            "POST",
            "/v1/institutions",
            {
                "fixmedins_code": code,
                "fixmedins_name": code,
                "kind": "hospital",
                "level": level,
                "affiliation": affiliation,
                "admdvs": admdvs,
            },
            admin,
        )
        assert status in (200, 201), body
    people = []
    run = random.randrange(900)
    for n in range(persons):
        number = certno("621022", run * 1000 + n)
        person = {"certno": number, "psn_name": "压测", "insutype": "390", "insuplc_admdvs": "621000"}
        if n % 2:
            person.update(insutype="310", psn_type=random.choice(["in_service", "retired"]))
        status, body = await http.request("POST", "/v1/persons", person, admin)
        assert status == 201, body
        people.append((body["psn_no"], number))
    probe = Http(settlement)
    for _ in range(300):  # until the settlement service's local copy of institutions has them
        status, body = await probe.request(
            "POST", "/v1/visits", visit_body(people[0], "H1"), {"X-Api-Key": HIS_KEYS["H1"]}
        )
        if status == 201:
            return people
        await asyncio.sleep(0.1)
    raise RuntimeError(f"settlement never accepted a visit: {body}")


def visit_body(person: tuple[str, str], code: str) -> dict:
    return {
        "psn_no": person[0],
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person[1],
        "fixmedins_code": code,
        "med_type": "11",
        "begntime": "2024-06-01T09:00:00+08:00",
        "diagnoses": ["J06.9"],
    }


def fee_items(lines: int = 10) -> list[dict]:
    """The fee lines of one visit: classes A, B, C in turn, random prices and counts."""
    return [
        {
            "feedetl_sn": str(i),
            "med_list_codg": f"T{'ABC'[i % 3]}{i:03d}",
            "med_list_name": "药品",
            "item_class": "ABC"[i % 3],
            "pric": f"{random.randint(5, 120)}.{random.randint(0, 99):02d}",
            "cnt": str(random.randint(1, 3)),
            "fee_ocur_time": "2024-06-01T09:10:00+08:00",
        }
        for i in range(lines)
    ]


async def settle_loop(port: int, people: list, until: float, results: dict, serial: list[int]) -> None:
    http = Http(port)
    while time.monotonic() < until:
        person = random.choice(people)
        code = random.choice(list(INSTITUTIONS))
        headers = {"X-Api-Key": HIS_KEYS[code]}
        started = time.monotonic()
        status, body = await http.request("POST", "/v1/visits", visit_body(person, code), headers)
        if status != 201:
            results["errors"].append((status, body))
            continue
        mdtrt_id = body["mdtrt_id"]
        serial[0] += 1
        status, body = await http.request("POST", f"/v1/visits/{mdtrt_id}/fees", {"items": fee_items()}, headers)
        if status != 201:
            results["errors"].append((status, body))
            continue
        settle_started = time.monotonic()
        status, body = await http.request("POST", f"/v1/visits/{mdtrt_id}/settle", {}, headers)
        done = time.monotonic()
        if status != 201:
            results["errors"].append((status, body))
            continue
        results["loop"].append(done - started)
        results["settle"].append(done - settle_started)
        results["ids"].append((body["setl_id"], code))


async def read_loop(port: int, ids: list, until: float, latencies: list[float], errors: list) -> None:
    http = Http(port)
    while time.monotonic() < until:
        setl_id, code = random.choice(ids)
        started = time.monotonic()
        status, body = await http.request("GET", f"/v1/settlements/{setl_id}", None, {"X-Api-Key": HIS_KEYS[code]})
        if status != 200:
            errors.append((status, body))
            continue
        latencies.append(time.monotonic() - started)


async def analyze(url: str) -> None:
    """Statistics for the planner after the warm-up, as autovacuum gives any live database within a minute
    (services/settlement/pgconn.py: plans made from an empty database's statistics scan whole tables)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def statement_stats(url: str, *, reset: bool = False, count: int = 1, limit: int = 0) -> list[str]:
    """pg_stat_statements: reset it, or the statements by total time with calls and ms per settlement."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        if reset:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
            return []
        rows = await conn.fetch(
            "SELECT calls, total_exec_time + total_plan_time AS ms, query FROM pg_stat_statements ORDER BY ms DESC"
        )
    finally:
        await conn.close()
    calls, total = sum(r["calls"] for r in rows), sum(r["ms"] for r in rows)
    lines = [
        f"  PostgreSQL: {calls / max(count, 1):.1f} statements and {total / max(count, 1):.2f} ms of execution "
        f"per settlement; the top {limit}:"
    ]
    for r in rows[:limit]:
        query = " ".join(r["query"].split())[:110]
        lines.append(f"    {r['calls'] / max(count, 1):5.2f}/settlement {r['ms'] / max(count, 1):6.3f} ms  {query}")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="settlement uvicorn workers")
    parser.add_argument("--persons", type=int, default=400)
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync and synchronous_commit on")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="also print the N statements that took PostgreSQL the most time (pg_stat_statements)",
    )
    parser.add_argument("--tcp", action="store_true", help="services reach PostgreSQL over TCP, not its Unix socket")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="yibao-bench-"))
    pg = EmbeddedPostgres(
        work / "pg",
        free_port(),
        fast=not args.durable,
        settings={"shared_preload_libraries": "pg_stat_statements"} if args.statements else None,
        unix_socket=not args.tcp,
    )
    broker = EmbeddedBroker(free_port(), log_dir=work)
    procs: list[subprocess.Popen] = []
    try:
        pg.start()
        broker.start()
        ports = {"eligibility": free_port(), "settlement": free_port()}
        env = service_env(
            database_url=pg.local_url,
            bootstrap=broker.bootstrap,
            ELIGIBILITY_URL=f"http://127.0.0.1:{ports['eligibility']}",
            DB_POOL_SIZE="10",
            RELAY_POLL_SECONDS="0.25",
        )
        for name in ("eligibility", "settlement"):
            procs.append(start_service(name, ports[name], env, work, args.workers if name == "settlement" else 1))
        for name, proc in zip(("eligibility", "settlement"), procs):
            await wait_ready(ports[name], proc)
        people = await setup(ports["eligibility"], ports["settlement"], args.persons)
        print(
            f"setup: {len(people)} persons, settlement workers {args.workers}, concurrency {args.concurrency}, "
            f"PostgreSQL {'durable' if args.durable else 'fsync off'}; cores {os.cpu_count()}"
        )

        groups = {
            "settlement": [procs[1].pid],
            "eligibility": [procs[0].pid],
            "postgres": [pg.proc.pid],
            "broker": [broker.proc.pid],
            "load generator": [os.getpid()],
        }
        warm = {"loop": [], "settle": [], "ids": [], "errors": []}
        await asyncio.gather(
            *(
                settle_loop(ports["settlement"], people, time.monotonic() + 3, warm, [0])
                for _ in range(args.concurrency)
            )
        )
        await analyze(pg.url)
        results = {"loop": [], "settle": [], "ids": [], "errors": []}
        if args.statements:
            await statement_stats(pg.url, reset=True)
        cpu_before = cpu_seconds(groups)
        started = time.monotonic()
        await asyncio.gather(
            *(
                settle_loop(ports["settlement"], people, started + args.seconds, results, [0])
                for _ in range(args.concurrency)
            )
        )
        elapsed = time.monotonic() - started
        cpu_after = cpu_seconds(groups)
        count = len(results["loop"])
        print(describe("settlement (visit+10 lines+settle)", count, elapsed, results["loop"]))
        print(describe("  of which POST .../settle", count, elapsed, results["settle"]))
        print(cpu_report(cpu_before, cpu_after, count, "settlement"))
        if results["errors"]:
            print(f"  errors: {len(results['errors'])}, first: {results['errors'][0]}")
        if args.statements:
            for line in await statement_stats(pg.url, count=count, limit=args.statements):
                print(line)

        latencies: list[float] = []
        errors: list = []
        ids = results["ids"] + warm["ids"]
        cpu_before = cpu_seconds(groups)
        started = time.monotonic()
        await asyncio.gather(
            *(
                read_loop(ports["settlement"], ids, started + args.baseline_seconds, latencies, errors)
                for _ in range(args.concurrency)
            )
        )
        base_elapsed = time.monotonic() - started
        cpu_after = cpu_seconds(groups)
        print(describe("baseline GET /v1/settlements/{id}", len(latencies), base_elapsed, latencies))
        print(cpu_report(cpu_before, cpu_after, len(latencies), "read"))
        if errors:
            print(f"  errors: {len(errors)}, first: {errors[0]}")
        settle_rate, base_rate = count / elapsed, len(latencies) / base_elapsed
        print(
            f"ratio: settlements/s ÷ baseline reads/s = {settle_rate / base_rate:.2f}; "
            f"HTTP requests/s during settling = {3 * settle_rate:.0f} (plus {2 * settle_rate:.0f} eligibility "
            f"snapshot calls/s)"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
