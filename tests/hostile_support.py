"""A site for hostile-frame tests: a private vhost, a hostile broker user, a daemon, and the views
that say whether anyone else lost a command (replies by id, the dead-letter queue, reconnects)."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pamqp.frame

from contracts import topology
from daemon import amqp_decoding
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.fault_support import metric
from tests.harness import DaemonProcess, create_vhost, delete_vhost, rabbitmqctl, vhost_url
from tests.raw_amqp import Outcome, RawConnection, properties_payload, short_str

STRICT_UNMARSHAL = getattr(pamqp.frame.unmarshal, "relationd_strict", pamqp.frame.unmarshal)


class Mailbox:
    """An exclusive reply queue on one user's connection; replies kept by command id."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue: aio_pika.abc.AbstractQueue) -> None:
        self.channel = channel
        self.queue = queue
        self.replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.correlated: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    @classmethod
    async def open(cls, connection: aio_pika.abc.AbstractConnection) -> Mailbox:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"replies-{uuid.uuid4().hex[:10]}", exclusive=True)
        box = cls(channel, queue)
        await queue.consume(box._on, no_ack=True)
        return box

    async def _on(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        self.replies[str(body.get("command_id"))].append(body)
        self.correlated.append((message.correlation_id or "", body))
        self.arrived.set()

    def matching(self, token: str) -> list[dict[str, Any]]:
        """Replies whose command id or correlation id contains ``token``."""
        return [r for corr, r in self.correlated if token in corr or token in str(r.get("command_id"))]

    async def wait(self, ids: set[str], timeout: float) -> set[str]:
        """Wait until every id has a reply; the ones still unanswered at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            missing = {i for i in ids if not self.replies.get(i)}
            if not missing or time.monotonic() > deadline:
                return missing
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.2)
            except TimeoutError:
                pass


@dataclass
class DeadLetter:
    body: bytes
    message_id: str | None
    headers: dict[str, Any]


class Site:
    """The daemon, an innocent user (guest) with its mailbox, and the hostile user's URL."""

    def __init__(self, url: str, hostile_url: str, hostile_user: str, daemon: DaemonProcess) -> None:
        self.url = url
        self.hostile_url = hostile_url
        self.hostile_user = hostile_user
        self.daemon = daemon
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.mailbox: Mailbox | None = None
        self.hostile_connection: aio_pika.abc.AbstractConnection | None = None
        self.hostile_mailbox: Mailbox | None = None

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.url)
        self.mailbox = await Mailbox.open(self.connection)
        self.hostile_connection = await aio_pika.connect(self.hostile_url)
        self.hostile_mailbox = await Mailbox.open(self.hostile_connection)

    async def close(self) -> None:
        for connection in (self.connection, self.hostile_connection):
            if connection is not None:
                await connection.close()

    async def send(self, body: dict[str, Any]) -> str:
        """Publish one innocent command as guest; its command id."""
        assert self.mailbox is not None
        command_id = str(uuid.uuid4())
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type=topology.CONTENT_TYPE,
            message_id=command_id,
            correlation_id=command_id,
            reply_to=self.mailbox.queue.name,
            user_id="guest",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.mailbox.channel.default_exchange.publish(message, routing_key=topology.COMMAND_QUEUE)
        return command_id

    async def call(self, body: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
        assert self.mailbox is not None
        command_id = await self.send(body)
        assert not await self.mailbox.wait({command_id}, timeout), f"no reply to {body}"
        return self.mailbox.replies[command_id][0]

    async def publish_hostile(self, header: bytes, body: bytes) -> Outcome:
        """Publish one content header payload, byte for byte, as the hostile user."""
        raw = await RawConnection.from_url(self.hostile_url)
        try:
            return await raw.publish(topology.COMMAND_QUEUE, body, header)
        finally:
            await raw.close()

    def hostile_properties(self, token: str, **raw: bytes) -> dict[str, bytes]:
        """Well-formed properties of a hostile command (its reply comes to the hostile mailbox),
        overridden by ``raw`` (already-encoded values)."""
        assert self.hostile_mailbox is not None
        return {
            "content_type": short_str(topology.CONTENT_TYPE.encode()),
            "delivery_mode": b"\x02",
            "correlation_id": short_str(token.encode()),
            "reply_to": short_str(self.hostile_mailbox.queue.name.encode()),
            "message_id": short_str(token.encode()),
            "user_id": short_str(self.hostile_user.encode()),
        } | raw

    def hostile_header(self, body: bytes, token: str, **raw: bytes) -> bytes:
        return properties_payload(len(body), self.hostile_properties(token, **raw))

    async def dead_letters(self) -> list[DeadLetter]:
        """Everything in the dead-letter queue (taken off it), read over a raw connection: letters
        the broker dead-lettered itself keep properties that aio-pika could not decode."""
        raw = await RawConnection.from_url(self.url)
        try:
            out = []
            while (got := await raw.get(topology.DEAD_LETTER_QUEUE)) is not None:
                header, body = got
                frame = struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce"
                props = amqp_decoding.tolerant_unmarshal(frame, strict=STRICT_UNMARSHAL)[2].properties
                headers = dict(props.headers or {})
                amqp_decoding.fault_of(headers)
                out.append(DeadLetter(body, props.message_id, headers))
            return out
        finally:
            await raw.close()

    def broker_reconnects(self) -> int:
        return int(metric(self.daemon.http("/metrics")[1], 'relationd_reconnects_total{peer="broker"}'))


def deploy(model: str, application: str) -> dict[str, Any]:
    return {"type": "deploy", "model": model, "application": application, "charm": charm("mysql")}


@asynccontextmanager
async def hostile_user_site(url: str, daemon: DaemonProcess) -> AsyncIterator[Site]:
    """A hostile broker user on the vhost of ``url``, served by the running ``daemon``."""
    from urllib.parse import unquote, urlsplit

    vhost = unquote(urlsplit(url).path[1:]) or "/"
    user = f"mallory-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_user", user, "pw-" + user)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        hostile_url = url.replace("guest:guest", f"{user}:pw-{user}")
        site = Site(url, hostile_url, user, daemon)
        try:
            await site.open()
            yield site
        finally:
            await site.close()
    finally:
        rabbitmqctl("delete_user", user)


@asynccontextmanager
async def hostile_site(database_url: str, log_dir: Path, **settings: Any) -> AsyncIterator[Site]:
    """A private vhost with a hostile broker user and a daemon of its own, torn down after."""
    vhost = f"relationd-hostile-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    url = vhost_url(AMQP_URL, vhost)
    daemon = DaemonProcess(url, database_url, log_dir, **settings)
    try:
        daemon.start()
        await daemon.wait_ready()
        async with hostile_user_site(url, daemon) as site:
            yield site
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
        delete_vhost(vhost)
