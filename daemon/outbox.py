"""The outbox relay: committed change events out to the events exchange, in order, at least once.

An event is pending while its id is in the ``outbox`` table; the relay deletes it from there once
the broker confirms it (the event stays in ``change_event``, the replay log).
One relay at a time across every daemon instance publishes: the one whose own database session
holds the relay lock, so each model's events leave in sequence order however many instances run;
the others try for the lock at every poll and take over when the session that held it ends.
With a primary and a standby, the lock lives on the primary: when it fails or freezes, the relay's
session there ends (or its statement times out and the relay ends it), the relay connects to the
new primary and the lead is taken there by whichever instance asks first.
Woken by LISTEN/NOTIFY on that session, with polling as the fallback. A crash between publish
and mark republishes the batch: consumers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from contracts import topology
from contracts.events import ChangeEvent
from daemon import database, logs, metrics
from daemon.broker import Broker
from daemon.settings import Settings
from daemon.tracing import publish_event
from daemon.transient import backoff, is_transient

log = logs.get("relationd.outbox")

_RELAY_LOCK = 0x72656C6F  # "relo"
# Instances that do not lead tell the leader that they committed events on this channel.
OUTBOX_CHANNEL = "relationd_outbox"
_NOTIFY = "SELECT pg_notify($1, '')"
_TRY_LEAD = "SELECT pg_try_advisory_lock($1)"
_RESIGN = "SELECT pg_advisory_unlock($1)"
# The relay's own session. Its commits only mark events published, and a mark lost in a database
# crash means those events go out again, which consumers already tolerate: no need to wait for
# the WAL flush (a command's commit still does). Keepalives end a half-open session, and with it
# the lead, within about half a minute of a lost network. Every statement of the relay finds its
# rows by primary key; without enable_seqscan off, the plan it keeps from a time the log was small
# (a few pages after an analyze) scans the whole log at every read as the log grows.
RELAY_SESSION = {
    "application_name": "relationd-relay",
    "synchronous_commit": "off",
    "enable_seqscan": "off",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
# The first ids of the outbox, then their events by primary key. Joined instead, with statistics
# that (between vacuums) say the outbox is large, the planner was seen to choose a merge join,
# which reads the log by primary key from its first event. The same statement deletes the ids
# of the batch published before ($2), which its own read does not see deleted, hence the
# filter: one round trip a batch instead of a read and a delete.
_PENDING = f"""
WITH published AS (DELETE FROM outbox WHERE event_id = ANY($2::bigint[]))
SELECT event_id, model_uuid, seq, namespace, kind, routing_key, key, payload, command_id, created_at,
       {database.SYNCHRONOUS_STANDBY} AS fence
FROM change_event
WHERE event_id = ANY (ARRAY(
    SELECT event_id FROM outbox WHERE event_id <> ALL($2::bigint[]) ORDER BY event_id LIMIT $1
))
ORDER BY event_id
"""
_MARK_PUBLISHED = "DELETE FROM outbox WHERE event_id = ANY($1::bigint[])"
# Every published event leaves a dead row in the outbox; until a vacuum removes them, each read
# of the outbox steps over them all, and autovacuum visits a database only once a minute.
_VACUUM = "VACUUM outbox"
_VACUUM_AFTER_ROWS = 1000
_VACUUM_AFTER_SECONDS = 10.0
# Without the events published already whose ids the relay deletes with its next read ($1).
_BACKLOG = """
SELECT count(*) AS n,
       COALESCE(EXTRACT(EPOCH FROM now() - (
           SELECT created_at FROM change_event WHERE event_id = (
               SELECT min(event_id) FROM outbox WHERE event_id <> ALL($1::bigint[])
           )
       )), 0)::float8 AS lag
FROM outbox WHERE event_id <> ALL($1::bigint[])
"""
_PRUNE_COMMANDS = """
DELETE FROM processed_command WHERE processed_at < now() - make_interval(secs => $1)
"""


def event_body(row: Any) -> bytes:
    """The JSON a watcher receives: the ChangeEvent contract, exactly as replay returns it."""
    fields = {k: row[k] for k in ChangeEvent.model_fields}
    return ChangeEvent(**fields).model_dump_json().encode()


class OutboxRelay:
    def __init__(self, settings: Settings, pool: Any, broker: Broker) -> None:
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.backlog = 0
        self.lag = 0.0
        self.leading = False
        self._conn: Any = None
        self._draining = asyncio.Lock()
        self._last_prune = 0.0
        self._last_measure = 0.0
        self._deleted = 0
        # Published and confirmed, still in the outbox: deleted by the relay's next read. Lost
        # with the session (or the process), they are published again: watchers skip a seq
        # they have seen.
        self._published: list[int] = []
        self._last_vacuum = 0.0
        self._notify_leader = asyncio.Event()
        self._saw_broker = False  # whether the last drain found a broker session to publish on

    def committed(self) -> None:
        """A command of this instance committed events: wake the relay if it leads here, else
        have the leading instance woken (polling covers a moment without a leader)."""
        if self.leading:
            self.wake.set()
        else:
            self._notify_leader.set()

    async def _notify(self) -> None:
        """NOTIFY the leader from the relay's session; one notice covers every commit before it."""
        while not self._stop.is_set():
            await self._notify_leader.wait()
            self._notify_leader.clear()
            async with self._draining:
                conn = self._conn
                if conn is None or conn.is_closed() or self.leading:
                    continue
                try:
                    await conn.fetchval(_NOTIFY, OUTBOX_CHANNEL)
                except Exception as exc:
                    log.warning("outbox notice not sent", error=str(exc) or type(exc).__name__)

    async def run(self) -> None:
        notifier = asyncio.create_task(self._notify(), name="outbox notice listener")
        try:
            await self._run()
        finally:
            notifier.cancel()

    async def _run(self) -> None:
        delays = backoff(0.1, 5.0)
        while not self._stop.is_set():
            try:
                self._conn = await database.connect(self.settings, server_settings=RELAY_SESSION)
                await self._conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
            except Exception as exc:
                log.warning("outbox relay cannot reach the database", error=str(exc) or type(exc).__name__)
                await self._close()
                await self._sleep(next(delays))
                continue
            while not self._stop.is_set() and not self._conn.is_closed():
                self.wake.clear()
                try:
                    await self.drain()
                    await self._housekeeping()
                    delays = backoff(0.1, 5.0)
                    timeout = self.settings.outbox_poll_seconds
                except Exception as exc:
                    if database.lost_session(exc):
                        # The server went, froze or was demoted: a new session finds the primary.
                        log.warning(
                            "outbox relay lost its database session", error=str(exc) or type(exc).__name__
                        )
                        break
                    if not is_transient(exc) and not isinstance(exc, ConnectionError):
                        log.exception("outbox relay failed")
                    else:
                        log.warning("outbox relay paused", error=str(exc) or type(exc).__name__)
                    timeout = next(delays)
                await self._sleep(timeout)
            await self._close()

    def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, timeout: float) -> None:
        """Until woken by a commit, stopped, the broker back, or ``timeout`` seconds passed."""
        waiters = [
            asyncio.create_task(self.wake.wait(), name="outbox wait commit"),
            asyncio.create_task(self._stop.wait(), name="outbox wait stop"),
        ]
        # Decided by what the last drain saw, not by now: a broker that connected in between
        # must still end this sleep, or the lead waits a whole poll for nothing.
        if not self._saw_broker:
            waiters.append(asyncio.create_task(self.broker.connected.wait(), name="outbox wait broker"))
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()

    async def _forget_published(self, conn: Any) -> None:
        """Delete the published events' ids now, before another instance takes the lead."""
        if self._published:
            await conn.execute(_MARK_PUBLISHED, self._published)
            self._deleted += len(self._published)
            self._published = []

    async def _close(self) -> None:
        """End the relay's session, and with it the lead (the lock is the session's)."""
        self._published = []  # published again by the next lead: watchers skip a seq seen
        conn, self._conn, self.leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()

    async def drain(self) -> int:
        """Publish pending events, batch by batch, while this instance leads."""
        async with self._draining:
            conn = self._conn
            if conn is None or conn.is_closed():
                return 0
            self._saw_broker = self.broker.connected.is_set()
            if not self._saw_broker:
                if self.leading:  # let an instance that has the broker relay meanwhile
                    self.leading = False
                    await self._forget_published(conn)
                    await conn.fetchval(_RESIGN, _RELAY_LOCK)
                return 0
            if not self.leading:
                self.leading = bool(await conn.fetchval(_TRY_LEAD, _RELAY_LOCK))
                if not self.leading:
                    return 0  # another instance is relaying
            published = await self._publish_pending(conn)
            await self._vacuum(conn)
            return published

    async def _vacuum(self, conn: Any) -> None:
        """Vacuum the outbox after many deletes, or some while after a few. While a big backlog
        drains, wait for more: a vacuum reads all of the outbox's index."""
        now = time.monotonic()
        if self._deleted >= max(_VACUUM_AFTER_ROWS, self.backlog // 5) or (
            self._deleted and now - self._last_vacuum >= _VACUUM_AFTER_SECONDS
        ):
            await conn.execute(_VACUUM)
            self._deleted, self._last_vacuum = 0, now

    async def _publish_pending(self, conn: Any) -> int:
        total = 0
        while True:
            rows = await conn.fetch(_PENDING, self.settings.outbox_batch, self._published)
            self._deleted += len(self._published)
            self._published = []
            if not rows:
                return total
            # Every commit the batch was read from must be on the standby before it is announced.
            if rows[0]["fence"]:
                await database.fence(conn)
            # Publish in event-id order on one channel: the broker keeps that order.
            publishes = [
                asyncio.create_task(
                    publish_event(
                        row["command_id"],
                        functools.partial(
                            self.broker.publish,
                            topology.EVENTS_EXCHANGE,
                            row["routing_key"],
                            event_body(row),
                            message_id=str(row["event_id"]),
                        ),
                    ),
                    name=f"publish event {row['event_id']}",
                )
                for row in rows
            ]
            await asyncio.gather(*publishes)
            self._published = [r["event_id"] for r in rows]
            metrics.EVENTS_PUBLISHED.inc(len(rows))
            total += len(rows)
            if len(rows) < self.settings.outbox_batch:
                # That was all there was. Events committed since then notify, and the notice wakes
                # the relay again: no need for one more (empty) query to find out. This batch's
                # ids go with the next read (at the latest the next poll).
                return total

    async def flush(self, within: float) -> bool:
        """Publish everything pending (shutdown); True when the backlog reached zero in time."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                await self.drain()
                backlog, _ = await self.measure()
                if backlog == 0:
                    async with self._draining:
                        if self._conn is not None and not self._conn.is_closed():
                            await self._forget_published(self._conn)
                    return True
            except Exception as exc:
                log.warning("outbox flush retrying", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(0.1)
        return False

    async def measure(self) -> tuple[int, float]:
        async with database.session(self.pool) as conn:
            row = await conn.fetchrow(_BACKLOG, list(self._published))
        self.backlog, self.lag = int(row["n"]), float(row["lag"])
        metrics.OUTBOX_BACKLOG.set(self.backlog)
        metrics.OUTBOX_LAG.set(self.lag)
        return self.backlog, self.lag

    async def _housekeeping(self) -> None:
        # The backlog gauge and readiness need not be fresher than a second; measuring after
        # every drain cost a query per command at low load.
        now = time.monotonic()
        if now - self._last_measure >= 1.0:
            self._last_measure = now
            await self.measure()
        now = time.monotonic()
        if now - self._last_prune > 60:
            self._last_prune = now
            async with database.session(self.pool) as conn:
                await conn.execute(_PRUNE_COMMANDS, self.settings.command_retention_days * 86400)

    def _on_notify(self, *_: object) -> None:
        if self.leading:  # the others take over by polling, not on every notice
            self.wake.set()
