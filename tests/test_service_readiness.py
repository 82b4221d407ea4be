"""/readyz follows the daemon's dependencies, and the daemon recovers from their outages itself.

The database and the broker that are stopped here are private instances of each test
(tests/private_services.py); the machine's shared PostgreSQL and RabbitMQ are never touched.

* Database stopped: /readyz answers 503 with ``database_ok: false`` (the broker still fine); a
  command sent meanwhile is retried, not refused or dead-lettered, and is applied exactly once
  when the database is back, when /readyz answers 200 again. The daemon is never restarted.
* Broker stopped: 503 with ``broker_ok: false``; an event committed meanwhile cannot leave, and
  once it is older than ``RELATIOND_OUTBOX_MAX_LAG_SECONDS`` ``outbox_ok`` is false too. When the
  node is back the daemon rebuilds its session by itself, publishes the event, /readyz answers
  200, and commands are answered and events published again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from client.rpc import RelationClient
from handlers.db import init_connection
from tests.domain import Domain
from tests.harness import DaemonProcess, EventTap
from tests.private_services import (
    PrivatePostgres,
    PrivateRabbitMQ,
    private_postgres,
    private_postgres_cluster,
    private_rabbitmq,
)
from tests.service_support import own_database, own_vhost, stop_daemon, wait_readyz

__all__ = ["own_database", "own_vhost", "private_postgres", "private_postgres_cluster", "private_rabbitmq"]


def _metric(daemon: DaemonProcess, name: str, **labels: str) -> float:
    _, text = daemon.http("/metrics")
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _wait_log(daemon: DaemonProcess, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for line in daemon.log_lines():
            if predicate(line):
                return line
        if time.monotonic() > deadline:
            raise TimeoutError(f"no such log line in {timeout}s:\n{daemon.log()}")
        await asyncio.sleep(0.1)


async def _wait_outbox_empty(database: str, timeout: float) -> None:
    """Until every committed event is published (asked of the database: /readyz's backlog figure
    is the relay's last measure, which may predate the latest commit)."""
    conn = await asyncpg.connect(database)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM outbox"):
            assert time.monotonic() < deadline, f"the outbox did not drain in {timeout}s"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_readyz_follows_the_database_and_a_command_sent_while_it_is_down_is_applied_once(
    private_postgres: PrivatePostgres, own_vhost: str, tmp_path: Path
) -> None:
    pg = private_postgres
    daemon = DaemonProcess(own_vhost, pg.url, tmp_path)  # type: ignore[attr-defined]
    client: RelationClient | None = None
    try:
        daemon.start()
        await daemon.wait_ready()
        client = await RelationClient.connect(own_vhost, timeout=30)
        await client.create_model(f"before-{uuid.uuid4().hex[:8]}")

        began = time.monotonic()
        await asyncio.to_thread(pg.stop, "fast")
        down = await wait_readyz(daemon, 503, timeout=10)
        went_unready_in = time.monotonic() - began
        assert down["ready"] is False and down["database_ok"] is False
        assert down["broker_ok"] is True and down["database_error"]
        # The same checks as gauges for the alert rules (deploy/prometheus/relationd-alerts.yml).
        assert await asyncio.to_thread(_metric, daemon, "relationd_ready") == 0
        assert await asyncio.to_thread(_metric, daemon, "relationd_readiness_check", check="database") == 0
        assert await asyncio.to_thread(_metric, daemon, "relationd_readiness_check", check="broker") == 1

        name, command_id = f"during-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
        sent = asyncio.create_task(
            client.send({"type": "create_model", "name": name}, command_id=command_id, timeout=45)
        )
        retrying = await _wait_log(
            daemon,
            lambda line: (
                line.get("event") == "transient database failure; retrying"
                and line.get("command_id") == command_id
            ),
            timeout=10,
        )
        assert retrying["level"] == "warning"
        assert not sent.done(), "the command was answered while the database was down"
        assert (await wait_readyz(daemon, 503, timeout=1))["database_ok"] is False

        began = time.monotonic()
        await asyncio.to_thread(pg.start)
        up = await wait_readyz(daemon, 200, timeout=15)
        ready_again_in = time.monotonic() - began
        assert up["ready"] is True and up["database_ok"] is True and up["broker_ok"] is True
        assert await asyncio.to_thread(_metric, daemon, "relationd_ready") == 1
        reply = await asyncio.wait_for(sent, 30)
        assert reply is not None and reply["ok"] is True, reply
        assert reply["command_id"] == command_id and reply["result"]["name"] == name

        conn = await asyncpg.connect(pg.url)  # type: ignore[attr-defined]
        try:
            stored = await conn.fetchval("SELECT count(*) FROM model WHERE name = $1", name)
            processed = await conn.fetchval(
                "SELECT count(*) FROM processed_command WHERE command_id = $1", command_id
            )
        finally:
            await conn.close()
        assert (stored, processed) == (1, 1)
        assert [m.name for m in await client.list_models()].count(name) == 1
        assert await asyncio.to_thread(_metric, daemon, "relationd_dead_lettered_total") == 0
        assert (
            await asyncio.to_thread(
                _metric, daemon, "relationd_commands_total", type="create_model", outcome="applied"
            )
            == 2
        )
        assert await asyncio.to_thread(_metric, daemon, "relationd_transient_retries_total") >= 1
        assert daemon.starts == 1 and daemon.proc is not None and daemon.proc.poll() is None
        print(
            f"\nreadiness/database: unready {went_unready_in:.2f}s after stop, ready {ready_again_in:.2f}s after start"
        )
    finally:
        if client is not None:
            await client.close()
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()


async def test_readyz_follows_the_broker_and_the_daemon_rebuilds_its_session(
    private_rabbitmq: PrivateRabbitMQ, own_database: str, tmp_path: Path
) -> None:
    node = private_rabbitmq
    daemon = DaemonProcess(node.url, own_database, tmp_path, outbox_max_lag_seconds=1)
    try:
        daemon.start()
        await daemon.wait_ready()
        async with await RelationClient.connect(node.url, timeout=15) as client:
            before = await client.create_model(f"before-{uuid.uuid4().hex[:8]}")
        await _wait_outbox_empty(own_database, timeout=10)  # its event is out before the broker goes

        began = time.monotonic()
        await asyncio.to_thread(node.stop)
        down = await wait_readyz(daemon, 503, timeout=10)
        went_unready_in = time.monotonic() - began
        assert down["ready"] is False and down["broker_ok"] is False
        assert down["database_ok"] is True and down["outbox_ok"] is True

        # A command committed as the session dropped (applied here straight to the database):
        # its event waits in the outbox, and after the lag bound the outbox check fails too.
        pool = await asyncpg.create_pool(own_database, min_size=1, max_size=1, init=init_connection)
        try:
            stranded = await Domain(pool).new_model()
        finally:
            await pool.close()
        deadline = time.monotonic() + 10
        while (lagging := await wait_readyz(daemon, 503, timeout=1))["outbox_ok"] is not False:
            assert time.monotonic() < deadline, f"outbox_ok stayed true: {lagging}"
            await asyncio.sleep(0.2)
        assert lagging["broker_ok"] is False and lagging["outbox_backlog"] == 1
        assert lagging["outbox_lag_seconds"] > 1

        began = time.monotonic()
        await asyncio.to_thread(node.start)
        up = await wait_readyz(daemon, 200, timeout=20)
        ready_again_in = time.monotonic() - began
        assert up["broker_ok"] is True and up["database_ok"] is True and up["outbox_ok"] is True
        assert up["outbox_backlog"] == 0
        conn = await asyncpg.connect(own_database)
        try:
            published = await conn.fetchval(
                "SELECT bool_and(o.event_id IS NULL) FROM change_event e "
                "LEFT JOIN outbox o ON o.event_id = e.event_id WHERE e.key->>'model' = $1",
                stranded,
            )
        finally:
            await conn.close()
        assert published is True

        async with await RelationClient.connect(node.url, timeout=15) as client:
            tap = await EventTap.open(client.connection)
            after = await client.create_model(f"after-{uuid.uuid4().hex[:8]}")
            names = [m.name for m in await client.list_models()]
            events = await tap.wait_for(
                lambda evs: any(e["model_uuid"] == after.uuid and e["namespace"] == "model" for e in evs)
            )
        assert before.name in names and after.name in names
        created = [e for e in events if e["model_uuid"] == after.uuid]
        assert [(e["namespace"], e["kind"]) for e in created][:1] == [("model", "created")]
        assert daemon.starts == 1 and daemon.proc is not None and daemon.proc.poll() is None
        assert await asyncio.to_thread(_metric, daemon, "relationd_reconnects_total", peer="broker") >= 1
        lost = [
            line for line in daemon.log_lines() if line.get("event") == "broker session lost; reconnecting"
        ]
        assert lost, daemon.log()
        print(
            f"\nreadiness/broker: unready {went_unready_in:.2f}s after stop, ready {ready_again_in:.2f}s after start"
        )
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()
