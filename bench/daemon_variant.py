"""``relationd run`` with experimental changes switched on by BENCH_* variables, to measure them.

The bench runs the daemon through this module to compare a change with the daemon as it is,
before the change is wired into the daemon itself:

  BENCH_UVLOOP=0          asyncio's default loop (the CLI switches to uvloop when installed)
  BENCH_POOLED_RELAY=1    the outbox relay as it was before it led on a database session of
                          its own (a transaction per batch on a pooled connection)
  BENCH_CUSTOM_PLANS=1    the pool's sessions in PostgreSQL's default plan_cache_mode (a statement
                          whose generic plan costs more is planned again on every execution)
  BENCH_SEQSCAN_ON=1      the pool's and the relay's sessions with sequential scans enabled, as
                          PostgreSQL's default
  BENCH_ALWAYS_FENCE=1    the relay fences every batch it reads, with or without a synchronous
                          standby
  BENCH_RELAY_DELETE_APART=1
                          the relay deletes each published batch from the outbox in a statement
                          of its own, as before, not with its next read
  BENCH_AIO_PIKA_PUBLISH=1
                          replies and events published as aio-pika Messages through its Exchange
                          objects, as before (the daemon publishes on aiormq's channel directly)
  BENCH_NO_READ_AHEAD=1   a batch's handlers each read what they start with themselves, as
                          before (no set-wise read ahead for the batch)
  BENCH_STORE_BAGS_APART=1
                          a settings write stores its bag in a statement of its own, as before,
                          not with its command's events
  BENCH_OTLP_SINK=1       tracing on (the [otel] extra), exporting over OTLP/HTTP to a
                          bench.otlp_sink process that drops every span
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

from daemon import cli
from handlers import settings_bag


def main() -> None:
    if os.environ.get("BENCH_UVLOOP", "1") == "0":
        cli._loop_policy = lambda: None
    if os.environ.get("BENCH_POOLED_RELAY") == "1":
        _pooled_relay()
    if os.environ.get("BENCH_OTLP_SINK") == "1":
        _otlp_sink()
    if os.environ.get("BENCH_CUSTOM_PLANS") == "1":
        from daemon import database

        database.POOL_SESSION.pop("plan_cache_mode")
    if os.environ.get("BENCH_SEQSCAN_ON") == "1":
        from daemon import database, outbox

        database.POOL_SESSION.pop("enable_seqscan")
        outbox.RELAY_SESSION.pop("enable_seqscan")
    if os.environ.get("BENCH_AIO_PIKA_PUBLISH") == "1":
        _aio_pika_publish()
    if os.environ.get("BENCH_RELAY_DELETE_APART") == "1":
        _relay_delete_apart()
    if os.environ.get("BENCH_NO_READ_AHEAD") == "1":
        from handlers import read_ahead

        read_ahead.read = no_read_ahead
    if os.environ.get("BENCH_STORE_BAGS_APART") == "1":
        settings_bag.write = stored_apart(settings_bag.write)
    if os.environ.get("BENCH_ALWAYS_FENCE") == "1":
        from daemon import database, outbox

        outbox._PENDING = outbox._PENDING.replace(database.SYNCHRONOUS_STANDBY, "true")
    cli.main()


async def no_read_ahead(conn: Any, commands: list[tuple[str, Any]]) -> list[dict[Hashable, Any]]:
    return [{} for _ in commands]


def stored_apart(deferred: Any) -> Any:
    """``deferred`` (settings_bag.write) storing the bag at once, in a statement of its own."""

    async def write(ctx: Any, *args: Any, **kwargs: Any) -> settings_bag.Write:
        written: settings_bag.Write = await deferred(ctx, *args, **kwargs)
        await settings_bag.store(ctx.conn, ctx.bag_stores)
        ctx.bag_stores.clear()
        return written

    return write


def _aio_pika_publish() -> None:
    """Broker.publish as it was: an aio-pika Message published through the declared exchange
    objects (the default exchange for replies)."""

    import aio_pika

    from contracts import topology
    from daemon import broker

    async def publish(self: broker.Broker, exchange: str, key: str, body: bytes, **props: Any) -> None:
        channel = self._publish_channel
        target = {
            topology.EVENTS_EXCHANGE: self._events_exchange,
            topology.DEAD_LETTER_EXCHANGE: self._dead_letter_exchange,
            "": channel.default_exchange if channel else None,
        }[exchange]
        if target is None:
            raise broker.BrokerUnavailable("no broker session")
        persistent = props.get("persistent", True)
        message = aio_pika.Message(
            body,
            content_type=topology.CONTENT_TYPE,
            message_id=props.get("message_id"),
            correlation_id=props.get("correlation_id"),
            headers=props.get("headers") or {},
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
        )
        await target.publish(message, routing_key=key, timeout=30)

    broker.Broker.publish = publish  # type: ignore[method-assign, assignment]


def _relay_delete_apart() -> None:
    """Each published batch deleted at once, in a statement of its own (a read and a delete)."""

    from daemon import outbox

    publish_pending = outbox.OutboxRelay._publish_pending

    async def apart(self: outbox.OutboxRelay, conn: Any) -> int:
        # At the bench's load every drain ends with a short batch, so this deletes each batch
        # at once; only a backlog longer than one batch still deletes its full ones on reads.
        published = await publish_pending(self, conn)
        await self._forget_published(conn)
        return published

    outbox.OutboxRelay._publish_pending = apart  # type: ignore[method-assign]


def _otlp_sink() -> None:
    """Start a span sink in its own process and point the daemon's OTLP exporter at it."""
    import atexit
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(port)])
    atexit.register(sink.terminate)
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"


def _pooled_relay() -> None:
    """The relay as it was before it led on a session of its own: each batch a transaction on
    a pooled connection (BEGIN, try the transaction-scoped lock, read, publish, mark, COMMIT,
    waiting for the WAL flush)."""
    import asyncio

    from contracts import topology
    from daemon import metrics, outbox

    try_lock = "SELECT pg_try_advisory_xact_lock($1)"

    async def drain(self):  # type: ignore[no-untyped-def]
        total = 0
        while True:
            if not self.broker.connected.is_set():
                return total
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval(try_lock, outbox._RELAY_LOCK):
                    return total
                rows = await conn.fetch(outbox._PENDING, self.settings.outbox_batch, [])
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
            if len(rows) < self.settings.outbox_batch:
                return total

    def wake(self, *_: object) -> None:  # type: ignore[no-untyped-def]
        self.wake.set()  # no lead to hold: every commit and notice wakes the relay

    outbox.OutboxRelay.drain = drain  # type: ignore[method-assign]
    outbox.OutboxRelay.committed = wake  # type: ignore[method-assign]
    outbox.OutboxRelay._on_notify = wake  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
