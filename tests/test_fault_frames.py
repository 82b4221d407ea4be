"""Part 5 of the fault suite: hostile AMQP content headers, published byte for byte (issue 15).

Every short-string property with malformed UTF-8 of several kinds, header-table keys (top level,
nested, inside arrays) and values of every field type, timestamps either side of the year 9999,
every priority class, odd delivery modes, and property flags with reserved, continuation,
truncated and trailing bytes; each published by a hostile broker user between an innocent user's
commands. What the broker refuses at publish never reaches relationd and is only counted; for what
it delivers, the case says what relationd must do (apply it, or refuse it once as InvalidCommand
naming the property). Nobody else may lose a command: every innocent command is applied and
answered exactly once, the daemon keeps its broker session, and no message is left unacknowledged.
"""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from contracts import topology
from tests.fault_support import fault_database, report
from tests.harness import rabbitmqctl
from tests.hostile_support import DeadLetter, Site, deploy, hostile_site
from tests.raw_amqp import (
    SHORT_STRING_PROPERTIES,
    Outcome,
    encode_properties,
    header_payload,
    long_str,
    short_str,
    table,
)

__all__ = ["fault_database"]

pytestmark = pytest.mark.slow

# Malformed UTF-8 of every kind a decoder distinguishes.
BAD_UTF8 = {
    "ff": b"\xff",
    "lone-continuation": b"\x80",
    "overlong": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "truncated": b"\xe2\x82",
    "beyond-unicode": b"\xf4\x90\x80\x80",
}
NINE_THOUSAND_NINE_HUNDRED_NINETY_NINE_MS = 253402300799999  # 9999-12-31T23:59:59.999Z in ms


@dataclass
class Case:
    """One hostile message. ``expect`` is what relationd must do if the broker delivers it:
    "applied", "refused" (InvalidCommand, ``field``), or "either" (the broker's own framing
    rules decide what arrives; only exactly-once handling is checked). ``broker_may_refuse``:
    RabbitMQ refuses it at publish (3.10 does; that is counted, not required)."""

    name: str
    properties: dict[str, bytes]
    expect: str
    field: str | None = None
    valid_body: bool = True
    broker_may_refuse: bool = False
    flags_words: bytes | None = None  # raw flag words instead of the computed ones
    trailing: bytes = b""
    drop_reply_to: bool = False


def _value(kind: bytes, payload: bytes) -> bytes:
    return kind + payload


HEADER_VALUES: dict[str, bytes] = {
    "t": _value(b"t", b"\x01"),
    "b": _value(b"b", b"\x80"),
    "B": _value(b"B", b"\xff"),
    "s": _value(b"s", b"\x80\x00"),
    "u": _value(b"u", b"\xff\xff"),
    "I": _value(b"I", b"\x80\x00\x00\x00"),
    "i": _value(b"i", b"\xff\xff\xff\xff"),
    "l": _value(b"l", b"\x80" + b"\x00" * 7),
    "L": _value(b"L", b"\x7f" + b"\xff" * 7),
    "f": _value(b"f", struct.pack(">f", 3.4e38)),
    "d": _value(b"d", struct.pack(">d", 1.7976931348623157e308)),
    "D-max-scale": _value(b"D", b"\xff\xff\xff\xff\xff"),
    "D-big-mantissa": _value(b"D", b"\x00\x7f\xff\xff\xff"),
    "S-empty": _value(b"S", long_str(b"")),
    "S-not-utf8": _value(b"S", long_str(b"\xff\xfe\x00")),
    "S-large": _value(b"S", long_str(b"x" * 60000)),
    "A": _value(b"A", long_str(b"t\x01" + b"S" + long_str(b"\xff") + b"A" + long_str(b""))),
    "T-zero": _value(b"T", struct.pack(">Q", 0)),
    "T-2106": _value(b"T", struct.pack(">Q", 0xFFFFFFFF)),
    "T-ms": _value(b"T", struct.pack(">Q", 0x100000000)),
    "T-9999": _value(b"T", struct.pack(">Q", NINE_THOUSAND_NINE_HUNDRED_NINETY_NINE_MS)),
    "F": _value(b"F", table([(b"inner", b"t\x00"), (b"", b"V")])),
    "F-empty": _value(b"F", long_str(b"")),
    "V": b"V",
    "x": _value(b"x", long_str(b"\x00\xff")),
}
OUT_OF_RANGE_TIMESTAMPS = {
    "10000": NINE_THOUSAND_NINE_HUNDRED_NINETY_NINE_MS + 1,
    "2^63": 2**63,
    "2^64-1": 2**64 - 1,
}


def cases() -> list[Case]:
    out: list[Case] = []
    for prop in SHORT_STRING_PROPERTIES:
        for kind, bad in BAD_UTF8.items():
            refused_by_broker = prop in ("user_id", "expiration")  # checked against the user / a number
            out.append(
                Case(
                    f"{prop}-{kind}",
                    {prop: short_str(b"x" + bad + b"y")},
                    "refused",
                    prop,
                    broker_may_refuse=refused_by_broker,
                    drop_reply_to=prop == "reply_to",
                )
            )
    out.append(
        Case("message_id-255-bytes", {"message_id": short_str(b"\xff" * 255)}, "refused", "message_id")
    )
    out.append(Case("correlation_id-255-bytes", {"correlation_id": short_str(b"\xc3" * 255)}, "refused",
                    "correlation_id"))  # fmt: skip
    every = {
        p: short_str(b"\xff" + p.encode())
        for p in SHORT_STRING_PROPERTIES
        if p not in ("user_id", "expiration")
    }
    out.append(Case("every-short-string", every, "refused", "content_type", drop_reply_to=True))

    for kind, bad in BAD_UTF8.items():
        out.append(
            Case(f"header-key-{kind}", {"headers": table([(b"k" + bad, b"t\x01")])}, "refused", "headers")
        )
    nested = table([(b"outer", b"F" + table([(b"\xff", b"t\x01")]))])
    out.append(Case("header-key-nested", {"headers": nested}, "refused", "headers[outer]"))
    in_array = table([(b"list", b"A" + long_str(b"F" + table([(b"\xfe", b"V")])))])
    out.append(Case("header-key-in-array", {"headers": in_array}, "refused", "headers[list][0]"))
    many = [(f"key{i:05d}".encode(), b"S" + long_str(b"v" * 20)) for i in range(2000)]
    out.append(Case("header-big-table-bad-last-key", {"headers": table([*many, (b"\xff", b"V")])}, "refused",
                    "headers"))  # fmt: skip
    out.append(Case("header-big-table", {"headers": table(many)}, "applied"))

    for name, value in HEADER_VALUES.items():
        headers = {"headers": table([(b"k", value)])}
        out.append(Case(f"header-value-{name}", headers, "applied"))
        # Refused for its body: the dead-letter copy must carry the header again.
        out.append(Case(f"header-value-{name}-refused", headers, "refused", "body", valid_body=False))
    for name, seconds in OUT_OF_RANGE_TIMESTAMPS.items():
        value = table([(b"k", b"T" + struct.pack(">Q", seconds))])
        out.append(Case(f"header-value-T-{name}", {"headers": value}, "refused", "headers[k]"))
        out.append(
            Case(f"timestamp-{name}", {"timestamp": struct.pack(">Q", seconds)}, "refused", "timestamp")
        )
    for name, seconds in {"zero": 0, "2106": 0xFFFFFFFF, "ms": 0x100000000,
                          "9999": NINE_THOUSAND_NINE_HUNDRED_NINETY_NINE_MS}.items():  # fmt: skip
        out.append(Case(f"timestamp-{name}", {"timestamp": struct.pack(">Q", seconds)}, "applied"))

    for priority in (0, 1, 9, 10, 255):
        out.append(Case(f"priority-{priority}", {"priority": bytes([priority])}, "applied"))
    out.append(Case("delivery-mode-1", {"delivery_mode": b"\x01"}, "applied"))
    for mode in (0, 3, 255):
        out.append(Case(f"delivery-mode-{mode}", {"delivery_mode": bytes([mode])}, "refused", "delivery_mode",
                        broker_may_refuse=True))  # fmt: skip
    out.append(Case("expiration-not-a-number", {"expiration": short_str(b"soon")}, "refused", "expiration",
                    broker_may_refuse=True))  # fmt: skip
    out.append(
        Case("expiration-huge", {"expiration": short_str(b"9" * 30)}, "either", broker_may_refuse=True)
    )

    # Property flags: a reserved bit, a continuation word, missing and trailing property bytes.
    out.append(Case("flags-reserved-bit", {}, "applied", flags_words=b"reserved"))
    out.append(Case("flags-continuation", {}, "either", broker_may_refuse=True, flags_words=b"continuation"))
    out.append(Case("flags-trailing-bytes", {}, "either", broker_may_refuse=True, trailing=b"\x00garbage"))
    out.append(Case("flags-truncated", {}, "either", broker_may_refuse=True, flags_words=b"truncated"))
    return out


def header_for(site: Site, case: Case, body: bytes, token: str) -> bytes:
    properties = site.hostile_properties(token, **case.properties)
    flags, encoded = encode_properties(properties)
    if case.flags_words == b"reserved":
        words = struct.pack(">H", flags | 0x0002)
    elif case.flags_words == b"continuation":
        words = struct.pack(">HH", flags | 0x0001, 0x0000)
    elif case.flags_words == b"truncated":
        words, encoded = struct.pack(">H", flags), encoded[:-3]
    else:
        words = struct.pack(">H", flags)
    return header_payload(len(body), words, encoded + case.trailing)


@dataclass
class Sent:
    case: Case
    token: str
    body: bytes
    model: str
    outcome: Outcome


async def test_hostile_frames_cost_nobody_a_command(fault_database: str, tmp_path: Path) -> None:
    async with hostile_site(fault_database, tmp_path) as site:
        assert site.mailbox is not None and site.hostile_mailbox is not None
        model = f"frames-{uuid.uuid4().hex[:8]}"
        assert (await site.call({"type": "create_model", "name": model}))["ok"]
        innocent: list[str] = []
        sent: list[Sent] = []
        for n, case in enumerate(cases()):
            token = uuid.uuid4().hex
            target = f"h-{token[:12]}"
            body = (
                json.dumps({"type": "create_model", "name": target}).encode()
                if case.valid_body
                else f"not json {token}".encode()
            )
            innocent.append(await site.send(deploy(model, f"app{n}a")))
            outcome = await site.publish_hostile(header_for(site, case, body, token), body)
            innocent.append(await site.send(deploy(model, f"app{n}b")))
            sent.append(Sent(case, token, body, target, outcome))

        unanswered = await site.mailbox.wait(set(innocent), 120)
        delivered = [s for s in sent if s.outcome.confirmed]
        await _wait_for_hostile(site, delivered)
        await asyncio.sleep(1.0)  # a redelivery would answer again in this time
        problems: list[str] = []
        if unanswered:
            problems.append(f"{len(unanswered)} innocent commands unanswered")
        twice = [cid for cid in innocent if len(site.mailbox.replies.get(cid, [])) > 1]
        failed = [r[0] for cid in innocent if (r := site.mailbox.replies.get(cid)) and not r[0]["ok"]]
        if twice:
            problems.append(f"{len(twice)} innocent commands answered more than once")
        if failed:
            problems.append(f"{len(failed)} innocent commands failed, e.g. {failed[0]}")

        dead = await site.dead_letters()
        conn = await asyncpg.connect(fault_database)
        try:
            applied = await conn.fetchval(
                "SELECT count(*) FROM processed_command WHERE command_id = ANY($1)", innocent
            )
            models = {r["name"] for r in await conn.fetch("SELECT name FROM model")}
        finally:
            await conn.close()
        if applied != len(innocent):
            problems.append(f"{len(innocent) - applied} innocent commands not applied")
        innocent_dead = [m for m in dead if (m.message_id or "") in set(innocent)]
        if innocent_dead:
            problems.append(f"{len(innocent_dead)} innocent commands dead-lettered")
        for s in delivered:
            problems += _check_case(site, s, dead, models)

        reconnects = site.broker_reconnects()
        log = site.daemon.log()
        if reconnects:
            problems.append(f"daemon reconnected to the broker {reconnects} times")
        for text in ("broker session lost", "Consumer callback failed", "command not acknowledged"):
            if text in log:
                problems.append(f"daemon log says {text!r}")
        left, drained_after = await _command_queue_drained(_vhost(site.url), within=15.0)
        if left is not None:
            problems.append(f"command queue not empty 15 s after the last reply: {left!r}")

        refused_by_broker = [s.case.name for s in sent if not s.outcome.confirmed]
        unexpected_broker = [
            s.case.name for s in sent if not s.outcome.confirmed and not s.case.broker_may_refuse
        ]
        if unexpected_broker:
            problems.append(f"broker refused cases expected to be delivered: {unexpected_broker}")
        report(
            "hostile-frames",
            {
                "cases": len(sent),
                "delivered": len(delivered),
                "broker_refused": len(refused_by_broker),
                "applied": sum(1 for s in delivered if s.model in models),
                "refused_dead_lettered": sum(1 for s in delivered if s.case.expect == "refused"),
                "innocent": len(innocent),
                "innocent_answered_once": sum(
                    1 for cid in innocent if len(site.mailbox.replies.get(cid, [])) == 1
                ),
                "broker_reconnects": reconnects,
                "queue_drained_after_s": drained_after,
            },
        )
        print("broker refused at publish:", ", ".join(refused_by_broker))
        assert not problems, "\n".join(problems)


async def _command_queue_drained(vhost: str, within: float) -> tuple[str | None, float | None]:
    """Wait until the command queue holds no message, ready or unacknowledged: (None, seconds it
    took), or the queue's last listing when it still held some after ``within`` seconds. A command
    is acked after its reply's confirm, and the broker lists a quorum queue's counts as its leader
    last reported them: twice, listed once right after the checks above, the queue still showed
    13 and 19 messages unacknowledged (then 0 in ten runs)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        queue = rabbitmqctl(
            "list_queues", "-q", "-p", vhost, "name", "messages_ready", "messages_unacknowledged"
        )
        left = [line for line in queue.splitlines() if line.startswith(topology.COMMAND_QUEUE + "\t")]
        if not left or left[0].split("\t")[1:] == ["0", "0"]:
            return None, round(loop.time() - started, 1)
        if loop.time() - started > within:
            return left[0], None
        await asyncio.sleep(0.5)


def _vhost(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path[1:])


async def _wait_for_hostile(site: Site, delivered: list[Sent], timeout: float = 60) -> None:
    """Until every delivered hostile message that expects a reply has one (or the timeout)."""
    assert site.hostile_mailbox is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    expecting = [s for s in delivered if s.case.expect != "either" and not s.case.drop_reply_to]
    box = site.hostile_mailbox
    while loop.time() < deadline and any(not box.matching(s.token) for s in expecting):
        box.arrived.clear()
        try:
            await asyncio.wait_for(box.arrived.wait(), 0.5)
        except TimeoutError:
            pass


def _check_case(site: Site, s: Sent, dead: list[DeadLetter], models: set[str]) -> list[str]:
    assert site.hostile_mailbox is not None
    case = s.case
    replies = site.hostile_mailbox.matching(s.token)
    letters = [m for m in dead if m.body == s.body]
    name = case.name
    if case.expect == "either":  # whatever arrived: handled once
        if len(replies) > 1 or len(letters) > 1:
            return [f"{name}: answered {len(replies)} times, dead-lettered {len(letters)} times"]
        return []
    if case.expect == "applied":
        problems = []
        if s.model not in models:
            problems.append(f"{name}: not applied ({replies})")
        if len(replies) != 1 or not replies[0]["ok"]:
            problems.append(f"{name}: expected one ok reply, got {replies}")
        if letters:
            problems.append(f"{name}: dead-lettered")
        return problems
    problems = []
    if s.model in models:
        problems.append(f"{name}: applied although refused")
    if len(letters) != 1:
        problems.append(f"{name}: dead-lettered {len(letters)} times, not once")
    else:
        headers = dict(letters[0].headers or {})
        if headers.get(topology.DEAD_LETTER_CODE_HEADER) != "InvalidCommand":
            problems.append(f"{name}: dead-letter code {headers.get(topology.DEAD_LETTER_CODE_HEADER)!r}")
        if case.field and case.field not in str(headers.get(topology.DEAD_LETTER_REASON_HEADER, "")):
            problems.append(f"{name}: dead-letter reason does not name {case.field}: {headers}")
        if not case.valid_body and "k" not in headers:
            problems.append(f"{name}: dead-letter copy lost the header: {headers}")
    if case.drop_reply_to:
        if replies:
            problems.append(f"{name}: replied although reply_to was undecodable: {replies}")
    elif len(replies) != 1:
        problems.append(f"{name}: expected one refusal, got {replies}")
    else:
        error = replies[0].get("error") or {}
        if error.get("code") != "InvalidCommand" or (error.get("details") or {}).get("field") != case.field:
            problems.append(f"{name}: refusal {error} does not name {case.field}")
    return problems
