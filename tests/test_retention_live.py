"""A watcher and a unit's hook stream whose position is no longer kept go on from a snapshot by
themselves, and say so: through the session's daemon with the model's first events deleted as
retention deletes them (fast), and through a daemon that keeps events one second (slow)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from client.hook_stream import HookStream
from client.hooks import Hook
from client.rpc import RelationClient
from client.watch import Watch
from contracts import errors
from contracts.events import ChangeEvent
from contracts.snapshot import ModelSnapshot
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.harness import DaemonProcess, create_database, create_vhost, delete_vhost, drop_database, vhost_url


@pytest.fixture
async def forgetful(tmp_path: Path) -> AsyncIterator[tuple[str, RelationClient]]:
    """A daemon of its own (vhost and database) that deletes events a second after publishing."""
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    url, database = vhost_url(AMQP_URL, vhost), await create_database("relationd_forget")
    daemon = DaemonProcess(
        url, database, tmp_path, event_retention="1s", event_retention_interval_seconds="0.2"
    )
    daemon.start()
    try:
        await daemon.wait_ready()
        client = await RelationClient.connect(url, timeout=15)
        yield url, client
        await client.close()
    finally:
        daemon.terminate()
        await drop_database(database)
        delete_vhost(vhost)


async def _until_expired(client: RelationClient, model: str, after: int) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                await client.events_after(model, after)
            except errors.EventsExpired:
                return
            await asyncio.sleep(0.2)


async def _forget_published(pool: Any, client: RelationClient, model: str) -> None:
    """Delete the model's published events, a prefix of its log, as retention would."""
    model_uuid = (await client.snapshot(model)).model_uuid
    async with asyncio.timeout(20), pool.acquire() as conn:
        while True:
            deleted = await conn.fetchval(_FORGET, model_uuid)
            if deleted:
                return
            await asyncio.sleep(0.1)  # the relay has not published them yet


_FORGET = """
WITH gone AS (
    DELETE FROM change_event WHERE model_uuid = $1
      AND seq < (SELECT COALESCE(min(c.seq), 9223372036854775807) FROM outbox o
                 JOIN change_event c ON c.event_id = o.event_id WHERE c.model_uuid = $1)
    RETURNING 1
)
SELECT count(*) FROM gone
"""


async def test_watch_and_hooks_fall_back_to_the_snapshot_when_their_events_are_gone(
    client: RelationClient, amqp_url: str, pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def forget(model: str, after: int) -> None:
        await _forget_published(pool, client, model)
        await _until_expired(client, model, after)

    await _falls_back(amqp_url, client, forget, caplog)


@pytest.mark.slow
async def test_watch_and_hooks_fall_back_when_the_daemons_retention_deleted_their_events(
    forgetful: tuple[str, RelationClient], caplog: pytest.LogCaptureFixture
) -> None:
    url, client = forgetful

    async def forget(model: str, after: int) -> None:
        await _until_expired(client, model, after)

    await _falls_back(url, client, forget, caplog)


async def _falls_back(
    url: str,
    client: RelationClient,
    forget: Callable[[str, int], Awaitable[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = f"f-{uuid.uuid4().hex[:8]}"
    await client.create_model(model)
    await client.deploy(model, "mysql", charm("mysql"), units=1)
    await client.deploy(model, "wordpress", charm("wordpress"), units=1)
    rel = await client.integrate(model, "wordpress", "mysql")

    # A new agent for mysql/0 runs its first hooks, then stops with its state.
    agent = HookStream(url, model, "mysql/0", timeout=15)
    first: list[Hook] = []
    async for hook in agent:
        first.append(hook)
        if len(first) == 2:
            break
    await agent.close()
    state = first[-1].state
    assert state is not None and [h.relation_id for h in first] == [0, rel.id]

    # While it is away: both units enter and wordpress/0 writes settings; then the log forgets.
    await client.enter_scope(model, rel.id, "mysql/0")
    await client.enter_scope(model, rel.id, "wordpress/0", {"db": "wp"})
    await forget(model, state["seq"])

    caplog.set_level(logging.WARNING, logger="relationd.client")
    resumed = HookStream(url, model, "mysql/0", state=state, timeout=15)
    got: list[Hook] = []
    try:
        async with asyncio.timeout(30):
            async for hook in resumed:
                got.append(hook)
                if len(got) == 2:
                    await client.set_unit_settings(model, rel.id, "wordpress/0", {"db": "wp2"})
                if len(got) == 3:
                    break
    finally:
        await resumed.close()
    assert [(h.hook, h.remote_unit) for h in got] == [
        ("relation-joined", "wordpress/0"),
        ("relation-changed", "wordpress/0"),
        ("relation-changed", "wordpress/0"),  # live, after the snapshot
    ]
    assert resumed.resyncs == 1
    assert any("no longer kept" in r.getMessage() and "mysql/0" in r.getMessage() for r in caplog.records)

    # A watcher from the log's start is told, with the model's snapshot, and goes on live.
    told: list[ModelSnapshot] = []
    resynced = asyncio.Event()

    def on_resync(snapshot: ModelSnapshot) -> None:
        told.append(snapshot)
        resynced.set()

    watcher = Watch(url, model, after=0, timeout=15, on_resync=on_resync)

    async def first_event() -> ChangeEvent:
        async for event in watcher:
            return event
        raise AssertionError("the watch ended")

    waiting = asyncio.create_task(first_event())
    try:
        await asyncio.wait_for(resynced.wait(), 30)
        await client.add_units(model, "mysql")
        event = await asyncio.wait_for(waiting, 30)
    finally:
        await watcher.close()
    assert len(told) == 1 and watcher.resyncs == 1
    assert [u.name for u in told[0].relations[-1].units] == ["wordpress/0", "mysql/0"]
    assert event.seq == told[0].seq + 1 and event.namespace == "unit"
