"""The event watcher: replay, then live, with no gap and no duplicate, across restarts.

The merge itself is checked without a broker (a log and a live stream made up to be hostile:
duplicates, reordering, gaps). Then the real thing: a daemon of the test's own in a private vhost,
watchers started mid-stream, the daemon restarted and every broker connection of the vhost closed
(what a broker restart does to clients) while commands keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client import RelationClient, watch
from client.watch import Watch, follow
from contracts.errors import ModelNotFound
from contracts.events import ChangeEvent, Namespace
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.harness import (
    DaemonProcess,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    rabbitmqctl,
    vhost_url,
)

# ---- the merge, without a broker -------------------------------------------------------------


def _event(seq: int, namespace: str = "unit") -> ChangeEvent:
    return ChangeEvent(
        event_id=1000 + seq,
        model_uuid="00000000-0000-0000-0000-000000000000",
        seq=seq,
        namespace=Namespace(namespace),
        kind="added",
        key={},
        payload={},
        created_at=datetime.now(UTC),
    )


class Scripted:
    """A log of events and a scripted live stream. An event is in the log once committed; each
    live batch first commits everything up to its highest seq (events are published only after
    their commit), then delivers exactly the events the script names: some never arrive live."""

    def __init__(self, log: list[ChangeEvent], committed: int, live: list[list[int]], page: int = 3) -> None:
        self.log = log
        self.committed = committed
        self.live = live
        self.page = page
        self.reads: list[int] = []

    async def read_log(self, after: int) -> list[ChangeEvent]:
        self.reads.append(after)
        return [e for e in self.log if after < e.seq <= self.committed][: self.page]

    async def next_batch(self) -> list[ChangeEvent]:
        if not self.live:
            raise EOFError  # the end of the script
        batch = self.live.pop(0)
        self.committed = max(self.committed, *batch)
        return [e for s in batch for e in self.log if e.seq == s]

    async def collect(self, after: int) -> list[int]:
        seqs: list[int] = []
        with contextlib.suppress(EOFError):
            async for event in follow(self.read_log, self.next_batch, after, self.page):
                seqs.append(event.seq)
        return seqs


async def test_follow_replays_then_drops_live_duplicates() -> None:
    source = Scripted([_event(s) for s in range(1, 8)], committed=7, live=[[5, 6, 7], [7, 7], [6]])
    assert await source.collect(after=2) == [3, 4, 5, 6, 7]
    assert source.reads == [2, 5]  # a full page and a short one; live needed no read


async def test_follow_fills_live_gaps_and_reordering_from_the_log() -> None:
    # Live misses 4, 8 and 9 and delivers 11 before 10.
    source = Scripted(
        [_event(s) for s in range(1, 13)], committed=3, live=[[1, 2, 3], [5], [6, 7], [11, 10], [12]]
    )
    assert await source.collect(after=0) == list(range(1, 13))


async def test_follow_with_a_filter_asks_the_log_when_seq_jumps() -> None:
    # Only relation_unit events match the watcher's filter: seqs 2, 5 and 9 of the model's 1..9.
    matching = [_event(s, "relation_unit") for s in (2, 5, 9)]
    source = Scripted(matching, committed=2, live=[[2], [5], [9], [9]], page=10)
    assert await source.collect(after=0) == [2, 5, 9]
    assert source.reads == [0, 2, 5]  # the replay, then one read per jump in seq


async def test_follow_checks_the_log_when_live_is_quiet() -> None:
    # Events 4 and 5 are committed but never delivered live (a stalled relay); an idle tick finds them.
    source = Scripted([_event(s) for s in range(1, 6)], committed=3, live=[[1, 2, 3]], page=10)
    ticks = 0

    async def next_batch() -> list[ChangeEvent]:
        nonlocal ticks
        if source.live:
            return await source.next_batch()
        ticks += 1
        if ticks > 2:
            raise EOFError
        source.committed = 5
        return []  # nothing live for a while

    seqs: list[int] = []
    with contextlib.suppress(EOFError):
        async for event in follow(source.read_log, next_batch, 0, 10):
            seqs.append(event.seq)
    assert seqs == [1, 2, 3, 4, 5]


# ---- against the daemon ----------------------------------------------------------------------


@pytest.fixture
async def private_amqp() -> AsyncIterator[str]:
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


@pytest.fixture
async def private_database() -> AsyncIterator[str]:
    """A database of this test's own. Daemons sharing a database share its outbox: the session's
    daemon (in another vhost) would relay this test's events to its own broker vhost."""
    url = await create_database("relationd_watch")
    yield url
    await drop_database(url)


class Collector:
    """Runs a watcher in the background and keeps every event it yields."""

    def __init__(self, watcher: Watch) -> None:
        self.watcher = watcher
        self.events: list[ChangeEvent] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self.watcher as events:
            async for event in events:
                self.events.append(event)

    async def until(self, seq: int, timeout: float = 30) -> list[ChangeEvent]:
        try:
            async with asyncio.timeout(timeout):
                while not self.events or self.events[-1].seq < seq:
                    if self.task.done():
                        self.task.result()
                    await asyncio.sleep(0.05)
        except TimeoutError:
            have = [e.seq for e in self.events]
            raise AssertionError(f"no seq {seq} in {timeout}s; have {have}") from None
        return self.events

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.watcher.close()


def _seqs(events: list[ChangeEvent]) -> list[int]:
    return [e.seq for e in events]


def _dumped(events: list[ChangeEvent]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in events]


async def _connect(url: str) -> RelationClient:
    """A client, retried while the broker or the daemon settles after a disruption."""
    async with asyncio.timeout(30):
        while True:
            try:
                return await RelationClient.connect(url, timeout=15)
            except OSError:
                await asyncio.sleep(0.2)


def _close_vhost_connections(url: str) -> None:
    vhost = url.rsplit("/", 1)[-1]
    rabbitmqctl("close_all_connections", "--vhost", vhost, "relationd test: broker restart")


async def test_watch_replays_and_follows_across_daemon_restart_and_broker_disconnect(
    private_amqp: str, private_database: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(private_amqp, private_database, tmp_path)
    daemon.start()
    await daemon.wait_ready()
    client = await RelationClient.connect(private_amqp, timeout=15)
    model = f"w-{uuid.uuid4().hex[:10]}"
    collectors: list[Collector] = []
    try:
        await client.create_model(model)
        await client.deploy(model, "mysql", charm("mysql"), units=1)
        await client.deploy(model, "wordpress", charm("wordpress"), units=1)
        rel = await client.integrate(model, "wordpress", "mysql")
        start = (await client.events_after(model))[-1].seq

        everything = Collector(client.watch(model, after=2))
        units = Collector(watch(private_amqp, model, namespace="unit", timeout=15))
        relation = Collector(watch(private_amqp, model, relation_id=rel.id, timeout=15))
        collectors = [everything, units, relation]

        async def churn(c: RelationClient, n: int) -> None:
            for i in range(n):
                await c.add_units(model, "wordpress")
                unit = "mysql/0" if i % 2 else "wordpress/0"
                await c.enter_scope(model, rel.id, unit, {"n": str(i)})

        await churn(client, 5)  # live, while the watchers replay
        await everything.until(start + 1)

        # The daemon stops and comes back while the watchers keep their queues.
        assert await asyncio.to_thread(daemon.terminate) == 0
        daemon.start()
        await daemon.wait_ready()
        await churn(client, 5)

        # Every connection of the vhost is closed, as a broker restart would.
        await asyncio.to_thread(_close_vhost_connections, private_amqp)
        await client.close()
        await asyncio.sleep(0.5)
        client = await _connect(private_amqp)
        async with asyncio.timeout(30):
            while True:  # until the daemon has its session back
                try:
                    await client.list_models(timeout=2)
                    break
                except TimeoutError:
                    pass
        await churn(client, 5)

        log = await client.events_after(model, 2, limit=10000)
        last = log[-1].seq
        got = await everything.until(last)
        assert _seqs(got) == list(range(3, last + 1))  # no gap, no duplicate
        assert _dumped(got) == _dumped(log)
        assert everything.watcher.reconnects >= 1

        want_units = await client.events_after(model, 0, namespace="unit", limit=10000)
        assert _dumped(await units.until(want_units[-1].seq)) == _dumped(want_units)
        want_rel = await client.events_after(model, 0, relation_id=rel.id, limit=10000)
        assert _dumped(await relation.until(want_rel[-1].seq)) == _dumped(want_rel)
        assert {e.key.get("relation_id") for e in relation.events} == {rel.id}

        # Nothing more arrives that should not.
        await asyncio.sleep(0.5)
        assert _seqs(everything.events) == list(range(3, last + 1))
    finally:
        for collector in collectors:
            await collector.stop()
        await client.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            await asyncio.to_thread(daemon.terminate)


async def test_watch_of_an_unknown_model_raises(client: RelationClient, amqp_url: str) -> None:
    with pytest.raises(ModelNotFound):
        async with watch(amqp_url, "no-such-model", timeout=10) as events:
            async for _ in events:
                pass
