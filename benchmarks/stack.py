"""Whole flows against the stack as users start it (`yibao up`), next to the settlement-only figure of the same run.

    .venv/bin/python benchmarks/stack.py [--seconds 20] [--concurrency 16] [--persons 400] [--no-settle-only]

Starts `python -m deploy.cli up --data-dir <tmp> --port-base <free> --no-demo` as a child process, exactly what
`yibao up` runs: durable PostgreSQL, the broker, every service (each with its relay and consumer). It waits
until the launcher says all services are ready, reads the keys it wrote (<data-dir>/api-keys.json: admin, ops, his
for H1), registers H1 and N persons through eligibility (half employees, half residents; a share with a confirmed
COVID case, whose settlements also emit `subsidy-due`), and credits the personal accounts of a quarter of them.

A flow is POST /v1/visits → POST /v1/visits/{id}/fees (10 lines) → POST /v1/visits/{id}/settle, at H1; a share
settles with `acct_used_flag: true` (a credited employee), a share is reversed right after the settle
(POST /v1/settlements/{id}/reverse, inside the flow's time). Before driving, a separate process subscribes to
reporting's SSE feed (GET /v1/events/stream, ops key) and stamps each event with the monotonic clock when it
arrives: the event → report lag of a settlement is that stamp minus the moment its settle answered 201, i.e. the
relay, the broker, reporting's consumer and its commit into the read models.

After a 3 s warm-up (and ANALYZE, as autovacuum would on a live database, and as benchmarks/settle.py does):
  phase 1  C closed loops for S seconds: the maximum load;
  phase 2  an open loop (Poisson arrivals) at 80 % of phase 1's flows/s for S seconds, latency from the
           scheduled start (a stalled stack cannot hide its queue).
After each phase it waits until reporting (the feed) and prepayment (its yibao_events_applied_total) have
applied every event of the phase: that wait after phase 1 says whether the consumers keep up at full load.
CPU per settlement is each process's own counters (psutil) from the phase's start until that drain, over the
launcher's process tree (postgres with its backends and helpers, the broker, each service) and the load generator
(this process and its feed reader). CPU per event of a consumer = its CPU ÷ (settlements + reversals + subsidy
events) of the phase; it includes that service's idle relay polls and, for reporting, serving the feed.

Then it stops the stack with SIGINT, checks that no process of it is left and its ports are closed, and runs
benchmarks/settle.py (same seconds and concurrency; PostgreSQL fsync off, eligibility and settlement only, no
consumers) for the settlement-only figure and the ratio stack flows/s ÷ settlement-only settlements/s.

This machine's speed varies 2-3x from hour to hour: only figures measured in one run compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.settle import Http, certno, describe, fee_items, percentile, visit_body  # noqa: E402
from deploy.embedded import port_open  # noqa: E402
from deploy.launcher import BROKER_OFFSET, PG_OFFSET, SERVICES  # noqa: E402

ACCT_SHARE = 0.20  # flows that settle with acct_used_flag
REVERSE_SHARE = 0.05  # flows reversed right after the settle
COVID_SHARE = 0.05  # persons with a confirmed COVID case (their settlements emit subsidy-due)
CREDIT = "20000.00"
WARM_SECONDS = 3.0
OPEN_LOAD = 0.80
DRAIN_TIMEOUT = 120.0
READY_TIMEOUT = 240.0
MAX_OPEN_IN_FLIGHT = 256
KEEPALIVE_SECONDS = 2.0  # an idle connection older than this is not reused (uvicorn closes them after 5 s)
AIMS = {"ratio": 0.80, "cpu_per_event_ms": 1.0, "lag_p99_ms": 500.0}
GROUPS = ("postgres", "broker", *SERVICES, "launcher", "load generator")
CONSUMERS = ("prepayment", "reporting")
EVENT_TOPICS = ("settled", "settlement-reversed", "subsidy-due")
OFFSETS = (*range(1, len(SERVICES) + 1), PG_OFFSET, BROKER_OFFSET)  # the launcher's ports above the base
SPEED_NOTE = "this machine's speed varies 2-3x from hour to hour: only figures measured in one run compare"


# ---------------------------------------------------------------------------------------------------------------
# the feed reader (a process of its own, so that the load generator's busy event loop does not delay the stamps)


def read_feed(url: str) -> None:
    """Print `<monotonic> <type> <setl_id>` for every event of reporting's SSE feed, resuming after a disconnect."""
    import httpx

    key = os.environ["YIBAO_BENCH_KEY"]
    last: str | None = None
    out = sys.stdout
    while True:
        headers = {"X-Api-Key": key}
        if last is not None:
            headers["Last-Event-ID"] = last
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=None)) as response:
                if response.status_code != 200:
                    out.write(f"error {response.status_code} {response.read()[:300]!r}\n")
                    out.flush()
                    return
                subscribed = False
                for line in response.iter_lines():
                    now = time.monotonic()
                    if not subscribed:  # the stream's first line ("retry: …") comes after the subscription
                        subscribed = True
                        out.write("ready\n")
                        out.flush()
                    if line.startswith("id: "):
                        last = line[4:].strip()
                    elif line.startswith("data: "):
                        event = json.loads(line[6:])
                        setl_id = (event.get("data") or {}).get("setl_id") or "-"
                        out.write(f"{now:.6f} {event.get('type')} {setl_id}\n")
                        out.flush()
        except httpx.HTTPError:
            time.sleep(0.5)


@dataclass
class Feed:
    """What the feed reader saw: arrival stamps of settled / reversed / subsidy events by setl_id."""

    proc: asyncio.subprocess.Process
    settled: dict[str, float] = field(default_factory=dict)
    reversed: dict[str, float] = field(default_factory=dict)
    subsidy: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None

    async def run(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line == "ready":
                self.ready.set()
                continue
            if line.startswith("error"):
                self.error = line
                self.ready.set()
                continue
            stamp, kind, setl_id = line.split(" ", 2)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind == "settled":
                self.settled.setdefault(setl_id, float(stamp))
            elif kind == "settlement-reversed":
                self.reversed.setdefault(setl_id, float(stamp))
            elif kind == "subsidy-due":
                self.subsidy.setdefault(setl_id, []).append(float(stamp))


# ---------------------------------------------------------------------------------------------------------------
# the launched stack


def free_port_base() -> int:
    """A port base whose service, PostgreSQL and broker ports are all free."""
    for _ in range(500):
        base = random.randrange(20000, 60000, 100)
        if not any(port_open(base + offset) for offset in OFFSETS):
            return base
    raise RuntimeError("no free port base found")


class Launched:
    """`python -m deploy.cli up --no-demo` as a child process, with its process tree and its keys."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.data_dir = work / "data"
        self.port_base = free_port_base()
        self.log_path = work / "yibao-up.log"
        self.proc: subprocess.Popen | None = None
        self.keys: dict[str, str] = {}
        self.ready_seconds: float | None = None
        self.members: dict[str, list[psutil.Process]] = {}

    def port(self, name: str) -> int:
        return self.port_base + 1 + SERVICES.index(name)

    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port_base + PG_OFFSET}/yibao"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("API_KEYS", "DATABASE_URL", "KAFKA_BOOTSTRAP")}
        command = [sys.executable, "-m", "deploy.cli", "up", "--data-dir", str(self.data_dir)]
        command += ["--port-base", str(self.port_base), "--no-demo"]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # stopped by our SIGINT, not by a Ctrl-C meant for this script first
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"yibao up exited with code {self.proc.returncode}:\n{self.output()[-3000:]}")
            found = re.search(r"all \w+ services ready in ([\d.]+) s", self.output())
            if found:
                self.ready_seconds = float(found.group(1))
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"yibao up not ready within {timeout:.0f} s:\n{self.output()[-3000:]}")
        for name in SERVICES:
            probe = Http(self.port(name))
            status, body = await probe.request("GET", "/readyz")
            probe.close()
            if status != 200:
                raise RuntimeError(f"{name} /readyz answered {status}: {body}")
        for key, spec in json.loads((self.data_dir / "api-keys.json").read_text()).items():
            self.keys.setdefault(spec["role"], key)
        self.members = self.processes()

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The launcher's children by what they are (each counted with its own children)."""
        assert self.proc is not None
        launcher = psutil.Process(self.proc.pid)
        groups: dict[str, list[psutil.Process]] = {"launcher": [launcher]}
        for child in launcher.children():
            try:
                command = " ".join(child.cmdline())
                name = next((s for s in SERVICES if f"services.{s}.app" in command), None)
                if name is None:
                    name = "postgres" if child.name().startswith("postgres") else "broker"
            except psutil.NoSuchProcess:
                continue
            groups.setdefault(name, []).append(child)
        return groups

    def restarted(self) -> list[str]:
        """Children whose process changed since start-up (the launcher restarted them: CPU figures incomplete)."""
        now = self.processes()
        pids = {name: [p.pid for p in procs] for name, procs in now.items()}
        return [name for name, procs in self.members.items() if pids.get(name) != [p.pid for p in procs]]

    def stop(self) -> list[str]:
        """SIGINT to the launcher, as Ctrl-C; what is left of its tree or its ports afterwards (killed then)."""
        if self.proc is None:
            return []
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        left = [p for p in tree if _alive(p)]
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = [p for p in tree if _alive(p)]
        ports = [self.port_base + o for o in OFFSETS if port_open(self.port_base + o)]
        problems = [f"process {p.pid} ({_label(p)}) still running; killed" for p in left]
        problems += [f"port {port} still open" for port in ports]
        for p in left:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            problems.append("the launcher did not exit within 90 s; killed")
        elif self.proc.returncode != 0:
            problems.append(f"the launcher exited with code {self.proc.returncode}")
        return problems


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _label(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:80]
    except psutil.Error:
        return "?"


def _cpu_of(proc: psutil.Process, *, family: bool) -> float:
    """User + system seconds of a process, and when `family`, of its descendants and its reaped children."""
    try:
        times = proc.cpu_times()
        total = times.user + times.system
        if family:
            total += times.children_user + times.children_system
            for child in proc.children(recursive=True):
                try:
                    t = child.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def cpu_snapshot(stack: Launched, feed_pid: int) -> dict[str, float]:
    """CPU seconds so far of every group of the stack and of the load generator; `machine` = all cores busy."""
    out = {name: 0.0 for name in GROUPS}
    for name, procs in stack.members.items():
        for proc in procs:
            out[name] = out.get(name, 0.0) + _cpu_of(proc, family=name != "launcher")
    out["load generator"] = _cpu_of(psutil.Process(), family=False)
    try:
        out["load generator"] += _cpu_of(psutil.Process(feed_pid), family=True)
    except psutil.NoSuchProcess:
        pass
    busy = psutil.cpu_times()
    out["machine"] = sum(getattr(busy, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    return out


async def applied(port: int) -> dict[str, float]:
    """yibao_events_applied_total of a service by topic (its /metrics)."""
    counts: dict[str, float] = {}
    for line in (await get_text(port, "/metrics")).splitlines():
        found = re.match(r'yibao_events_applied_total\{topic="([^"]+)"\} ([0-9.e+]+)', line)
        if found:
            counts[found.group(1)] = float(found.group(2))
    return counts


async def get_text(port: int, path: str) -> str:
    """A GET whose answer is text, on a connection of its own (Http.request parses JSON)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        plain, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            plain, rest = plain + rest[:size], rest[size + 2 :]
        body = plain
    return body.decode(errors="replace")


# ---------------------------------------------------------------------------------------------------------------
# setup and flows


@dataclass
class Person:
    psn_no: str
    certno: str
    employee: bool
    covid: bool = False
    credited: bool = False


@dataclass
class Phase:
    """What the load generator recorded in one phase."""

    name: str
    flows: list[float] = field(default_factory=list)
    settles: list[float] = field(default_factory=list)
    answered: dict[str, float] = field(default_factory=dict)  # setl_id → when the settle answered 201
    reversed: set[str] = field(default_factory=set)
    subsidies: int = 0  # subsidy-due events the phase's settlements (and reversals) emit
    acct: int = 0
    covid: int = 0
    errors: list[tuple] = field(default_factory=list)
    seconds: float = 0.0
    in_flight_max: int = 0
    tail: float = 0.0  # open loop: how long after its window the last flow ended
    started: float = 0.0
    ended_at: list[float] = field(default_factory=list)  # when each flow of `flows` ended

    @property
    def events(self) -> int:
        return len(self.answered) + len(self.reversed) + self.subsidies


class Load:
    """The persons, the keys and one flow."""

    def __init__(self, stack: Launched, people: list[Person]) -> None:
        self.port = stack.port("settlement")
        self.his = {"X-Api-Key": stack.keys["his"]}
        self.people = people
        self.credited = [p for p in people if p.credited]

    async def flow(self, http: Http, phase: Phase, started: float | None = None) -> None:
        acct = bool(self.credited) and random.random() < ACCT_SHARE
        person = random.choice(self.credited if acct else self.people)
        reverse = random.random() < REVERSE_SHARE
        started = time.monotonic() if started is None else started
        step = "visit"
        try:
            visit = visit_body((person.psn_no, person.certno), "H1")
            if person.covid:
                visit["diagnoses"] = ["U07.1"]
            status, body = await http.request("POST", "/v1/visits", visit, self.his)
            if status != 201:
                phase.errors.append((step, status, body))
                return
            mdtrt_id = body["mdtrt_id"]
            step = "fees"
            status, body = await http.request("POST", f"/v1/visits/{mdtrt_id}/fees", {"items": fee_items()}, self.his)
            if status != 201:
                phase.errors.append((step, status, body))
                return
            step = "settle"
            settle_started = time.monotonic()
            options = {"acct_used_flag": True} if acct else {}
            status, body = await http.request("POST", f"/v1/visits/{mdtrt_id}/settle", options, self.his)
            answered = time.monotonic()
            if status != 201:
                phase.errors.append((step, status, body))
                return
            setl_id = body["setl_id"]
            phase.answered[setl_id] = answered
            phase.settles.append(answered - settle_started)
            subsidy = Decimal(body.get("fin_subsidy_pay") or "0") > 0
            phase.subsidies += subsidy
            phase.acct += acct
            phase.covid += person.covid
            if reverse:
                step = "reverse"
                status, body = await http.request("POST", f"/v1/settlements/{setl_id}/reverse", None, self.his)
                if status != 200:
                    phase.errors.append((step, status, body))
                    return
                phase.reversed.add(setl_id)
                phase.subsidies += subsidy
            ended = time.monotonic()
            phase.flows.append(ended - started)
            phase.ended_at.append(ended)
        except Exception as exc:  # a broken connection: count it, start a new one
            phase.errors.append((step, type(exc).__name__, str(exc)[:200]))
            http.close()

    async def closed(self, phase: Phase, *, loops: int, seconds: float) -> None:
        """`loops` loops, each starting its next flow when the last one ended, for `seconds`."""

        async def loop(until: float) -> None:
            http = Http(self.port)
            try:
                while time.monotonic() < until:
                    await self.flow(http, phase)
            finally:
                http.close()

        started = phase.started = time.monotonic()
        await asyncio.gather(*(loop(started + seconds) for _ in range(loops)))
        phase.seconds = time.monotonic() - started
        phase.in_flight_max = loops

    async def open(self, phase: Phase, *, rate: float, seconds: float) -> None:
        """Flows started at Poisson arrivals of `rate`/s for `seconds`, whether or not earlier ones ended."""
        idle: list[tuple[Http, float]] = []  # connections and when they were last used
        running: set[asyncio.Task] = set()
        slots = asyncio.Semaphore(MAX_OPEN_IN_FLIGHT)

        async def one(scheduled: float) -> None:
            http, used = idle.pop() if idle else (Http(self.port), 0.0)
            if used and time.monotonic() - used > KEEPALIVE_SECONDS:  # the server may have closed it
                http.close()
            try:
                await self.flow(http, phase, started=scheduled)
            finally:
                idle.append((http, time.monotonic()))
                slots.release()

        started = phase.started = time.monotonic()
        scheduled, end = started, started + seconds
        while scheduled < end:
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one(scheduled))
            running.add(task)
            task.add_done_callback(running.discard)
            phase.in_flight_max = max(phase.in_flight_max, len(running))
            scheduled += random.expovariate(rate)
        await asyncio.gather(*running)
        phase.tail = time.monotonic() - end
        phase.seconds = seconds  # flows/s of an open loop: what arrived in its window (all of them completed)
        for http, _ in idle:
            http.close()


async def setup(stack: Launched, persons: int) -> list[Person]:
    """H1, the persons (a share with a COVID case), credits for a quarter of them; until settlement takes a visit."""
    admin = {"X-Api-Key": stack.keys["admin"]}
    http = Http(stack.port("eligibility"))
    institution = {
        "fixmedins_code": "H1",
        "fixmedins_name": "压测医院",
        "kind": "hospital",
        "level": 3,
        "affiliation": "city",
        "admdvs": "621000",
    }
    status, body = await http.request("POST", "/v1/institutions", institution, admin)
    assert status in (200, 201), body

    async def register(numbers: range) -> list[Person]:
        client, accounts, made = Http(stack.port("eligibility")), Http(stack.port("settlement")), []
        for n in numbers:
            number = certno("621022", n)
            person = {"certno": number, "psn_name": "压测", "insutype": "390", "insuplc_admdvs": "621000"}
            if n % 2:
                person.update(insutype="310", psn_type=random.choice(["in_service", "retired"]))
            status, body = await client.request("POST", "/v1/persons", person, admin)
            assert status == 201, body
            made.append(Person(body["psn_no"], number, employee=bool(n % 2)))
            if random.random() < COVID_SHARE:
                case = {
                    "psn_no": body["psn_no"],
                    "status": "confirmed",
                    "diagnosed_at": "2024-05-31T08:00:00+08:00",
                    "fixmedins_code": "H1",
                    "diagnosis": "U07.1 新型冠状病毒肺炎",
                    "published": True,
                }
                status, answer = await client.request("POST", "/v1/covid-cases", case, admin)
                assert status == 201, answer
                made[-1].covid = True
            if n % 4 == 1:
                credit = {"amount": CREDIT, "period": f"{date.today():%Y-%m}"}
                status, answer = await accounts.request("POST", f"/v1/accounts/{body['psn_no']}/credits", credit, admin)
                assert status == 201, answer
                made[-1].credited = True
        client.close()
        accounts.close()
        return made

    workers = 8
    batches = await asyncio.gather(*(register(range(i, persons, workers)) for i in range(workers)))
    people = [p for batch in batches for p in batch]
    probe = Http(stack.port("settlement"))
    for _ in range(300):  # until settlement's copy of the institutions has H1 (institution-changed)
        status, body = await probe.request(
            "POST",
            "/v1/visits",
            visit_body((people[0].psn_no, people[0].certno), "H1"),
            {"X-Api-Key": stack.keys["his"]},
        )
        if status == 201:
            return people
        await asyncio.sleep(0.1)
    raise RuntimeError(f"settlement never accepted a visit: {body}")


async def analyze(url: str) -> None:
    """Statistics for the planner, as autovacuum gives a live database within a minute (benchmarks/settle.py)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------------------------
# drain, figures, report


@dataclass
class Drained:
    ok: bool
    reporting: float | None
    prepayment: float | None
    missing: str = ""


async def drain(stack: Launched, feed: Feed, phase: Phase, base: dict[str, float], ended: float) -> Drained:
    """Wait until reporting (its feed) and prepayment (its applied counter) have every event of the phase."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    want = {
        "settled": len(phase.answered),
        "settlement-reversed": len(phase.reversed),
        "subsidy-due": phase.subsidies,
    }
    reporting_at = prepayment_at = None
    while time.monotonic() < deadline:
        if reporting_at is None:
            seen_subsidies = sum(len(feed.subsidy.get(s, ())) for s in phase.answered)
            if (
                all(s in feed.settled for s in phase.answered)
                and all(s in feed.reversed for s in phase.reversed)
                and seen_subsidies >= phase.subsidies
            ):
                stamps = [feed.settled[s] for s in phase.answered] + [feed.reversed[s] for s in phase.reversed]
                stamps += [t for s in phase.answered for t in feed.subsidy.get(s, ())]
                reporting_at = max([ended, *stamps]) - ended
        if prepayment_at is None:
            now = await applied(stack.port("prepayment"))
            if all(now.get(t, 0) - base.get(t, 0) >= want[t] for t in EVENT_TOPICS):
                prepayment_at = time.monotonic() - ended
        if reporting_at is not None and prepayment_at is not None:
            return Drained(True, reporting_at, prepayment_at)
        await asyncio.sleep(0.05)
    now = await applied(stack.port("prepayment"))
    missing = (
        f"reporting lacks {sum(s not in feed.settled for s in phase.answered)} settled, "
        f"{sum(s not in feed.reversed for s in phase.reversed)} reversed; prepayment applied "
        + ", ".join(f"{t} {now.get(t, 0) - base.get(t, 0):.0f}/{want[t]}" for t in EVENT_TOPICS)
    )
    return Drained(False, reporting_at, prepayment_at, missing)


def ms(values: list[float], q: float) -> float:
    return 1000 * percentile(values, q) if values else float("nan")


def lags(feed: Feed, phase: Phase) -> list[float]:
    return [feed.settled[s] - t for s, t in phase.answered.items() if s in feed.settled]


def timeline(phase: Phase) -> str:
    """Flows ended in each second of the phase and their median whole-flow time: a stall shows as a dip."""
    seconds: dict[int, list[float]] = {}
    for ended, took in zip(phase.ended_at, phase.flows):
        seconds.setdefault(int(ended - phase.started), []).append(took)
    return " ".join(
        f"{len(seconds.get(i, []))}/{1000 * statistics.median(seconds[i]):.0f}" if i in seconds else "0/-"
        for i in range(max(seconds, default=-1) + 1)
    )


def report_phase(
    phase: Phase, feed: Feed, drained: Drained, before: dict[str, float], after: dict[str, float], *, loops: int
) -> dict[str, float]:
    """Print the phase's figures; return the ones the aims need."""
    count = len(phase.flows)
    print(describe("whole flow (visit+10 lines+settle)", count, phase.seconds, phase.flows or [0.0]))
    print(describe("  of which POST .../settle", count, phase.seconds, phase.settles or [0.0]))
    lag = lags(feed, phase)
    print(
        f"  event → report lag (settle 201 → `settled` on reporting's SSE feed): p50 {ms(lag, 0.5):.1f} ms  "
        f"p95 {ms(lag, 0.95):.1f} ms  p99 {ms(lag, 0.99):.1f} ms  max {1000 * max(lag or [0.0]):.1f} ms  "
        f"(n={len(lag)})"
    )
    if drained.ok:
        print(
            f"  drained: reporting had every event {drained.reporting:.2f} s after the last flow ended, "
            f"prepayment {drained.prepayment:.2f} s"
        )
    else:
        print(f"  NOT drained within {DRAIN_TIMEOUT:.0f} s: {drained.missing}")
    settlements = len(phase.answered)
    spent = {name: after[name] - before[name] for name in GROUPS}
    parts = ", ".join(f"{name} {1000 * spent[name] / max(settlements, 1):.1f}" for name in GROUPS)
    stack_total = sum(v for k, v in spent.items() if k != "load generator")
    print(
        f"  CPU ms per settlement: {parts}; stack {1000 * stack_total / max(settlements, 1):.1f}, "
        f"all {1000 * sum(spent.values()) / max(settlements, 1):.1f}"
    )
    window = after["time"] - before["time"]
    cores = psutil.cpu_count() or 1
    others = max(0.0, (after["machine"] - before["machine"]) - sum(spent.values()))
    print(
        f"  cores busy over the {window:.1f} s until drained: stack + load generator "
        f"{100 * sum(spent.values()) / (window * cores):.0f} %, other processes on the machine "
        f"{100 * others / (window * cores):.0f} % (of {cores} cores)"
    )
    per_event = {name: 1000 * spent[name] / max(phase.events, 1) for name in CONSUMERS}
    print(
        "  CPU ms per event: "
        + ", ".join(f"{name} {per_event[name]:.2f}" for name in CONSUMERS)
        + f"  (events: {settlements} settled + {len(phase.reversed)} reversed + {phase.subsidies} subsidy-due"
        f" = {phase.events})"
    )
    print(
        f"  mix: {phase.acct} with personal account, {len(phase.reversed)} reversed, {phase.covid} COVID; "
        f"most flows in flight {phase.in_flight_max}; errors {len(phase.errors)}"
        + (f", first: {phase.errors[0]}" if phase.errors else "")
    )
    print("  by second (flows ended / their median ms): " + timeline(phase))
    overloaded = phase.tail > 1.0 or phase.in_flight_max > 4 * loops
    if overloaded:
        print(
            f"  OVERLOADED: the stack fell behind the offered rate (at most {phase.in_flight_max} flows in flight, "
            f"{loops} in phase 1; the last ended {phase.tail:.1f} s after the window): the latencies are queueing"
        )
    if others / (window * cores) > 0.2:
        print(
            f"  NOTE: other processes took {100 * others / (window * cores):.0f} % of the cores during this phase; "
            "the stack's figures are lower than on an idle machine"
        )
    return {
        "rate": count / phase.seconds if phase.seconds else 0.0,
        "lag_p99": ms(lag, 0.99),
        "cpu": 1000 * sum(spent.values()) / max(settlements, 1),
        "others": others / (window * cores),
        "overloaded": float(overloaded),
        **{f"cpu_{name}": per_event[name] for name in CONSUMERS},
    }


async def run_phase(
    stack: Launched, feed: Feed, load: Load, phase: Phase, drive, feed_pid: int
) -> tuple[Drained, dict[str, float], dict[str, float]]:
    base = await applied(stack.port("prepayment"))
    before = {**cpu_snapshot(stack, feed_pid), "time": time.monotonic()}
    await drive
    ended = time.monotonic()
    drained = await drain(stack, feed, phase, base, ended)
    after = {**cpu_snapshot(stack, feed_pid), "time": time.monotonic()}
    return drained, before, after


RECOVERED_LAG = 2.0  # seconds of event → report lag that count as caught up
RECOVERY_AIM = 30.0
KILL_AFTER = 10.0
AFTER_KILL = 50.0


async def broker_restart_phase(stack: Launched, feed: Feed, load: Load, *, rate: float, reader_pid: int) -> dict:
    """An open loop at `rate` for KILL_AFTER + AFTER_KILL seconds; the broker is killed (SIGKILL) KILL_AFTER seconds
    in, and `yibao up` starts it again with an empty log. Prints the lag second by second around the kill and returns
    when the lag was under RECOVERED_LAG seconds again for good."""
    print(
        f"\nphase 3: open loop at {rate:.1f} flows/s for {KILL_AFTER + AFTER_KILL:.0f} s; the broker killed "
        f"{KILL_AFTER:.0f} s in (SIGKILL; the launcher starts it again, its log empty)"
    )
    phase = Phase("broker restart")

    async def kill_broker() -> float:
        await asyncio.sleep(KILL_AFTER)
        for proc in stack.processes().get("broker", []):
            proc.kill()
        return time.monotonic()

    killer = asyncio.create_task(kill_broker())
    drained, before, after = await run_phase(
        stack, feed, load, phase, load.open(phase, rate=rate, seconds=KILL_AFTER + AFTER_KILL), reader_pid
    )
    killed = await killer
    worst: dict[int, float] = {}  # second of answer relative to the kill → worst lag of settlements answered then
    for setl_id, answered in phase.answered.items():
        lag = feed.settled.get(setl_id, float("inf")) - answered
        second = int(answered - killed) if answered >= killed else -1 - int(killed - answered)
        worst[second] = max(worst.get(second, 0.0), lag)
    late = [s for s, lag in worst.items() if s >= 0 and lag >= RECOVERED_LAG]
    back = (max(late) + 1) if late else 0.0
    shown = " ".join(
        f"{s:+d}:{'lost' if worst[s] == float('inf') else f'{worst[s]:.1f}'}" for s in sorted(worst) if -3 <= s <= 40
    )
    print(f"  worst lag (s) of the settlements answered in each second around the kill (0 = the kill): {shown}")
    print(
        f"  every settlement reached reporting: {'yes' if drained.ok else 'NO: ' + str(drained.missing)}; errors "
        f"{len(phase.errors)}" + (f", first: {phase.errors[0]}" if phase.errors else "")
    )
    return {"back": back if drained.ok else None}


def settle_only(seconds: float, concurrency: int) -> tuple[dict[str, float], list[str]]:
    """benchmarks/settle.py as a subprocess: its settlements/s and p99s, and its lines to show."""
    command = [sys.executable, str(REPO / "benchmarks" / "settle.py"), "--seconds", str(seconds)]
    command += ["--concurrency", str(concurrency)]
    ours, busy, started = psutil.Process().cpu_times(), psutil.cpu_times(), time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=seconds + 600)
    ours_after, busy_after, window = psutil.Process().cpu_times(), psutil.cpu_times(), time.monotonic() - started
    figures: dict[str, float] = {}
    shown: list[str] = []
    for line in done.stdout.splitlines():
        if line.startswith("settlement (visit+10 lines+settle)"):
            figures["rate"] = float(re.search(r"([\d.]+)/s", line).group(1))
            figures["p99"] = float(re.search(r"p99\s+([\d.]+) ms", line).group(1))
            shown.append(line)
        elif line.startswith("  of which POST .../settle"):
            shown.append(line)
        elif line.startswith("  CPU ms per settlement") and "cpu" not in figures:
            figures["cpu"] = float(re.search(r"all ([\d.]+)", line).group(1))
            shown.append(line)
        elif line.startswith("setup:") or line.startswith("  errors"):
            shown.append(line)
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    machine = sum(getattr(busy_after, f, 0.0) - getattr(busy, f, 0.0) for f in fields)
    spent = sum(getattr(ours_after, f) - getattr(ours, f) for f in ("children_user", "children_system"))
    figures["others"] = max(0.0, machine - spent) / (window * (psutil.cpu_count() or 1))
    if "rate" not in figures:
        raise RuntimeError(
            f"benchmarks/settle.py failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return figures, shown


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="closed loops in phase 1 (and settle.py's)")
    parser.add_argument("--persons", type=int, default=400)
    parser.add_argument("--no-settle-only", action="store_true", help="skip the settlement-only comparison")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs (printed)")
    parser.add_argument(
        "--broker-restart",
        type=float,
        default=0,
        metavar="RATE",
        help="then a phase at RATE flows/s (e.g. 46) in which the broker is killed (SIGKILL, back empty): how long "
        "until the event → report lag is under 2 s again (aim: within 30 s)",
    )
    args = parser.parse_args()

    print(f"note: {SPEED_NOTE}.")
    print(f"machine: {psutil.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the start")
    work = Path(tempfile.mkdtemp(prefix="yibao-stack-"))
    stack = Launched(work)
    reader: asyncio.subprocess.Process | None = None
    figures: list[dict[str, float]] = []
    recovery: dict = {}
    drained_full: Drained | None = None
    problems: list[str] = []
    completed = False
    try:
        stack.start()
        await stack.wait_ready()
        people = await setup(stack, args.persons)
        print(
            f"stack: `python -m deploy.cli up --data-dir {stack.data_dir} --port-base {stack.port_base} --no-demo` "
            f"(durable PostgreSQL, broker, {', '.join(SERVICES)}; relays and consumers), ready in "
            f"{stack.ready_seconds} s"
        )
        print(
            f"setup: H1, {len(people)} persons ({sum(p.employee for p in people)} employees, "
            f"{sum(p.credited for p in people)} accounts credited {CREDIT}, {sum(p.covid for p in people)} with a "
            f"confirmed COVID case); flows at H1: {ACCT_SHARE:.0%} with personal account, {REVERSE_SHARE:.0%} "
            f"reversed right after the settle (inside the flow's time)"
        )
        reader = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--read-feed",
            f"http://127.0.0.1:{stack.port('reporting')}/v1/events/stream",
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "YIBAO_BENCH_KEY": stack.keys["ops"]},
        )
        feed = Feed(reader)
        feed_task = asyncio.create_task(feed.run())
        await asyncio.wait_for(feed.ready.wait(), 30)
        if feed.error:
            raise RuntimeError(f"the event stream refused: {feed.error}")
        load = Load(stack, people)

        warm = Phase("warm-up")
        await load.closed(warm, loops=args.concurrency, seconds=WARM_SECONDS)
        if not (await drain(stack, feed, warm, {}, time.monotonic())).ok:
            print("WARNING: the warm-up's events were not all applied; the figures below include its backlog")
        await analyze(stack.pg_url)

        print(f"\nphase 1: closed loop, {args.concurrency} loops, {args.seconds:.0f} s (the maximum load)")
        full = Phase("full")
        drained_full, before, after = await run_phase(
            stack, feed, load, full, load.closed(full, loops=args.concurrency, seconds=args.seconds), reader.pid
        )
        figures.append(report_phase(full, feed, drained_full, before, after, loops=args.concurrency))

        rate = OPEN_LOAD * figures[0]["rate"]
        print(
            f"\nphase 2: open loop, Poisson arrivals at {rate:.1f} flows/s ({OPEN_LOAD:.0%} of phase 1), "
            f"{args.seconds:.0f} s"
        )
        part = Phase("80%")
        drained_part, before, after = await run_phase(
            stack, feed, load, part, load.open(part, rate=rate, seconds=args.seconds), reader.pid
        )
        figures.append(report_phase(part, feed, drained_part, before, after, loops=args.concurrency))
        if args.broker_restart:
            recovery = await broker_restart_phase(stack, feed, load, rate=args.broker_restart, reader_pid=reader.pid)
        restarted = [n for n in stack.restarted() if not (args.broker_restart and n == "broker")]
        if restarted:
            print(f"  WARNING: restarted by the launcher during the run: {', '.join(restarted)} (CPU incomplete)")
        reader.terminate()
        await reader.wait()
        feed_task.cancel()
        completed = True
    finally:
        if reader is not None and reader.returncode is None:
            reader.kill()
            await reader.wait()
        stopped_at = time.monotonic()
        problems = stack.stop()
        stop_seconds = time.monotonic() - stopped_at
        if not completed:
            print(f"stopped the stack ({'; '.join(problems) or 'nothing left'}); its data and logs are in {work}")
    print(
        f"\nstop: SIGINT to `yibao up`: exited in {stop_seconds:.1f} s; "
        + ("nothing left (every process of its tree gone, its ports closed)" if not problems else "; ".join(problems))
    )
    if args.keep:
        print(f"kept: {work} (launcher output yibao-up.log, services' logs in data/logs)")
    else:
        shutil.rmtree(work, ignore_errors=True)

    ratio = cpu_ratio = None
    if not args.no_settle_only:
        print(
            f"\nsettlement-only, same run: benchmarks/settle.py --seconds {args.seconds:g} "
            f"--concurrency {args.concurrency}"
        )
        print("  (PostgreSQL fsync off, eligibility + settlement only, no relay consumers, 3 institutions)")
        only, lines = settle_only(args.seconds, args.concurrency)
        for line in lines:
            print(f"  {line}")
        ratio = figures[0]["rate"] / only["rate"]
        cpu_ratio = only["cpu"] / figures[0]["cpu"] if only.get("cpu") and figures[0]["cpu"] else None

    print("\naims (this run):")
    if ratio is not None:
        print(
            f"  stack flows/s ÷ settlement-only settlements/s = {figures[0]['rate']:.1f} ÷ {only['rate']:.1f} = "
            f"{ratio:.2f}   aim ≥ {AIMS['ratio']:.2f}   {verdict(ratio >= AIMS['ratio'])}"
        )
        print(
            f"    other processes took {100 * figures[0]['others']:.0f} % of the cores during phase 1, "
            f"{100 * only['others']:.0f} % during settle.py's whole run (its start, settling and baseline)"
        )
        if cpu_ratio is not None:
            print(
                f"    the same ratio from CPU per settlement (less sensitive to the other processes): "
                f"{only['cpu']:.1f} ÷ {figures[0]['cpu']:.1f} ms = {cpu_ratio:.2f}"
            )
    for name in CONSUMERS:
        worst = max(f[f"cpu_{name}"] for f in figures)
        print(
            f"  {name} CPU per event: {figures[0][f'cpu_{name}']:.2f} ms at full load, "
            f"{figures[1][f'cpu_{name}']:.2f} ms at {OPEN_LOAD:.0%}   aim ≤ {AIMS['cpu_per_event_ms']:.1f} ms   "
            f"{verdict(worst <= AIMS['cpu_per_event_ms'])}"
        )
    lag99 = figures[1]["lag_p99"]
    print(
        f"  event → report lag p99 at {OPEN_LOAD:.0%} load: {lag99:.0f} ms   aim < {AIMS['lag_p99_ms']:.0f} ms   "
        f"{verdict(lag99 < AIMS['lag_p99_ms'])}"
        + ("  (the open loop fell behind: see phase 2)" if figures[1]["overloaded"] else "")
    )
    assert drained_full is not None
    print(
        "  consumers drained after full load: "
        + (
            f"reporting in {drained_full.reporting:.2f} s, prepayment in {drained_full.prepayment:.2f} s"
            if drained_full.ok
            else f"not within {DRAIN_TIMEOUT:.0f} s"
        )
        + f"   aim: they catch up   {verdict(drained_full.ok)}"
    )
    if args.broker_restart:
        back = recovery.get("back")
        print(
            f"  after the broker was killed and came back empty: lag under {RECOVERED_LAG:.0f} s again "
            + (f"{back:.0f} s after the kill" if back is not None else "never in the phase")
            + f"   aim ≤ {RECOVERY_AIM:.0f} s   {verdict(back is not None and back <= RECOVERY_AIM)}"
        )
    print(f"  stack stopped cleanly   {verdict(not problems)}")
    print(f"note: {SPEED_NOTE}.")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--read-feed":
        read_feed(sys.argv[2])
    else:
        sys.exit(asyncio.run(main()))
