"""RelationClient: send commands over RabbitMQ and await their typed replies."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts import topology
from contracts.errors import error_from_dict


class DaemonUnreachable(TimeoutError):
    """No reply in time: the daemon is down, busy, or the broker is unreachable."""


class RelationClient:
    """An RPC client. Each call has a timeout and a command id; give the same id to retry safely.

    Example::

        async with await RelationClient.connect("amqp://guest:guest@127.0.0.1/") as client:
            await client.call({"type": "create_model", "name": "prod"})
    """

    def __init__(
        self, connection: aio_pika.abc.AbstractConnection, timeout: float = 30.0, user: str | None = None
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        # RabbitMQ checks user_id against the connection's user; the daemon trusts only that.
        self.user = user
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @classmethod
    async def connect(cls, url: str, *, timeout: float = 30.0) -> RelationClient:
        connection = await aio_pika.connect(url, timeout=timeout)
        client = cls(connection, timeout, user=unquote(urlsplit(url).username or "guest"))
        await client._open()
        return client

    async def _open(self) -> None:
        self._channel = await self.connection.channel(publisher_confirms=True)
        self._reply_queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def __aenter__(self) -> RelationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
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

        Raises DaemonUnreachable when no reply arrives within the timeout.
        """
        assert self._channel is not None and self._reply_queue is not None
        command_id = command_id or str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if want_reply:
            self._pending[correlation_id] = future
        props: dict[str, Any] = {
            "content_type": topology.CONTENT_TYPE,
            "message_id": command_id,
            "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
            "user_id": self.user,
        }
        if want_reply:
            props |= {"reply_to": self._reply_queue.name, "correlation_id": correlation_id}
        props |= properties or {}
        await self._channel.default_exchange.publish(
            aio_pika.Message(raw, **props), routing_key=topology.COMMAND_QUEUE
        )
        if not want_reply:
            return None
        try:
            return await asyncio.wait_for(future, timeout or self.timeout)
        except TimeoutError:
            self._pending.pop(correlation_id, None)
            raise DaemonUnreachable(
                f"no reply to command {command_id} within {timeout or self.timeout:.1f}s"
            ) from None

    async def call(
        self, body: dict[str, Any], *, command_id: str | None = None, timeout: float | None = None
    ) -> Any:
        """Send a command and return its result; raise the typed error of a refusal."""
        reply = await self.send(body, command_id=command_id, timeout=timeout)
        assert reply is not None
        if not reply["ok"]:
            raise error_from_dict(reply["error"])
        return reply["result"]
