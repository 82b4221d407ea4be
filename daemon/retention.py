"""Event retention: the replay log keeps events for ``RELATIOND_EVENT_RETENTION``, then forgets them.

Consumers that fall behind the window read a snapshot instead (``snapshot``; ``events_after``
refuses with EventsExpired), so the log is for catching up, not for ever.

How it stays out of the way:
- It deletes the oldest events first, a prefix of the log by event id, so every model keeps a
  gapless suffix of its sequence (a model's seq and event id grow together under its lock), and
  it stops at the first event still in the outbox: nothing unpublished is ever deleted.
- A batch (``RELATIOND_EVENT_RETENTION_BATCH`` events) is one short transaction that takes only
  the deleted rows' locks, which no command waits for (commands only insert events), with a
  pause between batches.
- One instance at a time: each batch first takes a transaction-level advisory lock and, when
  another instance holds it, this round ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from daemon import database, logs
from daemon.settings import Settings
from daemon.transient import is_transient

log = logs.get("relationd.retention")

_LOCK = 0x72657465  # "rete": one pruner at a time across every instance
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
# The oldest $1 events; of those, delete the ones before the first that is too young or still
# in the outbox (to be published). Deleting a prefix keeps each model's kept events gapless.
_PRUNE = """
WITH head AS (
    SELECT event_id, created_at FROM change_event ORDER BY event_id LIMIT $1
), keep_from AS (
    SELECT min(event_id) AS event_id FROM head
    WHERE created_at >= now() - make_interval(secs => $2)
       OR event_id >= (SELECT min(event_id) FROM outbox)
), gone AS (
    DELETE FROM change_event c USING head
    WHERE c.event_id = head.event_id
      AND head.event_id < COALESCE((SELECT event_id FROM keep_from), 9223372036854775807)
    RETURNING c.event_id
)
SELECT count(*) FROM gone
"""


async def prune_batch(conn: Any, retention_seconds: float, batch: int) -> int | None:
    """Delete at most ``batch`` expired events in one transaction; None when another instance
    holds the pruning lock."""
    async with conn.transaction():
        if not await conn.fetchval(_TRY_LOCK, _LOCK):
            return None
        deleted: int = await conn.fetchval(_PRUNE, batch, retention_seconds)
        return deleted


class EventRetention:
    """Prunes expired events every ``event_retention_interval_seconds``, batch by batch."""

    def __init__(self, settings: Settings, pool: Any) -> None:
        self.settings = settings
        self.pool = pool
        self.deleted = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        retention = self.settings.event_retention
        if retention is None:
            log.info("event retention off: the log keeps every event")
            return
        while not self._stop.is_set():
            try:
                await self.prune()
            except Exception as exc:
                if is_transient(exc) or isinstance(exc, ConnectionError):
                    log.warning("event retention paused", error=str(exc) or type(exc).__name__)
                else:
                    log.exception("event retention failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.event_retention_interval_seconds)

    async def prune(self) -> int:
        """One round: batches until nothing more is expired (or another instance prunes)."""
        retention = self.settings.event_retention
        if retention is None:
            return 0
        seconds, batch = retention.total_seconds(), self.settings.event_retention_batch
        total, started = 0, time.monotonic()
        while not self._stop.is_set():
            async with database.session(self.pool) as conn:
                deleted = await prune_batch(conn, seconds, batch)
            if deleted is None:
                break
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(self.settings.event_retention_pause_seconds)
        if total:
            self.deleted += total
            log.info(
                "expired events deleted",
                events=total,
                seconds=round(time.monotonic() - started, 3),
                retention=str(retention),
            )
        return total
