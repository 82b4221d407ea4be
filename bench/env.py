"""Where each contender runs: a private vhost, a private database, its own process.

A contender's vhost and database are created for the run and deleted after it, so contenders
never see each other's messages or rows, and a daemon someone left running on the default vhost
is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
AMQP_URL = os.environ.get("RELATIOND_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_DSN = os.environ.get("RELATIOND_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
READY_LINE = "READY"


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run([exe, *args], check=True, capture_output=True, text=True, timeout=120)
    return out.stdout


def vhost_url(vhost: str, base: str = AMQP_URL) -> str:
    return base.rstrip("/") + "/" + vhost.replace("/", "%2F")


def database_url(name: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    """One contender's private vhost and database."""

    name: str
    amqp_url: str
    database_url: str


async def _add_vhost(vhost: str) -> None:
    await asyncio.to_thread(rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


async def _delete_vhost(vhost: str) -> None:
    with contextlib.suppress(subprocess.SubprocessError):
        await asyncio.to_thread(rabbitmqctl, "delete_vhost", vhost)


@contextlib.asynccontextmanager
async def sandboxes(labels: list[str]) -> AsyncIterator[dict[str, Sandbox]]:
    """A vhost and a database per label, created and deleted concurrently (rabbitmqctl is slow)."""
    suffix = uuid.uuid4().hex[:8]
    vhosts = {label: f"relationd-bench-{label}-{suffix}" for label in labels}
    dbs = {label: f"relationd_bench_{label.replace('-', '_')}_{suffix}" for label in labels}
    created: list[str] = []
    try:
        results = await asyncio.gather(*(_add_vhost(v) for v in vhosts.values()), return_exceptions=True)
        created = list(vhosts.values())
        for r in results:
            if isinstance(r, BaseException):
                raise r
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            for db in dbs.values():
                await admin.execute(f'CREATE DATABASE "{db}"')
        finally:
            await admin.close()
        yield {label: Sandbox(label, vhost_url(vhosts[label]), database_url(dbs[label])) for label in labels}
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                for db in dbs.values():
                    await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            finally:
                await admin.close()
        await asyncio.gather(*(_delete_vhost(v) for v in created))


@contextlib.asynccontextmanager
async def sandbox(label: str) -> AsyncIterator[Sandbox]:
    async with sandboxes([label]) as boxes:
        yield boxes[label]


class ServerProcess:
    """A contender's server as a subprocess; ready when it prints READY (or /readyz answers)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        http_port: int | None = None,
    ) -> None:
        self.argv = argv
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_path
        self.http_port = http_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} exited {self.proc.returncode}:\n{self.log()[-4000:]}")
            if self.http_port is not None:
                if await asyncio.to_thread(self._http_ready):
                    return
            elif READY_LINE in self.log():
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.argv} not ready in {timeout}s:\n{self.log()[-4000:]}")

    def _http_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2) as r:
                return int(r.status) == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self, timeout: float = 60) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (from /proc)."""
        if self.proc is None:
            return 0.0
        return process_cpu_seconds(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def database_cpu_seconds(database: str) -> dict[int, float]:
    """CPU time used so far by each PostgreSQL backend connected to ``database``, by pid."""
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and f" {database} ".encode() in cmdline:
            out[int(entry.name)] = process_cpu_seconds(int(entry.name))
    return out


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def use_uvloop(enabled: bool) -> None:
    """Switch this process to uvloop when asked and installed."""
    if not enabled:
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def env_flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def describe_machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
