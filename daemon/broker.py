"""One AMQP connection, re-established whenever it, a channel or the consumer is lost.

aio-pika's robust connection has open reports of consumers that do not come back after a broker
restart or a broker-side cancel, so the daemon does not rely on it: any loss ends the session,
and the supervisor loop builds a new one (connection, channels, topology, consumer) from scratch.
Unacked messages of the lost session are redelivered by the broker and deduplicated.

With several broker nodes (a comma-separated RELATIOND_AMQP_URL), each new session tries them in
turn starting from the node after the one last used, each with a connect timeout, so a session lost
with its node moves to the next. A node that is up but frozen keeps its TCP connections open: an
AMQP heartbeat and the session's own probe (a round trip on the publishing channel) drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.connection import make_url
from yarl import URL

from contracts import topology
from daemon import amqp_decoding, logs, metrics
from daemon.settings import Settings
from daemon.transient import backoff, is_tls_failure, is_transient

log = logs.get("relationd.broker")

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]
GROUP_SIZE = "x-quorum-initial-group-size"


def _refusal(exc: BaseException) -> str | None:
    """What an operator must fix when the broker is reachable but refuses the session; None for
    an outage. Either way the session is retried (the configuration may be fixed meanwhile)."""
    text = str(exc)
    if f"queue '{topology.DEAD_LETTER_QUEUE}'" in text and "inequivalent arg" in text:
        return (
            f"the broker's dead-letter queue {topology.DEAD_LETTER_QUEUE} differs from what "
            "relationd declares: either it is the classic queue of a relationd before schema 4 "
            "(read what you need from it, delete it with rabbitmqctl -p VHOST delete_queue "
            f"{topology.DEAD_LETTER_QUEUE} and apply deploy/rabbitmq/definitions.json again: "
            "deploy/README.md, 'Upgrading the dead-letter queue'), or RELATIOND_QUORUM_QUEUE, "
            "RELATIOND_QUORUM_GROUP_SIZE or RELATIOND_DEAD_LETTER_* differ from the broker's "
            "definitions; retrying"
        )
    if topology.DEAD_LETTER_QUEUE in text and "home node" in text:
        return (
            f"the dead-letter queue {topology.DEAD_LETTER_QUEUE} is a classic queue whose node is "
            "down, and no session can open without it: bring that node back, or replace the queue "
            "by a quorum queue (deploy/README.md, 'Upgrading the dead-letter queue'); retrying"
        )
    if is_tls_failure(exc):
        return (
            "broker TLS failed (check RELATIOND_AMQP_URL, RELATIOND_AMQP_CA_FILE and the broker's "
            "certificate); retrying"
        )
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
        return (
            "broker refused relationd's declarations: an existing queue or exchange differs (compare "
            "RELATIOND_QUORUM_QUEUE, RELATIOND_DELIVERY_LIMIT, RELATIOND_QUORUM_GROUP_SIZE and "
            "RELATIOND_DEAD_LETTER_* with the broker's definitions); retrying"
        )
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return "broker refused access (check the permissions of the RELATIOND_AMQP_URL user); retrying"
    return None


def node_url(url: str, heartbeat: int) -> URL:
    """``url`` with the heartbeat relationd wants, unless the URL sets one itself."""
    parsed = make_url(url)
    if "heartbeat" in parsed.query:
        return parsed
    return parsed.update_query(heartbeat=heartbeat)


def node_name(url: str) -> str:
    """host:port of a node, for logs (never the credentials)."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port}"


async def _connect(
    url: str | URL, *, ssl_context: ssl.SSLContext | None, timeout: float
) -> aio_pika.abc.AbstractConnection:
    """``aio_pika.connect``, except that a failed connect closes the Connection it created.

    aio_pika.connect creates its Connection before connecting and drops it unclosed when the connect
    fails (refused, bad credentials, TLS): nothing can close it but its ``__del__``, which schedules
    ``close()`` on whatever loop is current when the garbage is collected, or warns "coroutine
    'Connection.close' was never awaited" when none is. The session is retried for as long as the
    broker refuses it, so each retry would leave one more behind for the garbage collector.
    """
    connection = aio_pika.Connection(make_url(url) if isinstance(url, str) else url, ssl_context=ssl_context)
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):  # the connect failure is the one to report
            await connection.close()
        raise
    return connection


def queue_specs(s: Settings) -> tuple[topology.QueueSpec, topology.QueueSpec]:
    """The dead-letter queue and the command queue as these settings declare them (the broker
    refuses a redeclaration with other arguments: deploy/rabbitmq/definitions.json holds the
    defaults)."""
    dead = topology.dead_letter_queue(
        quorum=s.quorum_queue,
        group_size=s.quorum_group_size,
        max_messages=s.dead_letter_max_messages,
        max_bytes=s.dead_letter_max_bytes,
        ttl_seconds=s.dead_letter_ttl_seconds,
    )
    command = topology.command_queue(
        quorum=s.quorum_queue, delivery_limit=s.delivery_limit, group_size=s.quorum_group_size
    )
    return dead, command


# The exchanges Broker.publish sends to: replies (the default exchange), events, dead letters.
_PUBLISHED_TO = frozenset({"", topology.EVENTS_EXCHANGE, topology.DEAD_LETTER_EXCHANGE})
_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)
_TRANSIENT = int(aio_pika.DeliveryMode.NOT_PERSISTENT)


class BrokerUnavailable(ConnectionError):
    """No live session to publish on."""


class Broker:
    """Owns the AMQP session: a consuming channel (bounded prefetch) and a confirming publisher."""

    def __init__(self, settings: Settings) -> None:
        # A message whose properties pamqp cannot decode must not end the session (docs/faults.md).
        amqp_decoding.install()
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
        self._node = -1  # index in settings.amqp_urls() of the node last tried
        self.node: str | None = None  # host:port of the node of the live session

    def _ssl_context(self, url: str) -> ssl.SSLContext | None:
        if not url.startswith("amqps://"):
            return None
        return ssl.create_default_context(cafile=self.settings.amqp_ca_file)

    async def _connect_next(self) -> aio_pika.abc.AbstractConnection:
        """A connection to the first node that answers, from the one after the node last tried."""
        urls = self.settings.amqp_urls()
        failure: BaseException | None = None
        for _ in urls:
            self._node = (self._node + 1) % len(urls)
            url = urls[self._node]
            try:
                connection = await asyncio.wait_for(
                    _connect(
                        node_url(url, self.settings.amqp_heartbeat_seconds),
                        ssl_context=self._ssl_context(url),
                        timeout=self.settings.amqp_connect_timeout_seconds,
                    ),
                    self.settings.amqp_connect_timeout_seconds + 1,
                )
            except Exception as exc:
                failure = exc
                if len(urls) > 1:
                    log.warning(
                        "broker node unreachable", node=node_name(url), error=str(exc) or type(exc).__name__
                    )
                continue
            self.node = node_name(url)
            return connection
        assert failure is not None
        raise failure

    async def _probe(self, channel: aio_pika.abc.AbstractChannel, lost: asyncio.Event) -> None:
        """Drop the session when the node leaves a round trip unanswered for the heartbeat.

        A frozen node (SIGSTOP, a hung VM) keeps its sockets open, and aiormq notices the silence
        only after three heartbeat intervals plus three seconds.
        """
        timeout = self.settings.amqp_heartbeat_seconds
        try:
            underlay = await channel.get_underlay_channel()
            while not lost.is_set():
                await asyncio.sleep(1.0)
                await asyncio.wait_for(
                    underlay.exchange_declare(exchange=topology.EVENTS_EXCHANGE, passive=True), timeout
                )
        except Exception as exc:
            if not lost.is_set():
                log.warning(
                    "broker node stopped answering; moving on",
                    node=self.node,
                    error=str(exc) or type(exc).__name__,
                )
            lost.set()

    async def run(self, on_message: MessageHandler) -> None:
        """Keep a session alive until :meth:`close`; reconnect with backoff after any loss."""
        delays = backoff(0.1, 5.0)
        while not self._stop.is_set():
            lost = asyncio.Event()
            try:
                await self._open(on_message, lost)
                delays = backoff(0.1, 5.0)
                stop_wait = asyncio.create_task(self._stop.wait(), name="broker wait stop")
                lost_wait = asyncio.create_task(lost.wait(), name="broker wait session lost")
                assert self._publish_channel is not None
                probe = asyncio.create_task(
                    self._probe(self._publish_channel, lost), name="broker probe session"
                )
                await asyncio.wait({stop_wait, lost_wait, probe}, return_when=asyncio.FIRST_COMPLETED)
                for task in (stop_wait, lost_wait, probe):
                    task.cancel()
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
                # A lost session's node may be frozen: do not wait long for its goodbye.
                await self._teardown(grace=1.0 if lost.is_set() else 5.0)
            if not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), next(delays))
                except TimeoutError:
                    pass

    async def _open(self, on_message: MessageHandler, lost: asyncio.Event) -> None:
        connection = await self._connect_next()
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
        dlq, spec = queue_specs(self.settings)
        dead = await publish.declare_queue(dlq.name, durable=True, arguments=dlq.arguments)
        await dead.bind(self._dead_letter_exchange, routing_key="")
        arguments = await self._command_queue_arguments(connection, spec)
        self._queue = await consume.declare_queue(spec.name, durable=True, arguments=arguments)
        underlay = await consume.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(lambda *_: lost.set())
        if self._consuming:
            self._consumer_tag = await self._queue.consume(on_message)
        self._sessions += 1
        if self._sessions > 1:
            metrics.RECONNECTS.labels("broker").inc()
        log.info("broker session open", session=self._sessions, node=self.node, consuming=self._consuming)
        self.connected.set()

    async def _command_queue_arguments(
        self, connection: aio_pika.abc.AbstractConnection, spec: topology.QueueSpec
    ) -> dict[str, Any]:
        """The arguments to declare the command queue with: ``spec``'s, or the same without
        x-quorum-initial-group-size when an older relationd declared the queue without it.

        That argument only shapes a queue being created, but the broker refuses a redeclaration
        that adds it; accepting the existing queue spares operators draining and deleting the
        command queue to upgrade. Tried on a channel of its own, which the refusal closes.
        """
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            return spec.arguments
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            if f"'{GROUP_SIZE}'" not in str(exc) or "current is none" not in str(exc):
                raise
        finally:
            if not channel.is_closed:
                await channel.close()
        log.warning(
            "the command queue was declared by an older relationd without "
            f"{GROUP_SIZE}; using it as it is (its replicas: rabbitmq-queues quorum_status "
            f"{topology.COMMAND_QUEUE}; deploy/README.md, 'Upgrading the dead-letter queue')",
        )
        return {k: v for k, v in spec.arguments.items() if k != GROUP_SIZE}

    async def _teardown(self, grace: float = 5.0) -> None:
        self.connected.clear()
        connection, self._connection = self._connection, None
        self._publish_channel = self._events_exchange = self._dead_letter_exchange = None
        self._queue = None
        self._consumer_tag = None
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.wait_for(connection.close(), grace)
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
        """Publish and wait for the broker's confirm. Raises BrokerUnavailable without a session.

        Straight on the publishing channel's aiormq channel, as aio-pika's Exchange.publish does
        underneath, without building an aio-pika Message and its properties: 3-6% of the
        daemon's CPU a command (bench variant aio-pika-publish, issue 17)."""
        if exchange not in _PUBLISHED_TO:
            raise ValueError(f"relationd does not publish to exchange {exchange!r}")
        channel = self._publish_channel
        if channel is None:
            raise BrokerUnavailable("no broker session")
        if channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        properties = aiormq.spec.Basic.Properties(
            content_type=topology.CONTENT_TYPE,
            message_id=message_id,
            correlation_id=correlation_id,
            headers=headers or {},
            delivery_mode=_PERSISTENT if persistent else _TRANSIENT,
        )
        try:
            underlay = await channel.get_underlay_channel()
            await underlay.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties, timeout=30
            )
        except asyncio.CancelledError:
            if library_cancelled():
                raise BrokerUnavailable("the broker session closed before it confirmed the publish") from None
            raise


def library_cancelled() -> bool:
    """Whether a CancelledError just caught came from the library rather than this task's caller.

    aiormq cancels a publish's pending confirmation when its connection closes (a missed heartbeat,
    a frozen node): the publisher sees CancelledError although nobody cancelled its task. That is a
    lost session, to be handled as one; a task that is itself being cancelled must still stop.
    """
    task = asyncio.current_task()
    return task is not None and not task.cancelling()
