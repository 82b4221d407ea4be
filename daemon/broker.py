"""One AMQP connection, re-established whenever it, a channel or the consumer is lost.

aio-pika's robust connection has open reports of consumers that do not come back after a broker
restart or a broker-side cancel, so the daemon does not rely on it: any loss ends the session,
and the supervisor loop builds a new one (connection, channels, topology, consumer) from scratch.
Unacked messages of the lost session are redelivered by the broker and deduplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.connection import make_url

from contracts import topology
from daemon import logs, metrics
from daemon.settings import Settings
from daemon.transient import backoff, is_tls_failure, is_transient

log = logs.get("relationd.broker")

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


def _refusal(exc: BaseException) -> str | None:
    """What an operator must fix when the broker is reachable but refuses the session; None for
    an outage. Either way the session is retried (the configuration may be fixed meanwhile)."""
    if is_tls_failure(exc):
        return (
            "broker TLS failed (check RELATIOND_AMQP_URL, RELATIOND_AMQP_CA_FILE and the broker's "
            "certificate); retrying"
        )
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
        return (
            "broker refused relationd's declarations: an existing queue or exchange differs (compare "
            "RELATIOND_QUORUM_QUEUE and RELATIOND_DELIVERY_LIMIT with the broker's definitions); retrying"
        )
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return "broker refused access (check the permissions of the RELATIOND_AMQP_URL user); retrying"
    return None


async def _connect(
    url: str, *, ssl_context: ssl.SSLContext | None, timeout: float
) -> aio_pika.abc.AbstractConnection:
    """``aio_pika.connect``, except that a failed connect closes the Connection it created.

    aio_pika.connect creates its Connection before connecting and drops it unclosed when the connect
    fails (refused, bad credentials, TLS): nothing can close it but its ``__del__``, which schedules
    ``close()`` on whatever loop is current when the garbage is collected, or warns "coroutine
    'Connection.close' was never awaited" when none is. The session is retried for as long as the
    broker refuses it, so each retry would leave one more behind for the garbage collector.
    """
    connection = aio_pika.Connection(make_url(url), ssl_context=ssl_context)
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):  # the connect failure is the one to report
            await connection.close()
        raise
    return connection


class BrokerUnavailable(ConnectionError):
    """No live session to publish on."""


class Broker:
    """Owns the AMQP session: a consuming channel (bounded prefetch) and a confirming publisher."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._consuming = True
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._events_exchange: aio_pika.abc.AbstractExchange | None = None
        self._dead_letter_exchange: aio_pika.abc.AbstractExchange | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._sessions = 0

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.amqp_url.get_secret_value().startswith("amqps://"):
            return None
        return ssl.create_default_context(cafile=self.settings.amqp_ca_file)

    async def run(self, on_message: MessageHandler) -> None:
        """Keep a session alive until :meth:`close`; reconnect with backoff after any loss."""
        delays = backoff(0.1, 5.0)
        while not self._stop.is_set():
            lost = asyncio.Event()
            try:
                await self._open(on_message, lost)
                delays = backoff(0.1, 5.0)
                stop_wait = asyncio.create_task(self._stop.wait())
                lost_wait = asyncio.create_task(lost.wait())
                await asyncio.wait({stop_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                lost_wait.cancel()
                if lost.is_set() and not self._stop.is_set():
                    log.warning("broker session lost; reconnecting")
            except Exception as exc:
                refusal = _refusal(exc)
                if refusal is not None:
                    log.error(refusal, error=str(exc) or type(exc).__name__)
                elif not is_transient(exc) and not isinstance(exc, aio_pika.exceptions.AMQPError):
                    log.exception("broker session failed")
                else:
                    log.warning("broker unreachable", error=str(exc) or type(exc).__name__)
            finally:
                await self._teardown()
            if not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), next(delays))
                except TimeoutError:
                    pass

    async def _open(self, on_message: MessageHandler, lost: asyncio.Event) -> None:
        url = self.settings.amqp_url.get_secret_value()
        connection = await _connect(url, ssl_context=self._ssl_context(), timeout=10)
        self._connection = connection
        connection.close_callbacks.add(lambda *_: lost.set())
        publish = await connection.channel(publisher_confirms=True)
        consume = await connection.channel(publisher_confirms=False)
        for channel in (publish, consume):
            channel.close_callbacks.add(lambda *_: lost.set())
        await consume.set_qos(prefetch_count=self.settings.prefetch)
        self._publish_channel = publish
        self._events_exchange = await publish.declare_exchange(
            topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._dead_letter_exchange = await publish.declare_exchange(
            topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dlq = topology.dead_letter_queue()
        dead = await publish.declare_queue(dlq.name, durable=True, arguments=dlq.arguments)
        await dead.bind(self._dead_letter_exchange, routing_key="")
        spec = topology.command_queue(
            quorum=self.settings.quorum_queue, delivery_limit=self.settings.delivery_limit
        )
        self._queue = await consume.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        underlay = await consume.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(lambda *_: lost.set())
        if self._consuming:
            self._consumer_tag = await self._queue.consume(on_message)
        self._sessions += 1
        if self._sessions > 1:
            metrics.RECONNECTS.labels("broker").inc()
        log.info("broker session open", session=self._sessions, consuming=self._consuming)
        self.connected.set()

    async def _teardown(self) -> None:
        self.connected.clear()
        connection, self._connection = self._connection, None
        self._publish_channel = self._events_exchange = self._dead_letter_exchange = None
        self._queue = None
        self._consumer_tag = None
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.wait_for(connection.close(), 5)
            except Exception:  # the session is already gone; nothing more to release
                pass

    async def stop_consuming(self) -> None:
        """Cancel the consumer (graceful shutdown); publishing goes on."""
        self._consuming = False
        queue, tag = self._queue, self._consumer_tag
        if queue is not None and tag is not None:
            try:
                await asyncio.wait_for(queue.cancel(tag), 5)
            except Exception as exc:
                log.warning("consumer cancel failed", error=str(exc))
        self._consumer_tag = None

    async def close(self) -> None:
        self._stop.set()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        headers: dict[str, Any] | None = None,
        persistent: bool = True,
    ) -> None:
        """Publish and wait for the broker's confirm. Raises BrokerUnavailable without a session."""
        target = {
            topology.EVENTS_EXCHANGE: self._events_exchange,
            topology.DEAD_LETTER_EXCHANGE: self._dead_letter_exchange,
            "": self._publish_channel.default_exchange if self._publish_channel else None,
        }[exchange]
        if target is None:
            raise BrokerUnavailable("no broker session")
        message = aio_pika.Message(
            body,
            content_type=topology.CONTENT_TYPE,
            message_id=message_id,
            correlation_id=correlation_id,
            headers=headers or {},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            if persistent
            else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        await target.publish(message, routing_key=routing_key, timeout=30)
