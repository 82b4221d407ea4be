"""daemon.amqp_decoding on frames as RabbitMQ delivers them: mended and marked, or untouched."""

from __future__ import annotations

import struct
from typing import Any

import pamqp.frame
import pytest
from pamqp import commands, exceptions

from daemon import amqp_decoding
from tests.raw_amqp import header_payload, long_str, properties_payload, short_str, table

STRICT = getattr(pamqp.frame.unmarshal, "relationd_strict", pamqp.frame.unmarshal)  # pamqp's own


def _frame(frame_type: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, 7, len(payload)) + payload + b"\xce"


def _decode(payload: bytes) -> Any:
    consumed, channel, value = amqp_decoding.tolerant_unmarshal(_frame(2, payload), strict=STRICT)
    assert (consumed, channel) == (len(payload) + 8, 7)
    return value


def test_a_decodable_header_is_pamqps_own() -> None:
    payload = properties_payload(
        5,
        {
            "message_id": short_str(b"id-1"),
            "headers": table([(b"k", b"S" + long_str(b"v\xff"))]),
            "delivery_mode": b"\x02",
        },
    )
    value = _decode(payload)
    assert value.body_size == 5
    assert value.properties.message_id == "id-1"
    assert value.properties.headers == {"k": b"v\xff"}  # pamqp's own fallback for long strings
    assert amqp_decoding.fault_of(value.properties.headers) is None


def test_a_message_id_that_is_not_utf8_is_mended_and_marked() -> None:
    payload = properties_payload(
        9,
        {
            "message_id": short_str(b"\xff" * 255),
            "reply_to": short_str(b"q\xfe"),
            "headers": table([(b"x-delivery-count", b"l" + bytes(8))]),
            "app_id": short_str(b"fine"),
        },
    )
    with pytest.raises(exceptions.UnmarshalingException):
        STRICT(_frame(2, payload))
    value = _decode(payload)
    props = value.properties
    assert value.body_size == 9
    assert len(props.message_id.encode()) <= 255 and "\ufffd" in props.message_id
    assert props.reply_to is None  # no answer to a queue the client did not name
    assert props.app_id == "fine"  # properties after the bad ones are still read
    fault = amqp_decoding.fault_of(props.headers)
    assert fault is not None
    assert [f.field for f in fault.faults] == ["reply_to", "message_id"]
    assert fault.field == "reply_to"
    assert "not valid UTF-8" in fault.message
    assert props.headers == {"x-delivery-count": 0}  # the marker is taken off


def test_keys_and_timestamps_are_named_where_they_sit() -> None:
    headers = table(
        [
            (b"outer", b"F" + table([(b"\xff", b"t\x01")])),
            (b"list", b"A" + long_str(b"T" + struct.pack(">Q", 2**64 - 1))),
        ]
    )
    payload = properties_payload(0, {"headers": headers, "timestamp": struct.pack(">Q", 2**63)})
    props = _decode(payload).properties
    fault = amqp_decoding.fault_of(props.headers)
    assert fault is not None
    assert [f.field for f in fault.faults] == ["headers[outer]", "headers[list][0]", "timestamp"]
    assert props.timestamp is None
    assert props.headers["list"] == ["out-of-range timestamp 18446744073709551615"]


def test_a_forged_marker_is_an_ordinary_header() -> None:
    payload = properties_payload(
        0, {"headers": table([(amqp_decoding.MARKER.encode(), b"S" + long_str(b"x"))])}
    )
    headers = _decode(payload).properties.headers
    assert amqp_decoding.fault_of(headers) is None
    assert headers == {amqp_decoding.MARKER: "x"}


def test_values_aio_pika_cannot_take_are_marked_even_when_pamqp_decodes_them() -> None:
    payload = properties_payload(0, {"delivery_mode": b"\x07", "expiration": short_str(b"soon")})
    props = _decode(payload).properties
    fault = amqp_decoding.fault_of(props.headers)
    assert fault is not None and [f.field for f in fault.faults] == ["delivery_mode", "expiration"]
    assert props.delivery_mode is None and props.expiration is None


def test_other_frames_and_framing_errors_are_untouched() -> None:
    method = pamqp.frame.marshal(commands.Basic.Ack(delivery_tag=3), 1)
    assert amqp_decoding.tolerant_unmarshal(method, strict=STRICT)[2].delivery_tag == 3
    bad_method = _frame(1, struct.pack(">HH", 60, 80))  # Basic.Ack cut short
    with pytest.raises(exceptions.UnmarshalingException):
        amqp_decoding.tolerant_unmarshal(bad_method, strict=STRICT)
    truncated = header_payload(0, struct.pack(">H", 0x0080), b"\x10\xffabc")  # cut short, not UTF-8
    with pytest.raises(exceptions.UnmarshalingException):
        amqp_decoding.tolerant_unmarshal(_frame(2, truncated), strict=STRICT)
    unknown_type = properties_payload(0, {"headers": table([(b"k", b"Z\x00")])})
    with pytest.raises(exceptions.UnmarshalingException):
        amqp_decoding.tolerant_unmarshal(_frame(2, unknown_type), strict=STRICT)
    no_frame_end = _frame(2, properties_payload(0, {"message_id": short_str(b"\xff")}))[:-1] + b"\x00"
    with pytest.raises(exceptions.UnmarshalingException):
        amqp_decoding.tolerant_unmarshal(no_frame_end, strict=STRICT)


def test_install_wraps_once() -> None:
    amqp_decoding.install()
    wrapped = pamqp.frame.unmarshal
    amqp_decoding.install()
    assert pamqp.frame.unmarshal is wrapped
    payload = properties_payload(0, {"correlation_id": short_str(b"\xc3")})
    assert amqp_decoding.fault_of(wrapped(_frame(2, payload))[2].properties.headers) is not None


def test_the_message_names_a_few_faults_of_many() -> None:
    keys = [(b"\xff" + str(i).encode(), b"V") for i in range(3000)]
    props = _decode(properties_payload(0, {"headers": table(keys)})).properties
    fault = amqp_decoding.fault_of(props.headers)
    assert fault is not None and len(fault.faults) == 3000
    assert fault.message.endswith("; and 2995 more")
    assert len(fault.message) < 600
