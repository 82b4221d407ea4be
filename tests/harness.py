"""Real processes for integration tests: a private RabbitMQ vhost and relationd subprocesses.

Each test run gets its own vhost, so a daemon a person left running (on the default vhost) can
never take the tests' messages, and the tests never see its data.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aio_pika

ROOT = Path(__file__).resolve().parent.parent
RELATIOND = [sys.executable, "-m", "daemon"]


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run([exe, *args], check=True, capture_output=True, text=True, timeout=60)
    return out.stdout


def create_vhost(name: str, user: str = "guest") -> None:
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


ADMIN_DSN = os.environ.get("RELATIOND_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_database(prefix: str = "relationd_test", admin_dsn: str = ADMIN_DSN) -> str:
    """A fresh database with the schema on the server of ``admin_dsn``; returns its URL.

    Daemons that share a database share its outbox, whatever their vhost: a test that runs its
    own daemon in its own vhost needs a database of its own too.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = admin_dsn.rpartition("/")[0] + "/" + name
    await create_schema_database(admin_dsn, name, url)
    return url


async def create_schema_database(admin_dsn: str, name: str, url: str) -> None:
    """Create database ``name`` through ``admin_dsn`` and apply relationd's schema to it at ``url``."""
    import asyncpg

    from daemon.migrate import apply_schema

    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await apply_schema(conn)
    finally:
        await conn.close()


async def drop_database(url: str, admin_dsn: str = ADMIN_DSN) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
    finally:
        await admin.close()


def vhost_url(base: str, vhost: str) -> str:
    return base.rstrip("/") + "/" + vhost.replace("/", "%2F")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaemonProcess:
    """`relationd run` as a subprocess, with its log in a file."""

    def __init__(self, amqp_url: str, database_url: str, log_dir: Path, **settings: Any) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "RELATIOND_AMQP_URL": amqp_url,
            "RELATIOND_DATABASE_URL": database_url,
            "RELATIOND_HTTP_PORT": str(self.port),
            "RELATIOND_LOG_FORMAT": "json",
            "RELATIOND_OUTBOX_POLL_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
            **{f"RELATIOND_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = log_dir / "relationd-0.log"

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"relationd-{self.port}-{self.starts}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*RELATIOND, "run"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"relationd exited {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = await asyncio.to_thread(self.http, "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError(f"relationd not ready in {timeout}s:\n{self.log()}")

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode()

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class EventTap:
    """A queue bound to the events exchange, collecting what arrives."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue: aio_pika.abc.AbstractQueue) -> None:
        self.channel = channel
        self.queue = queue
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    @classmethod
    async def open(cls, connection: aio_pika.abc.AbstractConnection, binding: str = "#") -> EventTap:
        from contracts.topology import EVENTS_EXCHANGE

        channel = await connection.channel()
        exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=binding)
        tap = cls(channel, queue)
        await queue.consume(tap._on, no_ack=True)
        return tap

    async def _on(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.received.append((message.routing_key or "", json.loads(message.body)))
        self.arrived.set()

    async def wait_for(self, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            events = [e for _, e in self.received]
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise TimeoutError(f"events did not arrive; have {len(events)}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.2)
            except TimeoutError:
                pass
