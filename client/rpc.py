"""RelationClient: send commands over RabbitMQ and await their typed replies.

The URL may list several broker nodes, comma-separated (a cluster). The client connects to the
first that answers; when its node goes, it reconnects to the next by itself and resends the calls
that were waiting for a reply, with the same command id, within their timeout (the daemon answers
a repeated id with the stored reply, so a command is never applied twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError, DeliveryError, ProbableAuthenticationError
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError

from client.api import RelationCommands
from contracts import topology, tracing
from contracts.errors import ErrorCode, Unauthorized, error_from_dict

if TYPE_CHECKING:
    from client.watch import Watch

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Proposed to the broker unless the URL sets `heartbeat`: a frozen node is noticed after about
# (5 + 1) * 3 s by aiormq, instead of 3 minutes with the broker's 60.
DEFAULT_HEARTBEAT = 5
# Each node of a list gets at most this long to answer a connect before the next is tried.
NODE_CONNECT_TIMEOUT = 5.0


def node_urls(url: str) -> list[str]:
    """The broker nodes of a comma-separated URL list, in order."""
    return [u.strip() for u in url.split(",") if u.strip()]


def _with_heartbeat(url: str) -> str:
    parsed = make_url(url)
    if "heartbeat" in parsed.query:
        return url
    return str(parsed.update_query(heartbeat=DEFAULT_HEARTBEAT))


async def connect_node(
    urls: list[str], *, start: int = 0, timeout: float
) -> tuple[aio_pika.abc.AbstractConnection, int]:
    """A connection to the first node that answers, trying ``urls`` in turn from ``start``;
    the connection and the index of its node. Raises the last node's failure when none does."""
    failure: BaseException | None = None
    per_node = timeout if len(urls) == 1 else min(timeout, NODE_CONNECT_TIMEOUT)
    for step in range(len(urls)):
        index = (start + step) % len(urls)
        try:
            connection = await asyncio.wait_for(
                _open_connection(_with_heartbeat(urls[index]), timeout=per_node), per_node
            )
        except ProbableAuthenticationError:
            raise  # the same users on every node: another node will not take them either
        except (OSError, AMQPError, TimeoutError) as exc:
            failure = exc
            continue
        return connection, index
    assert failure is not None, "no broker URL given"
    raise failure


async def _open_connection(url: str, *, timeout: float) -> aio_pika.abc.AbstractConnection:
    """``aio_pika.connect(url, timeout=timeout)``, except that a failed connect closes its Connection.

    aio_pika.connect creates its Connection before connecting and drops it unclosed when the connect
    fails (refused, bad credentials, TLS, a timeout or a cancel around it): the caller never gets
    it, and its ``__del__`` schedules ``close()`` on whatever loop is current when the garbage is
    collected, or warns "coroutine 'Connection.close' was never awaited" when none is.
    """
    connection = aio_pika.Connection(make_url(url))
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):  # the connect failure is the one to report
            await connection.close()
        raise
    return connection


def _rate_limited_pause(reply: dict[str, Any] | None) -> float | None:
    """Seconds to wait before sending a RateLimited command again; None for any other reply."""
    error = (reply or {}).get("error") or {}
    if error.get("code") != ErrorCode.RateLimited:
        return None
    try:
        return min(30.0, max(0.01, float((error.get("details") or {}).get("retry_after", 0.1))))
    except (TypeError, ValueError):
        return 0.1


class DaemonUnreachable(TimeoutError):
    """No reply in time: the daemon is down, busy, or the broker is unreachable."""


class BrokerUnreachable(DaemonUnreachable):
    """The broker refused or did not answer the connection (or dropped it)."""


class _ConnectionLost(BrokerUnreachable):
    """The connection closed while a call waited for its reply: resent on the next session."""


class RelationClient(RelationCommands):
    """An RPC client. Each call has a timeout and a command id; give the same id to retry safely.

    The typed methods (``create_model``, ``deploy``, ``integrate``, ...) come from
    :class:`client.api.RelationCommands`; ``call`` and ``send`` take raw command bodies.

    Example::

        async with await RelationClient.connect("amqp://guest:guest@127.0.0.1/") as client:
            model = await client.create_model("prod")
            await client.call({"type": "list_models"})
    """

    def __init__(
        self,
        connection: aio_pika.abc.AbstractConnection,
        timeout: float = 30.0,
        user: str | None = None,
        *,
        url: str | None = None,
        node: int = 0,
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        # RabbitMQ checks user_id against the connection's user; the daemon trusts only that.
        self.user = user
        # Kept so that helpers needing a connection of their own (watch) can open one.
        self.url = url
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # The node (index in the URL list) of the live connection; set while a session is usable.
        self.node = node
        self.reconnects = 0
        self._ready = asyncio.Event()
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, timeout: float = 30.0, start: int = 0) -> RelationClient:
        """Connect to the broker at ``url`` (one node, or several comma-separated: the first that
        answers, from the one at index ``start``).

        Raises BrokerUnreachable when that fails in time, Unauthorized when the broker refuses
        the credentials.
        """
        urls = node_urls(url)
        try:
            connection, node = await asyncio.wait_for(
                connect_node(urls, start=start, timeout=timeout), timeout
            )
        except ProbableAuthenticationError as exc:
            raise Unauthorized(f"the broker refused the credentials: {exc}") from exc
        except (OSError, AMQPError, TimeoutError) as exc:
            raise BrokerUnreachable(f"cannot connect to the broker: {exc or type(exc).__name__}") from exc
        user = unquote(urlsplit(urls[node]).username or "guest")
        client = cls(connection, timeout, user=user, url=url, node=node)
        try:
            await client._open()
        except BaseException:
            await connection.close()
            raise
        return client

    async def _open(self) -> None:
        # on_return_raises: a command the broker cannot route (no command queue) fails at once.
        self._channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self._reply_queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)
        # A reply cannot arrive on a closed connection: fail the waiting calls at once.
        self.connection.close_callbacks.add(self._on_connection_closed)
        self._channel.close_callbacks.add(self._on_channel_closed)
        self._ready.set()

    def _on_connection_closed(self, sender: object, exc: BaseException | None = None) -> None:
        if sender is not self.connection:
            return  # a connection this client already left
        self._ready.clear()
        self._fail_pending(_ConnectionLost(f"the broker connection closed: {exc}"))
        if not self._closing and self.url is not None and self._reconnecting is None:
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._reconnect(), name="client reconnect"
            )

    def _on_channel_closed(self, _sender: object, exc: BaseException | None = None) -> None:
        if not self.connection.is_closed:  # the channel alone: the broker closed it on an error
            self._fail_pending(BrokerUnreachable(f"the broker closed the channel: {exc}"))

    def _fail_pending(self, error: BrokerUnreachable) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    async def _reconnect(self) -> None:
        """Connect again, from the node after the lost one, until it works or the client closes."""
        assert self.url is not None
        urls = node_urls(self.url)
        delay = 0.1
        try:
            while not self._closing:
                try:
                    connection, node = await connect_node(urls, start=self.node + 1, timeout=self.timeout)
                except (OSError, AMQPError, TimeoutError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if self._closing:
                    await connection.close()
                    return
                self.connection, self.node = connection, node
                try:
                    await self._open()
                except (OSError, AMQPError, ChannelInvalidStateError, TimeoutError):
                    with contextlib.suppress(Exception):
                        await connection.close()
                    continue
                self.reconnects += 1
                return
        finally:
            self._reconnecting = None

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def __aenter__(self) -> RelationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        reconnecting = self._reconnecting
        if reconnecting is not None:
            reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnecting
        if not self.connection.is_closed:
            await self.connection.close()

    async def send(
        self,
        body: dict[str, Any] | bytes,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
        want_reply: bool = True,
        properties: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Publish one command and return its whole reply (``{"ok": ...}``).

        A ``RateLimited`` refusal (the daemon held too many of this user's commands; nothing was
        stored) is not returned while the timeout allows: the same command id is sent again after
        the refusal's ``retry_after``. Nor is the loss of the broker connection: the client
        reconnects (to the next node of its list) and sends the same command id again.

        Raises DaemonUnreachable when no reply arrives within the timeout, or when the broker has
        no command queue (no relationd ever ran on this virtual host); BrokerUnreachable when the
        connection is gone.
        """
        timeout = timeout or self.timeout
        command_id = command_id or str(uuid.uuid4())
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reply = await self._send_once(raw, command_id, deadline, timeout, want_reply, properties)
                pause = _rate_limited_pause(reply)
                if pause is None or loop.time() + pause >= deadline:
                    return reply
                await asyncio.sleep(pause)
                continue
            except _ConnectionLost:
                if self._closing or self.url is None or loop.time() >= deadline:
                    raise
            # The node went while the call waited: the same command id on the next session.
            try:
                await asyncio.wait_for(self._ready.wait(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise BrokerUnreachable(
                    f"lost the broker while sending command {command_id} and no node took the "
                    f"client back within {timeout:.1f}s"
                ) from None

    async def _send_once(
        self,
        raw: bytes,
        command_id: str,
        deadline: float,
        timeout: float,
        want_reply: bool,
        properties: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        assert self._channel is not None and self._reply_queue is not None
        loop = asyncio.get_running_loop()
        connection = self.connection
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        props: dict[str, Any] = {
            "content_type": topology.CONTENT_TYPE,
            "message_id": command_id,
            "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
            "user_id": self.user,
        }
        if want_reply:
            props |= {"reply_to": self._reply_queue.name, "correlation_id": correlation_id}
            self._pending[correlation_id] = future
        props |= properties or {}
        if tracing.tracer() is not None:
            props["headers"] = tracing.inject(props.get("headers"))
        try:
            await asyncio.wait_for(
                self._channel.default_exchange.publish(
                    aio_pika.Message(raw, **props), routing_key=topology.COMMAND_QUEUE
                ),
                max(deadline - loop.time(), 0.001),
            )
            if not want_reply:
                return None
            return await asyncio.wait_for(future, max(deadline - loop.time(), 0.001))
        except DaemonUnreachable:
            raise  # the connection closed while waiting (a TimeoutError too: keep its message)
        except DeliveryError:
            raise DaemonUnreachable(
                f"command {command_id} was not routed: the broker has no queue "
                f"{topology.COMMAND_QUEUE!r} (is relationd running on this virtual host?)"
            ) from None
        except TimeoutError:
            raise DaemonUnreachable(f"no reply to command {command_id} within {timeout:.1f}s") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the caller's own cancellation
            # aiormq cancels a pending confirmation when its connection closes (a missed
            # heartbeat, a frozen node): a lost broker, sent again on the next session.
            raise _ConnectionLost(
                f"lost the broker while sending command {command_id}: the confirmation was cancelled"
            ) from None
        except (OSError, AMQPError, ChannelInvalidStateError) as exc:
            gone = connection.is_closed or isinstance(exc, (OSError, AMQPConnectionError))
            lost = _ConnectionLost if gone else BrokerUnreachable
            raise lost(
                f"lost the broker while sending command {command_id}: {exc or type(exc).__name__}"
            ) from exc
        finally:
            self._pending.pop(correlation_id, None)

    async def call(
        self, body: dict[str, Any], *, command_id: str | None = None, timeout: float | None = None
    ) -> Any:
        """Send a command and return its result; raise the typed error of a refusal."""
        command_id = command_id or str(uuid.uuid4())
        attributes = {"command_id": command_id, "type": body.get("type"), "model": body.get("model")}
        with tracing.span("relationd send", "PRODUCER", **attributes):
            reply = await self.send(body, command_id=command_id, timeout=timeout)
            tracing.annotate(ok=reply.get("ok") if reply else None)
        assert reply is not None
        if not reply["ok"]:
            raise error_from_dict(reply["error"])
        return reply["result"]

    def watch(
        self,
        model: str,
        *,
        after: int = 0,
        namespace: str | None = None,
        relation_id: int | None = None,
    ) -> Watch:
        """Follow ``model``'s change events after ``after`` on a connection of its own.

        See :class:`client.watch.Watch`: replay, then live, across reconnects.
        """
        from client.watch import Watch

        if self.url is None:
            raise ValueError("watch needs the client's AMQP URL: connect with RelationClient.connect")
        return Watch(
            self.url, model, after=after, namespace=namespace, relation_id=relation_id, timeout=self.timeout
        )
