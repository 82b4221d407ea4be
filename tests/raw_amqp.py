"""A minimal AMQP 0-9-1 client over a socket that sends content headers byte for byte.

Client libraries (aio-pika, pamqp) refuse to encode what a hostile client can send: a short string
that is not UTF-8, a header-table key that is not UTF-8, a delivery mode of 7. This one builds the
content header frame from raw property bytes, so the tests can publish exactly what the broker
accepts and see what reaches relationd. Method frames (handshake, publish, get) use pamqp.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

from pamqp import commands, exceptions, frame
from pamqp.header import ProtocolHeader

# Basic property flag bits, in wire order (AMQP 0-9-1, 4.2.6.1 and the Basic class).
PROPERTY_FLAGS: dict[str, int] = {
    "content_type": 0x8000,
    "content_encoding": 0x4000,
    "headers": 0x2000,
    "delivery_mode": 0x1000,
    "priority": 0x0800,
    "correlation_id": 0x0400,
    "reply_to": 0x0200,
    "expiration": 0x0100,
    "message_id": 0x0080,
    "timestamp": 0x0040,
    "type": 0x0020,
    "user_id": 0x0010,
    "app_id": 0x0008,
    "cluster_id": 0x0004,
}
SHORT_STRING_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


def short_str(raw: bytes) -> bytes:
    """A short string of exactly these bytes."""
    return bytes([len(raw)]) + raw


def long_str(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A field table of (raw key, already-encoded typed value) pairs."""
    payload = b"".join(short_str(key) + value for key, value in entries)
    return long_str(payload)


def encode_properties(values: dict[str, bytes]) -> tuple[int, bytes]:
    """Flags and property list for already-encoded property values (any order in ``values``)."""
    flags = 0
    parts = []
    for name, bit in PROPERTY_FLAGS.items():
        if name in values:
            flags |= bit
            parts.append(values[name])
    return flags, b"".join(parts)


def header_payload(body_size: int, flags_words: bytes, properties: bytes) -> bytes:
    """The payload of a Basic content header frame with flag words and property bytes as given."""
    return struct.pack(">HHQ", 60, 0, body_size) + flags_words + properties


def properties_payload(body_size: int, values: dict[str, bytes]) -> bytes:
    flags, properties = encode_properties(values)
    return header_payload(body_size, struct.pack(">H", flags), properties)


@dataclass
class Outcome:
    """What the broker said to one publish: confirmed, or the channel or connection it closed."""

    confirmed: bool
    closed: str | None = None  # "channel 406 PRECONDITION_FAILED - ..." or "connection 501 ..."


class RawConnection:
    """One connection, one confirming channel; publish with raw content header payloads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frame_max = 131072
        self.closed: str | None = None
        self._delivery_tag = 0

    @classmethod
    async def open(
        cls, host: str, port: int, user: str, password: str, vhost: str, timeout: float = 10
    ) -> RawConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        conn = cls(reader, writer)
        await asyncio.wait_for(conn._handshake(user, password, vhost), timeout)
        return conn

    @classmethod
    async def from_url(cls, url: str) -> RawConnection:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return await cls.open(
            parts.hostname or "127.0.0.1",
            parts.port or 5672,
            unquote(parts.username or "guest"),
            unquote(parts.password or "guest"),
            vhost,
        )

    async def _handshake(self, user: str, password: str, vhost: str) -> None:
        self.writer.write(ProtocolHeader().marshal())
        start = await self._expect(commands.Connection.Start)
        assert "PLAIN" in str(start.mechanisms)
        self._send(0, commands.Connection.StartOk(
            client_properties={"product": "relationd hostile-frame tests"},
            mechanism="PLAIN",
            response=f"\0{user}\0{password}",
            locale="en_US",
        ))  # fmt: skip
        tune = await self._expect(commands.Connection.Tune)
        self.frame_max = tune.frame_max or self.frame_max
        self._send(0, commands.Connection.TuneOk(channel_max=1, frame_max=self.frame_max, heartbeat=0))
        self._send(0, commands.Connection.Open(virtual_host=vhost))
        await self._expect(commands.Connection.OpenOk)
        self._send(1, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)
        self._send(1, commands.Confirm.Select())
        await self._expect(commands.Confirm.SelectOk)

    def _send(self, channel: int, value: Any) -> None:
        self.writer.write(frame.marshal(value, channel))

    def _send_raw(self, frame_type: int, channel: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce")

    async def read_raw(self) -> tuple[int, int, bytes]:
        """The next frame as (type, channel, payload), undecoded."""
        head = await self.reader.readexactly(7)
        frame_type, channel, size = struct.unpack(">BHI", head)
        payload = await self.reader.readexactly(size + 1)
        return frame_type, channel, payload[:-1]

    async def _next(self) -> Any:
        frame_type, channel, payload = await self.read_raw()
        if frame_type == 1:
            return _method(payload)
        _, _, value = frame.unmarshal(
            struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"
        )
        return value

    async def _expect(self, kind: type) -> Any:
        while True:
            value = await self._next()
            if isinstance(value, kind):
                return value
            self._closing(value)

    def _closing(self, value: Any) -> None:
        if isinstance(value, commands.Connection.Close):
            self.closed = f"connection {value.reply_code} {value.reply_text}"
            self._send(0, commands.Connection.CloseOk())
            raise ConnectionError(self.closed)
        if isinstance(value, commands.Channel.Close):
            self.closed = f"channel {value.reply_code} {value.reply_text}"
            self._send(1, commands.Channel.CloseOk())
            raise ConnectionError(self.closed)

    async def publish(
        self, routing_key: str, body: bytes, header: bytes, *, exchange: str = "", timeout: float = 10
    ) -> Outcome:
        """Publish ``body`` with the content header payload ``header``; wait for the broker's word."""
        self._send(1, commands.Basic.Publish(exchange=exchange, routing_key=routing_key))
        self._send_raw(2, 1, header)
        limit = self.frame_max - 8
        for at in range(0, len(body), limit):
            self._send_raw(3, 1, body[at : at + limit])
        await self.writer.drain()
        self._delivery_tag += 1
        try:
            while True:
                value = await asyncio.wait_for(self._next(), timeout)
                if isinstance(value, commands.Basic.Ack) and value.delivery_tag >= self._delivery_tag:
                    return Outcome(True)
                if isinstance(value, commands.Basic.Nack):
                    return Outcome(False, "nack")
                self._closing(value)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            return Outcome(False, self.closed or f"connection lost: {exc!r}")

    async def get(self, queue: str, timeout: float = 10) -> tuple[bytes, bytes] | None:
        """basic.get with auto-ack: the raw content header payload and the body, or None if empty."""
        self._send(1, commands.Basic.Get(queue=queue, no_ack=True))
        await self.writer.drain()
        while True:
            frame_type, _, payload = await asyncio.wait_for(self.read_raw(), timeout)
            if frame_type != 1:
                continue
            value = _method(payload)
            if isinstance(value, commands.Basic.GetEmpty):
                return None
            if isinstance(value, commands.Basic.GetOk):
                break
            self._closing(value)
        _, _, header = await asyncio.wait_for(self.read_raw(), timeout)
        (body_size,) = struct.unpack(">Q", header[4:12])
        body = b""
        while len(body) < body_size:
            _, _, chunk = await asyncio.wait_for(self.read_raw(), timeout)
            body += chunk
        return header, body

    async def close(self) -> None:
        if not self.writer.is_closing():
            try:
                if self.closed is None:
                    self._send(0, commands.Connection.Close(reply_code=200, reply_text="bye"))
                    await self.writer.drain()
                    await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 5)
            except Exception:
                pass
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except Exception:
            pass


def _method(payload: bytes) -> Any:
    """A method frame's payload decoded; a close whose reply text is not UTF-8 (the broker quotes
    the offending property in it) decoded by hand, since pamqp cannot."""
    try:
        _, _, value = frame.unmarshal(struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce")
    except exceptions.UnmarshalingException:
        class_id, method_id, code, length = struct.unpack(">HHHB", payload[:7])
        text = payload[7 : 7 + length].decode("utf-8", "replace")
        if (class_id, method_id) == (10, 50):
            return commands.Connection.Close(reply_code=code, reply_text=text)
        if (class_id, method_id) == (20, 40):
            return commands.Channel.Close(reply_code=code, reply_text=text)
        raise
    return value


__all__ = [
    "Outcome",
    "RawConnection",
    "encode_properties",
    "header_payload",
    "long_str",
    "properties_payload",
    "short_str",
    "table",
]
