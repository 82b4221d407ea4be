"""The running daemon: wires the pool, broker, consumer, relay, HTTP and systemd together.

Start: database (schema checked), broker session, then READY. Stop (SIGTERM/SIGINT): STOPPING,
cancel the consumer, finish the commands in flight, flush the outbox, close, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from daemon import database, logs, metrics
from daemon.broker import Broker
from daemon.consumer import CommandConsumer
from daemon.database import create_pool
from daemon.health import HealthServer
from daemon.migrate import SCHEMA_VERSION, schema_version
from daemon.notify import Notifier
from daemon.outbox import OutboxRelay
from daemon.redaction import redact
from daemon.retention import EventRetention
from daemon.settings import Settings

log = logs.get("relationd")


class SchemaNotReady(RuntimeError):
    pass


class Service:
    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.stop_requested = asyncio.Event()
        self.pool: Any = None
        self.broker = Broker(settings)
        self.consumer: CommandConsumer | None = None
        self.relay: OutboxRelay | None = None
        self.retention: EventRetention | None = None
        self.http: HealthServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._start()
            await self._serve()
        finally:
            await self._stop()
        return 0

    async def _start(self) -> None:
        s = self.settings
        self.notifier.status("connecting to the database")
        log.info(
            "starting",
            database=redact(s.database_url.get_secret_value()),
            database_sslmode=s.database_sslmode,
            database_ca_file=s.database_ca_file,
            broker=redact(s.amqp_url.get_secret_value()),
            amqp_ca_file=s.amqp_ca_file,
            prefetch=s.prefetch,
        )
        if s.allow_anonymous:
            log.warning(
                "ANONYMOUS ACCESS IS ON: commands without user_id act as a superuser; "
                "set RELATIOND_ALLOW_ANONYMOUS=false in production"
            )
        # The database may be unreachable for a long time (create_pool waits for ever): a stop
        # request must still end the daemon at once, as systemd expects of a starting service.
        pool = asyncio.create_task(create_pool(s), name="relationd connect database")
        stop = asyncio.create_task(self.stop_requested.wait(), name="relationd wait stop")
        await asyncio.wait({pool, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not pool.done():
            pool.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pool
            log.info("stop requested before the database was reachable")
            return
        self.pool = pool.result()
        async with database.session(self.pool) as conn:
            version = await schema_version(conn)
        if version is None or version < SCHEMA_VERSION:
            raise SchemaNotReady(
                f"database schema is at version {version}, relationd needs {SCHEMA_VERSION}: "
                "run `relationd migrate`"
            )
        if version > SCHEMA_VERSION:
            raise SchemaNotReady(
                f"database schema is at version {version}, newer than this relationd's "
                f"{SCHEMA_VERSION}: upgrade relationd"
            )
        self.relay = OutboxRelay(s, self.pool, self.broker)
        relay = self.relay
        metrics.RELAY_LEADER.set_function(lambda: float(relay.leading))
        metrics.OUTBOX_MAX_LAG.set(s.outbox_max_lag_seconds)
        self.consumer = CommandConsumer(s, self.pool, self.broker, on_events=self.relay.committed)
        self._tasks = [
            asyncio.create_task(self.broker.run(self.consumer.on_message), name="relationd broker session"),
            asyncio.create_task(self.relay.run(), name="relationd outbox relay"),
        ]
        self.retention = EventRetention(s, self.pool)
        self._tasks.append(asyncio.create_task(self.retention.run(), name="relationd event retention"))
        if s.http_port:
            self.http = HealthServer(s.http_host, s.http_port, self.readiness)
            await self.http.start()
        self.notifier.status("connecting to the broker")
        connected = asyncio.create_task(self.broker.connected.wait(), name="relationd wait broker")
        stop = asyncio.create_task(self.stop_requested.wait(), name="relationd wait stop")
        await asyncio.wait({connected, stop}, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        stop.cancel()
        if self.broker.connected.is_set():
            self.notifier.ready("consuming commands")
            log.info("ready")

    async def _serve(self) -> None:
        """Wait for a stop request, feeding the watchdog from this loop: a hung loop stops it."""
        interval = self.notifier.watchdog_interval() or 5.0
        while not self.stop_requested.is_set():
            self.notifier.watchdog()
            if self.broker.connected.is_set():
                self.notifier.status(
                    f"consuming; in flight {len(self.consumer.tasks) if self.consumer else 0}, "
                    f"outbox backlog {self.relay.backlog if self.relay else 0}"
                )
            else:
                self.notifier.status("broker unreachable; reconnecting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), interval)

    async def _stop(self) -> None:
        s = self.settings
        self.notifier.stopping("stopping: finishing commands in flight")
        log.info("stopping")
        await self.broker.stop_consuming()
        if self.consumer is not None:
            if not await self.consumer.drain(s.shutdown_grace_seconds):
                log.warning("commands still in flight at the grace period; they will be redelivered")
                self.consumer.stopping.set()
                await self.consumer.drain(5)
        if self.relay is not None:
            self.notifier.status("stopping: flushing the outbox")
            flushed = await self.relay.flush(min(10.0, s.shutdown_grace_seconds))
            if not flushed:
                log.warning("outbox not empty at exit; the next start publishes the rest")
            self.relay.stop()
        if self.retention is not None:
            self.retention.stop()
        await self.broker.close()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self.http is not None:
            await self.http.stop()
        if self.pool is not None:
            await self.pool.close()
        log.info("stopped")

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {"broker_ok": self.broker.connected.is_set()}
        try:
            async with asyncio.timeout(2):
                async with database.session(self.pool) as conn:
                    await conn.fetchval("SELECT 1")
            checks["database_ok"] = True
        except Exception as exc:
            checks["database_ok"] = False
            checks["database_error"] = str(exc) or type(exc).__name__
        if self.relay is not None:
            checks["outbox_backlog"] = self.relay.backlog
            checks["outbox_lag_seconds"] = round(self.relay.lag, 3)
            checks["outbox_ok"] = self.relay.lag <= self.settings.outbox_max_lag_seconds
        return checks
