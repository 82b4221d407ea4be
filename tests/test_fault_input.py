"""Part 4 of the fault suite: thousands of generated bad messages (hypothesis) at one daemon.

Not JSON, wrong types, missing and extra fields, huge strings and maps, deep nesting, unknown
types, invalid UUIDs and names, SQL and shell metacharacters, invalid UTF-8, wrong content types,
no reply_to, bad message ids, duplicate ids with different bodies, and values the JSON allows but
a column cannot hold (integers past bigint or integer, NUL in text, a newline after a name). Each gets a typed error reply
(when it has reply_to) and, when it failed validation, is dead-lettered with its reason; the daemon
stays up with flat memory; valid commands interleaved all succeed, and settings full of
metacharacters are stored and returned byte for byte.

Fast: 1,500 messages. Full (-m slow): RELATIOND_FAULT_MESSAGES (10,000).
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
from hypothesis import HealthCheck, Phase, given, reject, seed, settings
from hypothesis import strategies as st

from contracts.commands import COMMAND_TYPES
from contracts.errors import ErrorCode
from contracts.topology import DEAD_LETTER_CODE_HEADER, DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER
from tests.domain import charm
from tests.fault_support import (
    METACHARACTERS,
    Driver,
    connect,
    env_int,
    fault_database,
    fault_vhost,
    report,
    seed_from_env,
)
from tests.harness import DaemonProcess

__all__ = ["fault_database", "fault_vhost"]

TOKEN = "x-fault-token"
TRANSPORT_CODES = {ErrorCode.InvalidCommand, ErrorCode.UnknownCommand, ErrorCode.PayloadTooLarge}
CODES = {c.value for c in ErrorCode}
MODEL = "input-model"
# Categories whose messages can be valid after all: a generated name that happens to be a good one;
# nesting inside a charm's metadata, whose unknown keys are ignored as real metadata requires.
MAY_BE_VALID = ("names", "deep")

# Valid bodies to break, with the fields each cannot do without.
TEMPLATES: list[tuple[dict[str, Any], list[str]]] = [
    ({"type": "create_model", "name": "fresh"}, ["name"]),
    ({"type": "deploy", "model": MODEL, "application": "app", "charm": {"peers": {"p": "x"}}, "units": 1},
     ["model", "application", "charm"]),
    ({"type": "add_units", "model": MODEL, "application": "wordpress", "count": 1}, ["model", "application"]),
    ({"type": "integrate", "model": MODEL, "endpoints": ["wordpress", "mysql"]}, ["model", "endpoints"]),
    ({"type": "enter_scope", "model": MODEL, "relation": 2, "unit": "wordpress/0", "settings": {"a": "b"}},
     ["model", "relation", "unit"]),
    ({"type": "set_unit_settings", "model": MODEL, "relation": 2, "unit": "wordpress/0", "settings": {"a": "b"}},
     ["model", "relation", "unit", "settings"]),
    ({"type": "set_relation_status", "model": MODEL, "relation": 2, "unit": "wordpress/0", "status": "joined"},
     ["model", "relation", "unit", "status"]),
    ({"type": "get_relation", "model": MODEL, "relation": "6f1c0f7e-5f0e-4a51-9d3c-0a7d2b1f9e11"},
     ["model", "relation"]),
    ({"type": "remove_unit", "model": MODEL, "unit": "mysql/1"}, ["model", "unit"]),
]  # fmt: skip

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
templates = st.sampled_from(TEMPLATES)
bad_names = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "'; DROP TABLE model; --", "$(reboot)", "`id`", "a b", "A", "-x", "x-", "a" * 64, "../../etc/passwd",
            "mysql/", "mysql/-1", "mysql/01", "wordpress/0; rm -rf /", "%00", "\x00", "café", "🙂",
            "6f1c0f7e-5f0e-4a51-9d3c-0a7d2b1f9e1", "6F1C0F7E-5F0E-4A51-9D3C-0A7D2B1F9E11", "{{7*7}}",
        ]
    ),
)  # fmt: skip


# Values the JSON and the contract's types allow but a PostgreSQL column cannot hold, or a pattern
# anchored with a `$` that accepts a trailing newline: each must be InvalidCommand, never Internal.
nul_text = st.tuples(st.text(max_size=10), st.text(max_size=10)).map(lambda p: f"{p[0]}\x00{p[1]}")
past_bigint = st.integers(min_value=2**63, max_value=2**200)
past_integer = st.integers(min_value=2**31, max_value=2**70)
line_ends = st.sampled_from(["\n", "\r\n", "\n\n", "\x00", "\n "])
UUID = "6f1c0f7e-5f0e-4a51-9d3c-0a7d2b1f9e11"
COLUMN_GAPS: list[tuple[dict[str, Any], tuple[str | int, ...], st.SearchStrategy[Any]]] = [
    ({"type": "events_after", "model": MODEL}, ("after",), past_bigint),
    ({"type": "events_after", "model": MODEL}, ("relation_id",), past_bigint),
    ({"type": "events_after", "model": MODEL}, ("namespace",), nul_text),
    ({"type": "deploy", "model": MODEL, "application": "gap", "charm": {"provides": {"db": {"interface": "mysql"}}}},
     ("charm", "provides", "db", "limit"), past_integer),
    ({"type": "deploy", "model": MODEL, "application": "gap", "charm": {"name": "gap"}}, ("charm", "name"), nul_text),
    ({"type": "set_relation_status", "model": MODEL, "relation": 2, "unit": "wordpress/0", "status": "joined"},
     ("message",), nul_text),
    ({"type": "set_unit_settings", "model": MODEL, "relation": 2, "unit": "wordpress/0", "settings": {"a": "b"}},
     ("settings", "a"), nul_text),
    ({"type": "enter_scope", "model": MODEL, "relation": 2, "unit": "wordpress/0"},
     ("settings",), nul_text.map(lambda key: {key: "v"})),
    ({"type": "grant", "model": MODEL, "user": "someone", "level": "read"}, ("user",), nul_text),
    ({"type": "list_applications", "model": MODEL}, ("model",), line_ends.map(lambda e: MODEL + e)),
    ({"type": "add_units", "model": MODEL, "application": "mysql"}, ("model",), line_ends.map(lambda e: UUID + e)),
    ({"type": "get_relation", "model": MODEL, "relation": 2}, ("relation",), line_ends.map(lambda e: UUID + e)),
    ({"type": "relation_ids", "model": MODEL, "endpoint": "mysql:db"}, ("endpoint",),
     line_ends.map(lambda e: "mysql:db" + e)),
    ({"type": "create_model", "name": "fresh"}, ("name",), line_ends.map(lambda e: "fresh" + e)),
]  # fmt: skip


def _set_path(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the value at ``path`` replaced."""
    out = json.loads(json.dumps(body))
    where = out
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    return out


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """One bad message: body bytes, AMQP properties, whether it asks for a reply, its category."""
    category = draw(
        st.sampled_from(
            ["not_json", "wrong_type", "missing", "extra", "huge", "deep", "unknown_type", "names",
             "invalid_utf8", "content_type", "message_id", "duplicate_id", "headers", "column_gap"]
        )
    )  # fmt: skip
    body, required = draw(templates)
    body = dict(body)
    props: dict[str, Any] = {"message_id": str(uuid.uuid4())}
    raw: bytes | None = None
    if category == "not_json":
        raw = draw(
            st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace"))
        )
    elif category == "wrong_type":
        key = draw(st.sampled_from(sorted(k for k in body if k != "type")))
        # A relation is named by an id or a UUID: for it, an int or a string is no wrong type.
        # An optional field (enter_scope's settings) takes None too.
        allowed = (int, str) if key == "relation" else (type(body[key]),)
        allowed += () if key in required else (type(None),)
        value = draw(json_values.filter(lambda v, a=allowed: type(v) not in a))
        body[key] = value
    elif category == "missing":
        del body[draw(st.sampled_from(required))]
    elif category == "extra":
        key = draw(st.text(min_size=1, max_size=20).filter(lambda k, b=body: k not in b))
        body[key] = draw(json_values)
    elif category == "huge":
        size = draw(st.sampled_from([10_000, 70_000, 300_000, 1_100_000, 3_000_000]))
        shape = draw(st.sampled_from(["string", "map", "list", "key"]))
        if shape == "string":
            body[draw(st.sampled_from(required))] = "x" * size
        elif shape == "map":
            body["settings"] = {f"k{i}": "v" * 8 for i in range(max(1001, size // 20))}  # > 1000 keys
        elif shape == "list":
            body["endpoints"] = ["wordpress"] * (size // 12)
        else:
            body["settings"] = {"k" * size: "v"}
    elif category == "deep":
        depth = draw(st.sampled_from([50, 201, 1_000, 10_000, 100_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        where = draw(st.sampled_from(["body", "charm", "settings"]))
        nested = opener * depth + b"1" + closer * depth
        if where == "body":
            raw = nested
        else:
            prefix = json.dumps({**body, where: None}).encode()
            raw = prefix.replace(f'"{where}": null'.encode(), f'"{where}": '.encode() + nested)
    elif category == "unknown_type":
        body["type"] = draw(st.text(max_size=40).filter(lambda t: t not in COMMAND_TYPES) | json_values)
    elif category == "names":
        key = draw(
            st.sampled_from([k for k in ("model", "name", "application", "unit", "relation") if k in body])
        )
        body[key] = draw(bad_names)
    elif category == "invalid_utf8":
        bad = draw(
            st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        )
        text = json.dumps(body).encode()
        at = text.index(b'"', text.index(b":") + 1) + 1 if b'":"' in text.replace(b" ", b"") else 1
        raw = text[:at] + bad + text[at:]
        if draw(st.booleans()):
            raw = json.dumps({**body, "type": body["type"]}).encode().replace(b'"type"', b'"\\ud800type"', 1)
    elif category == "content_type":
        props["content_type"] = draw(st.text(max_size=40).filter(lambda t: t not in ("", "application/json")))
    elif category == "headers":
        # Odd but encodable AMQP field tables: the daemon copies them into the dead letter.
        header_scalars = (
            # No infinite floats: RabbitMQ 3.10 drops the publisher's connection over one in an array.
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False)
        )
        header_values = st.recursive(
            header_scalars
            | st.text(max_size=30)
            | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1))
            | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000)
            | st.binary(max_size=20).map(bytearray),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=3)
            ),
            max_leaves=8,
        )
        props["headers"] = draw(st.dictionaries(st.text(min_size=1, max_size=30), header_values, max_size=5))
        body["type"] = "no-such-command"
    elif category == "message_id":
        # Too long for a command id, or with a NUL (a text column cannot hold it). (An absent or
        # empty one cannot be sent: aiormq fills it in.)
        props["message_id"] = draw(st.sampled_from(["x" * 201, "z" * 255]) | nul_text)
    elif category == "column_gap":
        template, path, values = draw(st.sampled_from(COLUMN_GAPS))
        body = _set_path(template, path, draw(values))
    reply = draw(st.booleans()) if category not in ("duplicate_id",) else True
    if raw is None:
        raw = json.dumps(body).encode()
    return {"category": category, "raw": raw, "props": props, "reply": reply}


class LoopThread:
    """An event loop of its own in a thread, for hypothesis' synchronous test body."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def drain_dead_letters(amqp: str) -> dict[str, aio_pika.abc.AbstractIncomingMessage]:
    out = {}
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE)
        while (message := await queue.get(fail=False, no_ack=True, timeout=10)) is not None:
            token = (message.headers or {}).get(TOKEN)
            if token:
                out[str(token)] = message
    return out


def input_run(amqp: str, database: str, log_dir: Path, count: int) -> None:
    run_seed = seed_from_env()
    # Every refused message must be found in the dead-letter queue at the end: the full run's
    # bodies (up to 3 MB each) exceed the queue's default 64 MiB bound, which would drop the oldest.
    daemon = DaemonProcess(amqp, database, log_dir, prefetch=64, dead_letter_max_bytes=2**30)
    daemon.start()
    lt = LoopThread()
    driver: Driver | None = None
    began = time.monotonic()
    try:
        lt.run(daemon.wait_ready())
        driver = lt.run(Driver(amqp, timeout=30).start())
        assert driver is not None
        m = {"model": MODEL}
        setup = [
            {"type": "create_model", "name": MODEL},
            {"type": "deploy", **m, "application": "mysql", "charm": charm("mysql"), "units": 2},
            {"type": "deploy", **m, "application": "wordpress", "charm": charm("wordpress"), "units": 1},
            {"type": "integrate", **m, "endpoints": ["wordpress", "mysql"]},
            {"type": "enter_scope", **m, "relation": 2, "unit": "wordpress/0"},
        ]
        for body in setup:
            reply = lt.run(driver.call(body))
            assert reply["ok"], reply
        sent: list[dict[str, Any]] = []  # every bad message, with what came of it
        valid_ok = valid_sent = 0
        used_ids: list[tuple[str, bytes]] = []
        expected_settings: dict[str, str] = {}
        rss: dict[str, int] = {}
        not_sendable: Counter[str] = Counter()
        pid = daemon.proc.pid if daemon.proc else 0

        def valid_round(n: int, key: str, value: str) -> None:
            """A valid write and read between bad messages: metacharacters byte for byte."""
            nonlocal valid_ok, valid_sent
            body = {
                "type": "set_unit_settings",
                **m,
                "relation": 2,
                "unit": "wordpress/0",
                "settings": {key: value},
            }
            command_id = str(uuid.uuid4())
            reply = lt.run(driver.call(body, command_id))
            used_ids.append((command_id, json.dumps(body).encode()))
            got = lt.run(
                driver.call({"type": "get_unit_settings", **m, "relation": 2, "unit": "wordpress/0"})
            )
            valid_sent += 2
            if value:
                expected_settings[key] = value
            else:
                expected_settings.pop(key, None)
            assert reply["ok"] and got["ok"], (reply, got)
            assert got["result"] == expected_settings, (got["result"], expected_settings)
            valid_ok += 2

        meta_keys = st.sampled_from([*METACHARACTERS[:-1], "key", "k.e.y", "$HOME", "'"])
        meta_values = st.sampled_from(METACHARACTERS) | st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200
        )

        @seed(run_seed)
        @settings(
            max_examples=count,
            deadline=None,
            database=None,
            # No shrinking: replaying against a daemon whose state moved on is not deterministic,
            # and a failing example is printed as generated.
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(message=messages(), key=meta_keys, value=meta_values)
        def one(message: dict[str, Any], key: str, value: str) -> None:
            n = len(sent)
            if n % 20 == 0:
                valid_round(n, key, value)
            if n == 300:
                rss["warm"] = rss_kib(pid)
            token = str(uuid.uuid4())
            props = {**message["props"], "headers": {**message["props"].get("headers", {}), TOKEN: token}}
            if message["category"] == "duplicate_id" and used_ids:
                command_id, _first = used_ids[n % len(used_ids)]
                props["message_id"] = command_id
                other = {"type": "set_unit_settings", **m, "relation": 2, "unit": "wordpress/0",
                         "settings": {"dup": str(n)}}  # fmt: skip
                message = {**message, "raw": json.dumps(other).encode()}
            record = {
                "category": message["category"],
                "token": token,
                "reply": None,
                "asked": message["reply"],
            }
            sent.append(record)
            try:
                reply = lt.run(driver.send_raw(message["raw"], props, reply=message["reply"], timeout=60))
            except (
                TypeError,
                ValueError,
                OverflowError,
                struct.error,
                aiormq.exceptions.ChannelPreconditionFailed,
            ):
                # The client library cannot encode it, or the broker refuses it (a CC header that
                # is not a list of strings): the daemon never sees such a message.
                sent.pop()
                not_sendable[message["category"]] += 1
                reject()
            record["reply"] = reply
            if reply is not None:
                code = reply.get("error", {}).get("code") if not reply["ok"] else None
                assert code != "Internal", (message["category"], reply)
                if message["category"] not in MAY_BE_VALID:
                    assert reply["ok"] is False, (message["category"], message["raw"][:300], reply)
                if not reply["ok"]:
                    assert code in CODES, reply
                    assert reply["error"]["message"], reply
                if message["category"] == "duplicate_id" and "_first" in locals():
                    assert code == "InvalidCommand" and "already used" in reply["error"]["message"], reply
            assert daemon.proc is not None and daemon.proc.poll() is None, daemon.log()[-3000:]

        one()
        rss["end"] = rss_kib(pid)
        valid_round(len(sent), "last", "'; DROP TABLE relation_unit_setting; -- ✓")

        # Dead letters: every message that failed validation, with its reason and code.
        time.sleep(1)
        letters = lt.run(drain_dead_letters(amqp))
        not_lettered = []
        for record in sent:
            reply = record["reply"]
            parse_failure = reply is not None and not reply["ok"] and reply.get("type") is None
            silent_bad = reply is None and record["category"] not in (*MAY_BE_VALID, "duplicate_id")
            if parse_failure or silent_bad:
                letter = letters.get(record["token"])
                if letter is None:
                    not_lettered.append(record)
                    continue
                assert letter.headers[DEAD_LETTER_REASON_HEADER], letter.headers
                assert letter.headers[DEAD_LETTER_CODE_HEADER] in {c.value for c in TRANSPORT_CODES}

        async def stored() -> dict[str, str]:
            conn = await connect(database)
            try:
                rows = await conn.fetch("SELECT key, value FROM relation_unit_setting")
                return {r["key"]: r["value"] for r in rows}
            finally:
                await conn.close()

        in_db = lt.run(stored())
        metrics_text = daemon.http("/metrics")[1]
        lt.run(driver.close())
        driver = None
        categories = Counter(r["category"] for r in sent)
        codes = Counter(
            (r["reply"]["error"]["code"] if not r["reply"]["ok"] else "ok")
            for r in sent
            if r["reply"] is not None
        )
        growth_mib = (rss["end"] - rss.get("warm", rss["end"])) / 1024
        report(
            "bad-input",
            {
                "seed": run_seed,
                "malformed_tried": len(sent),
                "with_reply": sum(1 for r in sent if r["asked"]),
                "without_reply": sum(1 for r in sent if not r["asked"]),
                "refused_by_client_or_broker": sum(not_sendable.values()),
                "dead_lettered": len(letters),
                "not_dead_lettered": len(not_lettered),
                "valid_interleaved": valid_sent,
                "valid_ok": valid_ok,
                "rss_warm_mib": round(rss.get("warm", 0) / 1024, 1),
                "rss_end_mib": round(rss["end"] / 1024, 1),
                "rss_growth_mib": round(growth_mib, 1),
                "daemon_restarts": daemon.starts - 1,
                "internal": codes["Internal"],
                "categories": dict(sorted(categories.items())),
                "codes": dict(sorted(codes.items())),
                "seconds": round(time.monotonic() - began, 1),
            },
        )
        assert not not_lettered, not_lettered[:5]
        assert in_db == expected_settings, "settings not stored byte for byte"
        assert valid_ok == valid_sent
        assert growth_mib < 50, rss
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert daemon.starts == 1
        assert "relationd_commands_total" in metrics_text
    finally:
        if driver is not None:
            lt.run(driver.close())
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
        lt.close()


def test_bad_input_fast(fault_vhost: str, fault_database: str, tmp_path: Path) -> None:
    input_run(fault_vhost, fault_database, tmp_path, env_int("RELATIOND_FAULT_FAST_MESSAGES", 1500))


@pytest.mark.slow
def test_bad_input_full(fault_vhost: str, fault_database: str, tmp_path: Path) -> None:
    input_run(fault_vhost, fault_database, tmp_path, env_int("RELATIOND_FAULT_MESSAGES", 10000))


class _RawStr(str):
    """A header string whose wire bytes are not UTF-8, as clients other than aio-pika can send."""

    raw = b""

    def encode(self, *_: Any, **__: Any) -> bytes:
        return self.raw


class _Double(float):
    """A float sent as an AMQP double ('d'), as pika and the Java client send floats."""


def _patch_pamqp_doubles() -> Any:
    from pamqp import encode

    original = encode.encode_table_value

    def encode_table_value(value: Any) -> bytes:
        if isinstance(value, _Double):
            return b"d" + encode.double(float(value))
        return original(value)

    encode.encode_table_value = encode_table_value
    return original


async def test_headers_the_daemon_cannot_copy_still_end_dead_lettered_and_acked(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    """A refused message is copied to the dead-letter queue with its headers. Headers that
    aio-pika decodes into values it cannot encode again (a string that is not UTF-8 comes back as
    bytes; every float goes out as a float32, and a double too large for one cannot be packed)
    must not leave the message unacked, holding a prefetch slot until the session ends."""
    from pamqp import encode

    daemon = DaemonProcess(fault_vhost, fault_database, tmp_path)
    daemon.start()
    driver = await Driver(fault_vhost).start()
    original = _patch_pamqp_doubles()
    try:
        await daemon.wait_ready()
        bad_utf8 = _RawStr("x")
        bad_utf8.raw = b"\xff\xfe not utf-8"
        cases = {
            "not-utf8": {"h": bad_utf8},
            "double-in-array": {"h": [_Double(1.5), 2]},
            "huge-double": {"h": _Double(1e300), "a": [_Double(-1e300)]},
        }
        ids = {}
        for name, headers in cases.items():
            command_id = f"{name}-{uuid.uuid4()}"
            ids[name] = command_id
            reply = await driver.send_raw(
                b"not json", {"message_id": command_id, "headers": headers}, timeout=20
            )
            assert reply is not None and reply["error"]["code"] == "InvalidCommand", reply
        valid = await driver.call({"type": "list_models"})
        assert valid["ok"]
        await asyncio.sleep(2)
        letters = {m.message_id: m for m in (await drain_dead_letters_all(fault_vhost))}
        lines = {
            name: [
                x for x in daemon.log_lines() if x.get("command_id") == cid and x.get("event") == "command"
            ]
            for name, cid in ids.items()
        }
        sessions = sum(1 for x in daemon.log_lines() if x.get("event") == "broker session open")
        report(
            "uncopyable-headers",
            {
                "cases": len(cases),
                "dead_lettered": sum(1 for cid in ids.values() if cid in letters),
                "handled_once_and_acked": sum(
                    1 for v in lines.values() if [x["stage"] for x in v] == ["acked"]
                ),
                "broker_sessions": sessions,
            },
        )
        for name, got in lines.items():
            assert [x["stage"] for x in got] == ["acked"], (name, got)
        assert all(cid in letters for cid in ids.values()), sorted(letters)
        assert sessions == 1, "a dead-letter copy cost the daemon its broker session"
    finally:
        encode.encode_table_value = original
        await driver.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()


async def drain_dead_letters_all(amqp: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    out = []
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE)
        while (message := await queue.get(fail=False, no_ack=True, timeout=10)) is not None:
            out.append(message)
    return out
