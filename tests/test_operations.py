"""Running it as a service: systemd notify, Prometheus metrics, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from client.rpc import RelationClient
from tests.conftest import AMQP_URL
from tests.harness import RELATIOND, DaemonProcess, create_vhost, delete_vhost, rabbitmqctl, vhost_url


@pytest.fixture
async def private_amqp() -> AsyncIterator[str]:
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


def _datagrams(sock: socket.socket, until: float) -> list[str]:
    out = []
    while time.monotonic() < until:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return out


async def test_notify_ready_after_connect_watchdog_pings_and_stopping_on_sigterm(
    private_amqp: str, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    daemon = DaemonProcess(private_amqp, database_url, tmp_path)
    daemon.env |= {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    try:
        daemon.start()
        await daemon.wait_ready()
        running = await asyncio.to_thread(_datagrams, sock, time.monotonic() + 1.5)
        code = await asyncio.to_thread(daemon.terminate)
        stopping = await asyncio.to_thread(_datagrams, sock, time.monotonic() + 0.5)
    finally:
        sock.close()
    assert code == 0
    fields = [f for d in running for f in d.split("\n")]
    ready_at = fields.index("READY=1")
    assert any(f.startswith("STATUS=connecting to the broker") for f in fields[:ready_at])
    assert fields[ready_at + 1] == "STATUS=consuming commands"
    # Pinged every WATCHDOG_USEC / 2 = 0.2 s: at least 4 in 1.5 s after READY.
    assert fields[ready_at:].count("WATCHDOG=1") >= 4
    assert "STOPPING=1" in [f for d in stopping for f in d.split("\n")]


async def test_metrics_count_the_commands_sent(private_amqp: str, database_url: str, tmp_path: Path) -> None:
    daemon = DaemonProcess(private_amqp, database_url, tmp_path)
    daemon.start()
    await daemon.wait_ready()
    client = await RelationClient.connect(private_amqp, timeout=15)
    try:
        model = f"metrics-{uuid.uuid4().hex[:8]}"
        await client.call({"type": "create_model", "name": model})
        for _ in range(3):
            await client.call({"type": "list_applications", "model": model})
        for _ in range(2):
            await client.send({"type": "add_units", "model": model, "application": "nope"})
        await client.send(b"garbage")
        # A command is counted when it is acked, just after its reply went out.
        deadline = time.monotonic() + 5
        while True:
            status, text = await asyncio.to_thread(daemon.http, "/metrics")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            total = sum(v for (n, _), v in samples.items() if n == "relationd_commands_total")
            if total >= 7 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await client.close()
        daemon.terminate()
    assert status == 200

    def commands(kind: str, outcome: str) -> float:
        return samples.get(("relationd_commands_total", (("outcome", outcome), ("type", kind))), 0.0)

    assert commands("create_model", "applied") == 1
    assert commands("list_applications", "read") == 3
    assert commands("add_units", "refused") == 2
    assert commands("?", "invalid") == 1
    assert samples[("relationd_dead_lettered_total", (("code", "InvalidCommand"),))] == 1
    assert samples[("relationd_command_duration_seconds_count", (("type", "list_applications"),))] == 3
    assert ("relationd_outbox_backlog", ()) in samples
    assert ("relationd_events_published_total", ()) in samples


async def test_passwords_never_reach_the_log(database_url: str, tmp_path: Path) -> None:
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    user, password = f"secretive-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    create_vhost(vhost)
    rabbitmqctl("add_user", user, password)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    db_password = f"dbpw-{uuid.uuid4().hex}"  # trust auth accepts and ignores it
    db_url = database_url.replace("postgres@", f"postgres:{db_password}@")
    amqp = vhost_url(AMQP_URL.replace("guest:guest", f"{user}:{password}"), vhost)
    daemon = DaemonProcess(amqp, db_url, tmp_path, log_level="debug")
    try:
        daemon.start()
        await daemon.wait_ready()
        status, config = await asyncio.to_thread(daemon.http, "/readyz")
        daemon.terminate()
    finally:
        rabbitmqctl("delete_user", user)
        delete_vhost(vhost)
    log = daemon.log()
    assert status == 200
    assert password not in log and db_password not in log
    assert "***" in log  # the URLs are logged, redacted
    assert password not in config


async def test_secrets_in_url_queries_never_reach_the_log(
    private_amqp: str, database_url: str, tmp_path: Path
) -> None:
    """A password in the query (``?password=``, ``?sslpassword=``) is masked in the start log
    line like one in the user info; the daemon still connects with it."""
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in ("db_query", "db_ssl", "amqp_query")}
    sep = "&" if "?" in database_url else "?"
    db_url = f"{database_url}{sep}password={secrets['db_query']}&sslpassword={secrets['db_ssl']}"
    amqp = f"{private_amqp}?password={secrets['amqp_query']}&heartbeat=30"
    daemon = DaemonProcess(amqp, db_url, tmp_path, log_level="debug")
    try:
        daemon.start()
        await daemon.wait_ready()
        async with await RelationClient.connect(private_amqp, timeout=15) as client:
            await client.call({"type": "list_models"})
        daemon.terminate()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
    log = daemon.log()
    assert not [name for name, secret in secrets.items() if secret in log]
    started = [line for line in daemon.log_lines() if line.get("event") == "starting"]
    assert "password=***" in started[0]["database"] and "sslpassword=***" in started[0]["database"]
    assert "password=***" in started[0]["broker"] and "heartbeat=30" in started[0]["broker"]


def test_config_masks_every_secret_of_multi_host_urls_and_url_lists(tmp_path: Path) -> None:
    """`relationd config`: user info and query secrets of every host and every listed URL."""
    secrets = [f"s{i}-{uuid.uuid4().hex}" for i in range(7)]
    env = {
        **os.environ,
        "RELATIOND_DATABASE_URL": (
            f"postgresql://relationd:{secrets[0]}@db1:5432,db2:5432/relationd"
            f"?target_session_attrs=read-write&password={secrets[1]}&sslpassword={secrets[2]}"
            f"&passfile=/etc/{secrets[3]}"
        ),
        "RELATIOND_AMQP_URL": (
            f"amqp://relationd:{secrets[4]}@mq1:5672/prod,"
            f"amqps://relationd:{secrets[5]}@mq2:5671/prod?password={secrets[6]}&heartbeat=30"
        ),
    }
    out = subprocess.run(
        [*RELATIOND, "config"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    config = json.loads(out)
    assert not [s for s in secrets if s in out]
    assert config["database_url"] == (
        "postgresql://relationd:***@db1:5432,db2:5432/relationd"
        "?target_session_attrs=read-write&password=***&sslpassword=***&passfile=***"
    )
    assert config["amqp_url"] == (
        "amqp://relationd:***@mq1:5672/prod,amqps://relationd:***@mq2:5671/prod?password=***&heartbeat=30"
    )
