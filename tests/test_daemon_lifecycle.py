"""Stopping and starting the daemon: SIGTERM loses nothing, the outbox is flushed, exit 0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from client.rpc import RelationClient
from tests.conftest import AMQP_URL
from tests.harness import DaemonProcess, create_database, create_vhost, delete_vhost, drop_database, vhost_url


@pytest.fixture
async def private_amqp() -> AsyncIterator[str]:
    """A vhost of this test's own: no other daemon consumes its command queue."""
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


async def test_sigterm_with_commands_in_flight_loses_none(
    private_amqp: str, database_url: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(private_amqp, database_url, tmp_path, prefetch=32)
    daemon.start()
    await daemon.wait_ready()
    client = await RelationClient.connect(private_amqp, timeout=60)
    model = f"sig-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    await client.call(
        {"type": "deploy", "model": model, "application": "app", "charm": {"peers": {"p": "x"}}}
    )
    n = 300
    calls = [
        asyncio.create_task(client.send({"type": "add_units", "model": model, "application": "app"}))
        for _ in range(n)
    ]
    await asyncio.sleep(0.3)  # some applied, some in flight, most still queued
    code = await asyncio.to_thread(daemon.terminate)
    assert code == 0, daemon.log()
    first_log = daemon.log()
    assert '"event": "stopped"' in first_log
    daemon.start()
    await daemon.wait_ready()
    replies: list[Any] = await asyncio.gather(*calls)
    assert all(r is not None and r["ok"] for r in replies)
    units = sorted(r["result"]["units"][0] for r in replies)
    assert len(set(units)) == n
    await client.close()
    assert await asyncio.to_thread(daemon.terminate) == 0
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM unit u JOIN model m ON m.uuid = u.model_uuid WHERE m.name = $1", model
        )
        # Stopping flushed the outbox: every event of this model was published.
        unpublished = await conn.fetchval(
            "SELECT count(*) FROM outbox o JOIN change_event e ON e.event_id = o.event_id "
            "JOIN model m ON m.uuid = e.model_uuid WHERE m.name = $1",
            model,
        )
    finally:
        await conn.close()
    assert count == n
    assert unpublished == 0


@pytest.mark.parametrize(("version", "says"), [(2, "run `relationd migrate`"), (99, "upgrade relationd")])
async def test_a_schema_of_another_version_stops_the_daemon_with_exit_3(
    private_amqp: str, tmp_path: Path, version: int, says: str
) -> None:
    """Older: migrate first. Newer (another instance was upgraded): this relationd must not run
    on tables it does not know."""
    url = await create_database("relationd_ver")
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DELETE FROM schema_version WHERE version > $1", version)
            await conn.execute(
                "INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING", version
            )
        finally:
            await conn.close()
        daemon = DaemonProcess(private_amqp, url, tmp_path)
        daemon.start()
        assert daemon.proc is not None
        code = await asyncio.to_thread(daemon.proc.wait, 60)
        assert code == 3, daemon.log()
        assert says in daemon.log()
    finally:
        await drop_database(url)
