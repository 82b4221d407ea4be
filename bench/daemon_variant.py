"""``relationd run`` with experimental changes switched on by BENCH_* variables, to measure them.

The bench runs the daemon through this module to compare a change with the daemon as it is,
before the change is wired into the daemon itself:

  BENCH_UVLOOP=0          asyncio's default loop (the CLI switches to uvloop when installed)
  BENCH_OLD_RELAY=1       the outbox relay as it was before it stopped after a short batch and
                          measured its backlog at most once a second
"""

from __future__ import annotations

import os

from daemon import cli


def main() -> None:
    if os.environ.get("BENCH_UVLOOP", "1") == "0":
        cli._loop_policy = lambda: None
    if os.environ.get("BENCH_OLD_RELAY") == "1":
        _old_relay()
    cli.main()


def _old_relay() -> None:
    import asyncio

    from contracts import topology
    from daemon import metrics, outbox

    async def drain(self):  # type: ignore[no-untyped-def]
        total = 0
        while True:
            if not self.broker.connected.is_set():
                return total
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval(outbox._TRY_LOCK, outbox._RELAY_LOCK):
                    return total
                rows = await conn.fetch(outbox._PENDING, self.settings.outbox_batch)
                if not rows:
                    return total
                await asyncio.gather(
                    *(
                        self.broker.publish(
                            topology.EVENTS_EXCHANGE,
                            row["routing_key"],
                            outbox.event_body(row),
                            message_id=str(row["event_id"]),
                        )
                        for row in rows
                    )
                )
                await conn.execute(outbox._MARK_PUBLISHED, [r["event_id"] for r in rows])
            metrics.EVENTS_PUBLISHED.inc(len(rows))
            total += len(rows)

    housekeeping = outbox.OutboxRelay._housekeeping

    async def every_time(self):  # type: ignore[no-untyped-def]
        self._last_measure = 0.0
        await housekeeping(self)

    outbox.OutboxRelay.drain = drain  # type: ignore[method-assign]
    outbox.OutboxRelay._housekeeping = every_time  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
