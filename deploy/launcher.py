"""`yibao up`: the whole stack on one machine, supervised, stopped cleanly by Ctrl-C or SIGTERM."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.embedded import EmbeddedBroker, EmbeddedPostgres, port_open
from shared.config import ROLES, parse_api_keys, parse_nhsa_clients
from shared.server import uvicorn_command

log = logging.getLogger("yibao.launcher")

SERVICES = ("eligibility", "settlement", "prepayment", "reporting", "gateway")  # on B+1 … B+5
PG_OFFSET = 32
BROKER_OFFSET = 92
READY_TIMEOUT = 60.0
MAX_BACKOFF = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: receive SIGTERM if the launcher dies, so nothing is left orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def local_api_keys(data_dir: Path) -> tuple[str, bool]:
    """API_KEYS from the environment, or one key per role kept under the data dir."""
    if os.environ.get("API_KEYS"):
        parse_api_keys(os.environ["API_KEYS"])
        return os.environ["API_KEYS"], False
    path = data_dir / "api-keys.json"
    if path.exists():
        return path.read_text(), True
    keys = {
        f"yb-{role}-{secrets.token_urlsafe(18)}": {"role": role, "fixmedins_code": None}
        for role in ROLES
        if role in ("admin", "ops")
    }
    keys[f"yb-his-{secrets.token_urlsafe(18)}"] = {"role": "his", "fixmedins_code": "H1"}
    keys[f"yb-pharmacy-{secrets.token_urlsafe(18)}"] = {"role": "pharmacy", "fixmedins_code": "P1"}
    raw = json.dumps(keys, indent=1)
    path.write_text(raw)
    path.chmod(0o600)
    return raw, True


def local_nhsa_clients(data_dir: Path, api_keys: str) -> tuple[str, bool]:
    """NHSA_CLIENTS from the environment, or one credential per local institution (each HIS or pharmacy key's) kept
    under the data dir: the national-platform gateway's callers (NHSA-GATEWAY.md "Who may call")."""
    if os.environ.get("NHSA_CLIENTS"):
        parse_nhsa_clients(os.environ["NHSA_CLIENTS"])
        return os.environ["NHSA_CLIENTS"], False
    path = data_dir / "nhsa-clients.json"
    if path.exists():
        raw = path.read_text()
        parse_nhsa_clients(raw)  # a broken file stops start-up here, not the gateway in a restart loop
        return raw, True
    codes = sorted(
        {spec["fixmedins_code"] for spec in parse_api_keys(api_keys).values() if spec["role"] in ("his", "pharmacy")}
    )
    clients = {
        f"nhsa-{code.lower()}-{secrets.token_hex(6)}": {
            "secret": secrets.token_urlsafe(24),
            "fixmedins_code": code,
            "infcode_type": "number",
        }
        for code in codes
    }
    raw = json.dumps(clients, indent=1)
    path.write_text(raw)
    path.chmod(0o600)
    return raw, True


@dataclass
class Child:
    """A supervised service process."""

    name: str
    port: int
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen | None = None
    instances: int = 1  # worker processes on the one port (uvicorn --workers): each a whole instance
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                uvicorn_command(self.name, port=self.port, workers=self.instances),
                env={**os.environ, **self.env},
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Stack:
    """Embedded PostgreSQL and broker (unless external ones are configured) and the five services."""

    def __init__(self, *, data_dir: Path, port_base: int, say: Callable[[str], None], instances: int = 1) -> None:
        self.data_dir = data_dir.resolve()
        self.port_base = port_base
        self.instances = instances
        self.say = say
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self.stopping = False
        self.api_keys = ""
        self.nhsa_clients = ""

    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{self.port_base + i}" for i, name in enumerate(SERVICES, start=1)}

    def start(self) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.api_keys, generated = local_api_keys(self.data_dir)
        self.nhsa_clients, nhsa_generated = local_nhsa_clients(self.data_dir, self.api_keys)
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            self.pg = EmbeddedPostgres(self.data_dir / "pgdata", self.port_base + PG_OFFSET, unix_socket=True)
            self.pg.start()
            database_url = self.pg.local_url  # the services use the Unix socket; tools may use TCP
            self.say(
                f"postgres     {self.pg.url}  (embedded, data in {self.pg.data_dir}"
                f"{', services on its Unix socket' if self.pg.unix_socket else ''})"
            )
        else:
            self.say("postgres     external DATABASE_URL")
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
        if not bootstrap:
            self.broker = EmbeddedBroker(self.port_base + BROKER_OFFSET, log_dir=logs)
            self.broker.start()
            bootstrap = self.broker.bootstrap
            self.say(f"broker       {bootstrap}  (embedded Tansu, log in memory)")
        else:
            self.say(f"broker       external KAFKA_BOOTSTRAP {bootstrap}")
        urls = self.urls()
        common = {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP": bootstrap,
            "API_KEYS": self.api_keys,
            "ELIGIBILITY_URL": urls["eligibility"],
            "SETTLEMENT_URL": urls["settlement"],
            "PREPAYMENT_URL": urls["prepayment"],
            "REPORTING_URL": urls["reporting"],
            "NHSA_CLIENTS": self.nhsa_clients,
        }
        for i, name in enumerate(SERVICES, start=1):
            if port_open(self.port_base + i):
                raise RuntimeError(f"port {self.port_base + i} for {name} is taken; choose another --port-base")
            child = Child(
                name=name,
                port=self.port_base + i,
                env={**common, "YIBAO_SERVICE": name},
                log_file=logs / f"{name}.log",
                instances=self.instances,
            )
            child.start()
            self.children.append(child)
        self.wait_ready()
        if generated:
            self.say(f"API keys (kept in {self.data_dir / 'api-keys.json'}):")
            for key, spec in json.loads(self.api_keys).items():
                self.say(
                    f"  {spec['role']:<9} {key}"
                    + (f"  ({spec['fixmedins_code']})" if spec.get("fixmedins_code") else "")
                )
        if nhsa_generated:
            self.say(
                f"national-platform gateway credentials (kept in {self.data_dir / 'nhsa-clients.json'}; "
                f"HIS URL {urls['gateway']}/fsi/api/rsfComIfsService/callService):"
            )
            for access_key, spec in json.loads(self.nhsa_clients).items():
                self.say(f"  {spec['fixmedins_code']:<9} access key {access_key}  secret {spec['secret']}")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        started = time.monotonic()
        pending = {c.name: c for c in self.children}
        with httpx.Client(timeout=2) as client:
            while pending:
                for name, child in list(pending.items()):
                    if child.proc.poll() is not None:
                        raise RuntimeError(f"{name} exited during start-up; see {child.log_file}")
                    try:
                        if client.get(f"http://127.0.0.1:{child.port}/readyz").status_code == 200:
                            self.say(f"{name:<12} http://127.0.0.1:{child.port}  ready  (docs: /docs)")
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"not ready within {timeout:.0f} s: {', '.join(pending)}")
                time.sleep(0.1)
        return time.monotonic() - started

    def supervise_once(self) -> None:
        """Restart whatever died, with backoff; log each restart."""
        now = time.monotonic()
        for part, label in ((self.pg, "postgres"), (self.broker, "broker")):
            if part is not None and not part.alive() and not self.stopping:
                log.warning("%s died; restarting", label)
                self.say(f"{label} died; restarting")
                part.start()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None or self.stopping:
                continue
            if child.next_start == 0.0:
                backoff = min(MAX_BACKOFF, 2 ** min(child.restarts, 5))
                if now - child.started_at > 60:
                    backoff = 1
                child.next_start = now + backoff
                self.say(f"{child.name} exited with code {child.proc.returncode}; restarting in {backoff:.0f} s")
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()
                self.say(f"{child.name} restarted (restart #{child.restarts})")

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            child.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop()


def run_stack(
    *,
    data_dir: Path,
    port_base: int,
    say: Callable[[str], None],
    after_ready: Callable[[Stack], None] | None = None,
    instances: int = 1,
) -> int:
    """Start everything, supervise until SIGINT/SIGTERM, then stop everything started."""
    stack = Stack(data_dir=data_dir, port_base=port_base, say=say, instances=instances)
    stop_requested = []

    def _request_stop(signum, frame) -> None:
        stop_requested.append(signum)
        raise KeyboardInterrupt

    # SIGINT too: a process started in the background of a script (CI, nohup) inherits SIGINT ignored, and
    # Python then never turns Ctrl-C into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    started = time.monotonic()
    try:
        stack.start()
        say(f"all five services ready in {time.monotonic() - started:.1f} s; Ctrl-C stops everything")
        if after_ready is not None:
            after_ready(stack)
        while True:
            stack.supervise_once()
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping …")
        return 0
    except Exception as exc:
        say(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        say("stopped")
