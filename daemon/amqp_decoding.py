"""Content headers that pamqp cannot decode reach the consumer marked, instead of ending the session.

pamqp 4.0 (used by aiormq 7) raises on a content header whose short-string property (message_id,
correlation_id, reply_to, content_type, ...) or header-table key is not UTF-8, or whose timestamp
lies past the year 9999. The broker delivers such headers as it got them; aiormq's frame reader
dies on the error and takes the whole connection down, the message goes back to the queue, and
every other message in flight on the session is redelivered with it (docs/faults.md, "Undecodable
AMQP properties"). Only a content header frame is decoded again here, property by property, with
each undecodable value replaced and the fault recorded under :data:`MARKER` in its headers, so the
consumer can refuse that one message as InvalidCommand and the session carries on.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pamqp.frame
from pamqp import commands, constants, decode, exceptions
from pamqp.header import ContentHeader

MARKER = "x-relationd-undecodable"
_SHORT_STRING_MAX = 255
_FAULTS_SHOWN = 5
_Properties = commands.Basic.Properties


@dataclass(frozen=True)
class Fault:
    """One property the library could not decode as sent; ``field`` names it as sent on the wire."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field} {self.reason}"


@dataclass(frozen=True)
class Undecodable:
    """The marker placed in a decoded message's headers. A client cannot forge it: no AMQP field
    value decodes to this type."""

    faults: tuple[Fault, ...]

    @property
    def message(self) -> str:
        """The first few faults (a header table may hold thousands of bad keys)."""
        shown = "; ".join(str(f) for f in self.faults[:_FAULTS_SHOWN])
        more = len(self.faults) - _FAULTS_SHOWN
        return "message properties not decodable: " + shown + (f"; and {more} more" if more > 0 else "")

    @property
    def field(self) -> str:
        return self.faults[0].field


def fault_of(headers: dict[str, Any] | None) -> Undecodable | None:
    """Remove and return the marker a tolerant decode left in ``headers``; None when decoded as is."""
    if not headers:
        return None
    marker = headers.get(MARKER)
    if not isinstance(marker, Undecodable):
        return None
    del headers[MARKER]
    return marker


def _printable(raw: bytes) -> str:
    return repr(raw[:40])[2:-1] + ("..." if len(raw) > 40 else "")


def _lossy_short_string(raw: bytes) -> str:
    """Text for bytes that are not UTF-8, short enough to be sent again as a short string."""
    text = raw.decode("utf-8", "replace")
    while len(text.encode()) > _SHORT_STRING_MAX:
        text = text[:-1]
    return text


class _Decoder:
    """Decodes one property list, collecting faults instead of raising for the ones it can mend."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def short_str(self, data: bytes, field: str) -> tuple[int, str]:
        length = data[0]
        raw = data[1 : 1 + length]
        if len(raw) < length:
            raise ValueError(f"{field}: short string truncated")
        try:
            return 1 + length, raw.decode("utf-8")
        except UnicodeDecodeError:
            self.faults.append(Fault(field, f"is not valid UTF-8 ({_printable(raw)})"))
            return 1 + length, _lossy_short_string(raw)

    def timestamp(self, data: bytes, field: str) -> tuple[int, datetime.datetime | str | None]:
        try:
            return decode.timestamp(data)
        except (ValueError, OverflowError, OSError):
            (seconds,) = struct.unpack(">Q", data[:8])
            self.faults.append(Fault(field, f"timestamp {seconds} is out of range"))
            return 8, None if field == "timestamp" else f"out-of-range timestamp {seconds}"

    def table(self, data: bytes, field: str) -> tuple[int, dict[str, Any]]:
        (length,) = struct.unpack(">I", data[:4])
        end = 4 + length
        if end > len(data):
            raise ValueError(f"{field}: field table length exceeds data")
        offset, table = 4, dict[str, Any]()
        while offset < end:
            key_length = data[offset]
            raw_key = data[offset + 1 : offset + 1 + key_length]
            offset += 1 + key_length
            try:
                key = raw_key.decode("utf-8")
            except UnicodeDecodeError:
                key = _lossy_short_string(raw_key)
                self.faults.append(Fault(field, f"has a key that is not valid UTF-8 ({_printable(raw_key)})"))
            consumed, value = self.value(data[offset:end], f"{field}[{key}]")
            offset += consumed
            table[key] = value
        return end, table

    def array(self, data: bytes, field: str) -> tuple[int, list[Any]]:
        (length,) = struct.unpack(">I", data[:4])
        end = 4 + length
        if end > len(data):
            raise ValueError(f"{field}: field array length exceeds data")
        offset, values = 4, list[Any]()
        while offset < end:
            consumed, value = self.value(data[offset:end], f"{field}[{len(values)}]")
            offset += consumed
            values.append(value)
        return end, values

    def value(self, data: bytes, field: str) -> tuple[int, Any]:
        kind = data[:1]
        nested: dict[bytes, Callable[[bytes, str], tuple[int, Any]]] = {
            b"F": self.table,
            b"A": self.array,
            b"T": self.timestamp,
        }
        if kind in nested:
            consumed, value = nested[kind](data[1:], field)
        elif kind in decode.TABLE_MAPPING:
            consumed, value = decode.TABLE_MAPPING[kind](data[1:])
        else:
            raise ValueError(f"{field}: unknown field type {kind!r}")
        return 1 + consumed, value


def decode_properties(flags: int, data: bytes) -> tuple[Any, list[Fault]]:
    """Basic properties from a property list, and the faults mended on the way."""
    decoder = _Decoder()
    properties = _Properties()
    for name in _Properties.__slots__:
        if not flags & _Properties.flags[name]:
            continue
        wire_name = "type" if name == "message_type" else name
        kind = getattr(_Properties, "_" + name)
        value: Any
        if kind == "shortstr":
            consumed, value = decoder.short_str(data, wire_name)
        elif kind == "table":
            consumed, value = decoder.table(data, wire_name)
        elif kind == "timestamp":
            consumed, value = decoder.timestamp(data, wire_name)
        else:
            consumed, value = decode.by_type(data, kind)
        setattr(properties, name, value)
        data = data[consumed:]
    return properties, decoder.faults


def _unusable(properties: Any) -> list[Fault]:
    """Values pamqp decodes but aio-pika cannot take (its IncomingMessage would raise and the
    message would stay unacknowledged). RabbitMQ 3.10 refuses these at publish; others may not."""
    faults = []
    if properties.delivery_mode not in (None, 0, 1, 2):
        faults.append(Fault("delivery_mode", f"is {properties.delivery_mode}, not 1 or 2"))
        properties.delivery_mode = None
    if properties.expiration is not None:
        try:
            float(properties.expiration)
        except ValueError:
            faults.append(Fault("expiration", f"{properties.expiration[:40]!r} is not a number"))
            properties.expiration = None
    return faults


def _header_payload(data_in: bytes) -> bytes | None:
    """The payload of a whole, well-framed content header frame; None for anything else."""
    if len(data_in) < constants.FRAME_HEADER_SIZE + 1 or data_in[0] != constants.FRAME_HEADER:
        return None
    _, _, size = struct.unpack(">BHI", data_in[: constants.FRAME_HEADER_SIZE])
    end = constants.FRAME_HEADER_SIZE + size
    if len(data_in) < end + 1 or data_in[end] != constants.FRAME_END:
        return None
    return data_in[constants.FRAME_HEADER_SIZE : end]


def _mark(properties: Any, faults: list[Fault]) -> None:
    if properties.reply_to is not None and any(f.field == "reply_to" for f in faults):
        properties.reply_to = None  # no answer to a queue other than the one the client named
    headers = properties.headers if isinstance(properties.headers, dict) else {}
    headers[MARKER] = Undecodable(tuple(faults))
    properties.headers = headers


def tolerant_unmarshal(
    data_in: bytes, *, strict: Callable[[bytes], tuple[int, int, Any]]
) -> tuple[int, int, Any]:
    """``pamqp.frame.unmarshal``, except that a content header frame always decodes (marked)."""
    try:
        consumed, channel, value = strict(data_in)
    except Exception:
        payload = _header_payload(data_in)
        if payload is None:
            raise
        try:
            content = ContentHeader()
            content.class_id, content.weight, content.body_size = struct.unpack(">HHQ", payload[:12])
            offset, flags = ContentHeader._get_flags(payload[12:])
            properties, faults = decode_properties(flags, payload[12 + offset :])
        except Exception as err:
            raise exceptions.UnmarshalingException(ContentHeader, err) from err
        content.properties = properties
        _mark(properties, faults + _unusable(properties))
        channel = struct.unpack(">H", data_in[1:3])[0]
        return constants.FRAME_HEADER_SIZE + len(payload) + 1, channel, content
    if isinstance(value, ContentHeader):
        faults = _unusable(value.properties)
        if faults:
            _mark(value.properties, faults)
    return consumed, channel, value


def install() -> None:
    """Make pamqp's frame decoding tolerant of undecodable content headers, once per process.

    aiormq reads every frame through ``pamqp.frame.unmarshal`` and offers no hook of its own, so
    the function is wrapped in place; every other frame, and every header pamqp decodes, passes
    through unchanged.
    """
    current = pamqp.frame.unmarshal
    if getattr(current, "relationd_tolerant", False):
        return

    def unmarshal(data_in: bytes) -> tuple[int, int, Any]:
        return tolerant_unmarshal(data_in, strict=current)

    unmarshal.relationd_tolerant = True  # type: ignore[attr-defined]
    unmarshal.relationd_strict = current  # type: ignore[attr-defined]
    unmarshal.__doc__ = tolerant_unmarshal.__doc__
    pamqp.frame.unmarshal = unmarshal
