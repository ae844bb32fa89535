"""`yibao up` as a process for the chaos test: start it, find its children, kill them, stop it.

The children are found from the launcher itself (its direct children in /proc, by their command lines), the way
an operator would find them; the launcher is not changed and not imported.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from deploy.embedded import port_open

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("eligibility", "settlement", "prepayment", "reporting")
TARGETS = ("broker", "postgres", *SERVICES)
PG_OFFSET = 32  # the launcher's layout (README: PostgreSQL on B+32, the broker on B+92)
BROKER_OFFSET = 92
OFFSETS = (1, 2, 3, 4, PG_OFFSET, BROKER_OFFSET)


def free_port_base() -> int:
    """A base whose ports are free and below the kernel's ephemeral range (as tests/e2e/test_yibao_up.py)."""
    for _ in range(100):
        base = random.randrange(20000, 32600, 100)
        if not any(port_open(base + off) for off in OFFSETS):
            return base
    raise RuntimeError("no free port base")


def _role_of(proc: psutil.Process) -> str | None:
    """Which part of the stack a child of the launcher is (None: not one we know)."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    joined = " ".join(cmdline)
    for name in SERVICES:
        if f"services.{name}.app:app" in joined:
            return name
    if cmdline and Path(cmdline[0]).name == "postgres" and "-D" in cmdline:
        return "postgres"
    if "broker" in cmdline and "--listener-url" in cmdline:
        return "broker"
    return None


@dataclass
class Launched:
    """A running `yibao up --no-demo` with its own data directory and port base."""

    proc: subprocess.Popen
    base: int
    data_dir: Path
    log: Path
    repo: Path
    seen_pids: set[int] = field(default_factory=set)

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{self.base + i}" for i, name in enumerate(SERVICES, start=1)}

    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.base + PG_OFFSET}/yibao"

    def keys(self) -> dict[str, str]:
        """role → key (his → the H1 key, as `yibao up` writes them)."""
        out: dict[str, str] = {}
        for key, spec in json.loads((self.data_dir / "api-keys.json").read_text()).items():
            out.setdefault(spec["role"], key)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> dict[str, psutil.Process]:
        """The launcher's live children by part: postgres, broker and the four services."""
        found: dict[str, psutil.Process] = {}
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return found
        for child in kids:
            role = _role_of(child)
            if role is not None:
                found[role] = child
                self.seen_pids.add(child.pid)
        return found

    def kill(self, target: str) -> list[int]:
        """SIGKILL one part; PostgreSQL with all its processes (postmaster and backends), like a crash."""
        victim = self.children().get(target)
        if victim is None:
            return []
        family = [victim]
        if target == "postgres":
            try:
                family += victim.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        killed = []
        for proc in family:
            try:
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
            except psutil.NoSuchProcess:
                pass
        return killed

    def ready(self, client: httpx.Client) -> dict[str, bool]:
        out = {}
        for name, url in self.urls.items():
            try:
                out[name] = client.get(f"{url}/readyz").status_code == 200
            except httpx.HTTPError:
                out[name] = False
        return out

    def wait_ready(self, timeout: float) -> float:
        """Seconds until all four /readyz answer 200 (AssertionError with the launcher's log otherwise)."""
        started = time.monotonic()
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - started < timeout:
                assert self.alive(), f"yibao up exited ({self.proc.returncode}):\n{self.tail()}"
                if all(self.ready(client).values()):
                    return time.monotonic() - started
                time.sleep(0.25)
        raise AssertionError(f"not all ready within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def launcher_lines(self) -> list[str]:
        """What the launcher said about deaths and restarts, each line with how often (it both says and logs the
        death of PostgreSQL or the broker: two lines a death)."""
        words = ("died", "exited", "restarted", "error")
        seen = Counter(line for line in self.tail(200_000).splitlines() if any(w in line for w in words))
        return [f"{line} ×{n}" if n > 1 else line for line, n in seen.items()]

    def stop(self) -> list[int]:
        """Ctrl-C to the launcher; SIGKILL to it and to the children it started if it does not stop in time.

        Returns the pids still alive afterwards (only processes this stack started)."""
        try:
            family = {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            family = set()
        family |= self.seen_pids
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        time.sleep(0.5)
        left = []
        for pid in family:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        return left


def start_stack(workdir: Path, *, repo: Path = REPO) -> Launched:
    """`python -m deploy.cli up --data-dir … --port-base … --no-demo`, run from `repo` (its code)."""
    base = free_port_base()
    data_dir = workdir / "data"
    log = workdir / "yibao-up.log"
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEYS", "DATABASE_URL", "KAFKA_BOOTSTRAP")}
    env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "up", "--data-dir", str(data_dir), "--port-base", str(base)]
            + ["--no-demo"],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Launched(proc=proc, base=base, data_dir=data_dir, log=log, repo=repo)
