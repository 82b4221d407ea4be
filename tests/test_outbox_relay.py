"""The outbox relay's lead: one instance at a time publishes, and the lead passes on when it dies."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg

from client.rpc import RelationClient
from daemon.outbox import _RELAY_LOCK
from tests.harness import DaemonProcess, EventTap
from tests.service_support import own_database, own_vhost

__all__ = ["own_database", "own_vhost"]  # fixtures

_LEADER = """
SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1 AND l.database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def _leaders(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(_LEADER, _RELAY_LOCK))
    finally:
        await conn.close()


async def _one_leader(database_url: str, other_than: int | None = None, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while True:
        rows = await _leaders(database_url)
        if len(rows) == 1 and rows[0]["pid"] != other_than:
            assert rows[0]["application_name"] == "relationd-relay"
            return int(rows[0]["pid"])
        assert len(rows) <= 1, rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"no single relay leader (other than {other_than}): {rows}")
        await asyncio.sleep(0.1)


async def test_the_lead_passes_to_the_other_instance_when_the_leader_is_killed(
    own_vhost: str, own_database: str, tmp_path: Path
) -> None:
    first = DaemonProcess(own_vhost, own_database, tmp_path)
    second = DaemonProcess(own_vhost, own_database, tmp_path)
    first.start()
    await first.wait_ready()
    leader = await _one_leader(own_database)  # the only instance leads
    second.start()
    await second.wait_ready()
    connection = await aio_pika.connect(own_vhost)
    client = await RelationClient.connect(own_vhost, timeout=30)
    try:
        tap = await EventTap.open(connection)
        before = f"lead-{uuid.uuid4().hex[:8]}"
        await client.call({"type": "create_model", "name": before})
        await tap.wait_for(lambda es: any(e["key"].get("model") == before for e in es))
        assert await _one_leader(own_database) == leader  # the second one did not take over

        first.kill()  # SIGKILL: its session, and with it the lock, ends with the process
        new_leader = await _one_leader(own_database, other_than=leader)
        after = f"lead-{uuid.uuid4().hex[:8]}"
        await client.call({"type": "create_model", "name": after})
        events = await tap.wait_for(lambda es: any(e["key"].get("model") == after for e in es))
        assert [e["key"]["model"] for e in events if e["kind"] == "created"] == [before, after]
        assert new_leader != leader
    finally:
        await client.close()
        await connection.close()
        if first.proc is not None and first.proc.poll() is None:
            first.kill()
        assert await asyncio.to_thread(second.terminate) == 0, second.log()


async def test_the_relay_vacuums_the_outbox_it_deletes_from(
    own_vhost: str, own_database: str, tmp_path: Path
) -> None:
    """Published events are deleted from the outbox; the relay vacuums it rather than leave every
    read stepping over the dead rows until autovacuum comes by (once a minute at best)."""
    daemon = DaemonProcess(own_vhost, own_database, tmp_path)
    daemon.start()
    await daemon.wait_ready()
    client = await RelationClient.connect(own_vhost, timeout=30)
    conn = await asyncpg.connect(own_database)
    try:
        assert (
            await conn.fetchval("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'") == 0
        )
        await client.call({"type": "create_model", "name": f"vac-{uuid.uuid4().hex[:8]}"})
        deadline = time.monotonic() + 15
        while not await conn.fetchval(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'"
        ):
            assert time.monotonic() < deadline, "the relay did not vacuum the outbox"
            await asyncio.sleep(0.2)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()
        await client.close()
        assert await asyncio.to_thread(daemon.terminate) == 0, daemon.log()
