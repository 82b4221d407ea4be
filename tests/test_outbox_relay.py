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
from tests.conftest import AMQP_URL
from tests.harness import DaemonProcess, EventTap, create_vhost, delete_vhost, vhost_url
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
        # At least once: the killed leader may have published "before" without deleting it from
        # the outbox, so the new leader publishes it again. Watchers drop repeats by event id.
        unique = {e["event_id"]: e for e in events if e["kind"] == "created"}
        assert [e["key"]["model"] for e in unique.values()] == [before, after]
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


async def test_events_of_another_instance_wake_the_leader_at_once(
    own_vhost: str, own_database: str, tmp_path: Path
) -> None:
    """Commands commit without NOTIFY; the instance that applied them wakes its own relay when
    it leads, else notifies the leader. Polling is set to 60 s here, so only a wake-up brings
    the events out in time. The two instances share the database but not the vhost, so the
    second one's commands are published by the first one's relay, to the first one's vhost."""
    other = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(other)
    other_url = vhost_url(AMQP_URL, other)
    leader = DaemonProcess(own_vhost, own_database, tmp_path, outbox_poll_seconds=60)
    follower = DaemonProcess(other_url, own_database, tmp_path, outbox_poll_seconds=60)
    connection = await aio_pika.connect(own_vhost)
    try:
        leader.start()
        await leader.wait_ready()
        await _one_leader(own_database)
        follower.start()
        await follower.wait_ready()
        tap = await EventTap.open(connection)
        for url in (own_vhost, other_url):  # applied by the leader, then by the other instance
            async with await RelationClient.connect(url, timeout=30) as client:
                for _ in range(3):
                    name = f"wake-{uuid.uuid4().hex[:8]}"
                    await client.call({"type": "create_model", "name": name})
                    await tap.wait_for(lambda es, n=name: any(e["key"].get("model") == n for e in es), 5)
    finally:
        await connection.close()
        for daemon in (follower, leader):
            if daemon.proc is not None and daemon.proc.poll() is None:
                assert await asyncio.to_thread(daemon.terminate) == 0, daemon.log()
        delete_vhost(other)


async def test_a_published_batch_leaves_the_outbox_with_the_next_read_and_at_a_clean_stop(
    own_vhost: str, own_database: str, tmp_path: Path
) -> None:
    """The relay deletes a published batch's ids with the statement that reads the next batch.
    Those ids are not backlog; a clean stop deletes them, so a restart publishes nothing again.
    Polling is 60 s here, so only commits wake the relay."""
    daemon = DaemonProcess(own_vhost, own_database, tmp_path, outbox_poll_seconds=60)
    daemon.start()
    await daemon.wait_ready()
    connection = await aio_pika.connect(own_vhost)
    client = await RelationClient.connect(own_vhost, timeout=30)
    conn = await asyncpg.connect(own_database)
    try:
        tap = await EventTap.open(connection)
        names = [f"out-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        ids: list[int] = []
        for name in names:
            await client.call({"type": "create_model", "name": name})
            events = await tap.wait_for(lambda es, n=name: any(e["key"].get("model") == n for e in es))
            ids.append(next(e["event_id"] for e in events if e["key"].get("model") == name))
        # Each read deleted the batch before it: of the three, only the last is still there.
        left = await conn.fetch("SELECT event_id FROM outbox WHERE event_id = ANY($1::bigint[])", ids)
        assert [r["event_id"] for r in left] in ([ids[-1]], []), (ids, left)
        await asyncio.sleep(1.1)  # the backlog is measured at most once a second, after a drain
        fourth = f"out-{uuid.uuid4().hex[:8]}"
        await client.call({"type": "create_model", "name": fourth})
        deadline = time.monotonic() + 10
        while True:
            status, body = await asyncio.to_thread(daemon.http, "/metrics")
            backlog = [line for line in body.splitlines() if line.startswith("relationd_outbox_backlog ")]
            if status == 200 and backlog and float(backlog[0].split()[1]) == 0:
                break  # published, not yet deleted: no backlog
            assert time.monotonic() < deadline, backlog
            await asyncio.sleep(0.2)
        # The gauge reads 0 once the broker confirmed the publish; the tap may receive it later.
        await tap.wait_for(lambda es: any(e["key"].get("model") == fourth for e in es))
        published = len(tap.received)
        assert await asyncio.to_thread(daemon.terminate) == 0, daemon.log()
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        again = DaemonProcess(own_vhost, own_database, tmp_path, outbox_poll_seconds=60)
        again.start()
        try:
            await again.wait_ready()
            await asyncio.sleep(2)
            assert len(tap.received) == published, tap.received[published:]
        finally:
            assert await asyncio.to_thread(again.terminate) == 0, again.log()
    finally:
        await conn.close()
        await client.close()
        await connection.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
