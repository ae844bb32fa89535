"""`yibao up` as the e2e tests run it: a free port base, the command started with its log, every service's
/readyz awaited, Ctrl-C, and what was left running after it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from deploy.embedded import port_open

REPO = Path(__file__).resolve().parents[2]
OFFSETS = (1, 2, 3, 4, 5, 32, 92)  # the five services, PostgreSQL and the broker from the port base
SERVICES = 5


def port_base() -> int:
    """A base whose ports (B+1..B+5, B+32, B+92) are free and below the kernel's ephemeral range (32768 up):
    above it, a client connection of this very stack could take B+2 before settlement binds it."""
    for _ in range(50):
        base = random.randrange(20000, 32600, 100)
        if not any(port_open(base + off) for off in OFFSETS):
            return base
    raise RuntimeError("no free port base")


def start(
    data_dir: Path, base: int, log: Path, *options: str, demo: bool = False, sigint_ignored: bool = False
) -> subprocess.Popen:
    """`yibao up` on `base` (without the demo unless `demo`), its output appended to `log`."""
    command = [sys.executable, "-m", "deploy.cli", "up", "--data-dir", str(data_dir), "--port-base", str(base)]
    return subprocess.Popen(
        command + ([] if demo else ["--no-demo"]) + list(options),
        cwd=REPO,
        stdout=open(log, "ab"),  # noqa: SIM115  (the child writes it until it ends)
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )


def wait_all_ready(proc: subprocess.Popen, base: int, log: Path, timeout: float = 60) -> float:
    """Seconds until every service answers /readyz 200; fails when `yibao up` exits or the timeout passes."""
    started = time.monotonic()
    with httpx.Client(timeout=2) as client:
        while time.monotonic() - started < timeout:
            assert proc.poll() is None, log.read_text()[-3000:]
            ready = 0
            for i in range(1, SERVICES + 1):
                try:
                    ready += client.get(f"http://127.0.0.1:{base + i}/readyz").status_code == 200
                except httpx.HTTPError:
                    pass
            if ready == SERVICES:
                return time.monotonic() - started
            time.sleep(0.2)
    raise AssertionError(f"not all ready within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> list[int]:
    """Ctrl-C to `yibao up`; the pids of its children at that moment (none if it already exited)."""
    try:
        family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(60)
    return family


def left(pids: list[int]) -> list[int]:
    """Which of `pids` still run (zombies do not count)."""
    time.sleep(0.5)
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
