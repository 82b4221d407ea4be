"""The machinery of the fault suite (tests/test_fault_*.py): a workload, a client that survives
daemon kills and broker restarts, an event collector, and the checks.

The promise under test: every command is applied exactly once and answered, and every committed
change is announced, whatever crashes. The checks compare the run's database with a reference
database to which the same command bodies were applied once, in the same order per model, through
the daemon's own applier (no broker, no faults).

Per-model order is well defined because each model's commands come from one sequential stream:
the next command of a model is sent only after the reply to the previous one, and a reply is sent
only after its transaction committed. Models run in parallel.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
import asyncpg
import pytest

from client.rpc import _open_connection as open_connection
from contracts import topology
from contracts.errors import RelationdError
from daemon.applier import apply, error_reply
from daemon.parsing import parse
from handlers.db import init_connection
from tests.domain import charm
from tests.harness import create_database, drop_database

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def seed_from_env(name: str = "RELATIOND_FAULT_SEED") -> int:
    value = os.environ.get(name)
    return int(value) if value else random.SystemRandom().randrange(1, 2**31)


def report(title: str, figures: dict[str, Any]) -> None:
    """Print one part's figures in a stable, greppable form (pytest -s shows them)."""
    body = " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\nFAULT-SUITE {title}: {body}", flush=True)


# ---- databases ----------------------------------------------------------------------------------


async def connect(url: str) -> Any:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


# ---- a reconnecting AMQP session for test clients -----------------------------------------------


class Session:
    """A connection + channel that comes back after the broker goes away (test side only).

    ``url`` may list several broker nodes, comma-separated: each new session tries the next one.
    """

    def __init__(self, url: str, setup: Callable[[aio_pika.abc.AbstractChannel], Awaitable[None]]) -> None:
        self.url = url
        self._urls = [u.strip() for u in url.split(",") if u.strip()]
        self._node = -1
        self.setup = setup
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.ready = asyncio.Event()
        self.sessions = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def start(self, timeout: float = 30) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), timeout)

    async def _run(self) -> None:
        while not self._stop.is_set():
            lost = asyncio.Event()
            try:
                self._node = (self._node + 1) % len(self._urls)
                # Closes what a failed connect created (a node down mid-restart), as the client does.
                self._connection = await open_connection(self._urls[self._node], timeout=5)
                self._connection.close_callbacks.add(lambda *_, e=lost: e.set())
                channel = await self._connection.channel(publisher_confirms=True)
                channel.close_callbacks.add(lambda *_, e=lost: e.set())
                await channel.set_qos(prefetch_count=1000)
                await self.setup(channel)
                self.channel = channel
                self.sessions += 1
                self.ready.set()
                stop = asyncio.create_task(self._stop.wait())
                gone = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                gone.cancel()
            except Exception:
                pass
            finally:
                self.ready.clear()
                self.channel = None
                conn, self._connection = self._connection, None
                if conn is not None and not conn.is_closed:
                    try:
                        await asyncio.wait_for(conn.close(), 5)
                    except Exception:
                        pass
            if not self._stop.is_set():
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 15)


class Driver:
    """Sends commands and waits for their replies, resending with the SAME command id when a
    reply does not come in time (the protocol's retry contract). Replies are counted by command id.

    The reply queue is durable and named, so it and the replies in it survive a broker restart
    (``queue_arguments`` ``{"x-queue-type": "quorum"}``: the loss of a cluster node too).
    """

    queue_arguments: dict[str, Any] = {}  # noqa: RUF012 (read only)

    def __init__(self, url: str, timeout: float = 20.0, user: str = "guest") -> None:
        self.url = url
        self.timeout = timeout
        self.user = user
        self.reply_queue = f"fault-replies-{uuid.uuid4().hex[:10]}"
        self.replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.resends = 0
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._by_token: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.session = Session(url, self._setup)

    async def _setup(self, channel: aio_pika.abc.AbstractChannel) -> None:
        queue = await channel.declare_queue(self.reply_queue, durable=True, arguments=self.queue_arguments)
        await queue.consume(self._on_reply)

    async def start(self) -> Driver:
        await self.session.start()
        return self

    async def close(self, delete_queue: bool = True) -> None:
        if delete_queue and self.session.channel is not None:
            try:
                await self.session.channel.queue_delete(self.reply_queue)
            except Exception:
                pass
        await self.session.close()

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        command_id = body.get("command_id") or message.correlation_id or ""
        self.replies[command_id].append(body)
        for future in (self._waiting.get(command_id), self._by_token.pop(message.correlation_id or "", None)):
            if future is not None and not future.done():
                future.set_result(body)
        await message.ack()

    async def publish(
        self,
        raw: bytes,
        command_id: str | None,
        *,
        reply: bool = True,
        properties: dict[str, Any] | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "content_type": topology.CONTENT_TYPE,
            "message_id": command_id,
            "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
            "user_id": self.user,
        }
        if reply:
            props |= {"reply_to": self.reply_queue, "correlation_id": command_id}
        props |= properties or {}
        while True:
            await self.session.ready.wait()
            channel = self.session.channel
            try:
                assert channel is not None
                await channel.default_exchange.publish(
                    aio_pika.Message(raw, **props), routing_key=topology.COMMAND_QUEUE, timeout=10
                )
                return
            except aiormq.exceptions.ChannelPreconditionFailed:
                raise  # the broker refuses this very message (e.g. a CC header that is not a list)
            except (
                aio_pika.exceptions.AMQPError,
                aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError, not an AMQPError
                ConnectionError,
                OSError,
                TimeoutError,
                AssertionError,
            ):
                await asyncio.sleep(0.2)  # the session is going or gone: publish on the next one
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                # aiormq cancelled the confirmation as its connection closed (a frozen node).
                await asyncio.sleep(0.2)

    async def send_raw(
        self, raw: bytes, properties: dict[str, Any], *, reply: bool = True, timeout: float = 30
    ) -> dict[str, Any] | None:
        """Publish exactly these bytes and properties once; the reply, matched by correlation id."""
        token = str(uuid.uuid4())
        props = {"correlation_id": token, **properties}
        if not reply:
            await self.publish(raw, props.get("message_id"), reply=False, properties=props)
            return None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._by_token[token] = future
        props.setdefault("reply_to", self.reply_queue)
        await self.publish(raw, props.get("message_id"), reply=False, properties=props)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._by_token.pop(token, None)

    async def call(self, body: dict[str, Any] | bytes, command_id: str | None = None) -> dict[str, Any]:
        """The reply to one command (ok or error); resends on timeout until one arrives."""
        command_id = command_id or str(uuid.uuid4())
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        attempts = 0
        while True:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            if self.replies.get(command_id):
                return self.replies[command_id][0]
            self._waiting[command_id] = future
            await self.publish(raw, command_id)
            if attempts:
                self.resends += 1
            attempts += 1
            try:
                return await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                continue
            finally:
                self._waiting.pop(command_id, None)


class EventCollector:
    """A durable queue bound to every change event; acknowledges after recording, reconnects."""

    queue_arguments: dict[str, Any] = {}  # noqa: RUF012 (read only)

    def __init__(self, url: str, binding: str = "#") -> None:
        self.queue_name = f"fault-events-{uuid.uuid4().hex[:10]}"
        self.binding = binding
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.session = Session(url, self._setup)

    async def _setup(self, channel: aio_pika.abc.AbstractChannel) -> None:
        exchange = await channel.declare_exchange(
            topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self.queue_name, durable=True, arguments=self.queue_arguments)
        await queue.bind(exchange, routing_key=self.binding)
        await queue.consume(self._on_event)

    async def start(self) -> EventCollector:
        await self.session.start()
        return self

    async def _on_event(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.received.append((int(message.message_id or 0), json.loads(message.body)))
        await message.ack()

    async def wait_for_ids(self, ids: set[int], timeout: float = 60) -> set[int]:
        """Wait until every id has arrived; return the ones still missing at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            missing = ids - {i for i, _ in self.received}
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.session.channel is not None:
            try:
                await self.session.channel.queue_delete(self.queue_name)
            except Exception:
                pass
        await self.session.close()


# ---- the workload -------------------------------------------------------------------------------

LIMITED = {
    "name": "limited",
    "requires": {"db": {"interface": "mysql", "limit": 1}, "cache": {"interface": "memcache", "limit": 3}},
    "peers": {"ring": {"interface": "ring"}},
}
CACHE = {"name": "memcached", "provides": {"cache": {"interface": "memcache"}}}
METACHARACTERS = [
    "'; DROP TABLE relation; --",
    '"$(rm -rf /)" `id` ${HOME} | & ; < > \\',
    "%s %d %n {0} {{}} \\x00 \\u0000",
    "naïve café ☃ 漢字 🙂 \u202e",
    "line\nbreak\ttab\r",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "",  # deletes the key
]


@dataclass
class ModelState:
    """What the workload believes of one model, updated from ok replies only."""

    name: str
    apps: dict[str, list[str]] = field(default_factory=dict)  # principal app -> alive units
    subordinates: set[str] = field(default_factory=set)
    relations: dict[int, tuple[str, ...]] = field(default_factory=dict)  # id -> application names
    in_scope: set[tuple[int, str]] = field(default_factory=set)
    next_app: int = 0


class ModelStream:
    """One model's sequential command stream, chosen by a seeded RNG from the replies so far."""

    def __init__(self, name: str, rng: random.Random, count: int) -> None:
        self.state = ModelState(name)
        self.rng = rng
        self.count = count
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (command id, body) in order

    def setup(self) -> list[dict[str, Any]]:
        m = {"model": self.state.name}
        return [
            {"type": "create_model", "name": self.state.name},
            {"type": "deploy", **m, "application": "mysql", "charm": charm("mysql"), "units": 2},
            {"type": "deploy", **m, "application": "wordpress", "charm": charm("wordpress"), "units": 2},
            {"type": "deploy", **m, "application": "telegraf", "charm": charm("telegraf")},
            {"type": "deploy", **m, "application": "limited", "charm": LIMITED, "units": 1},
            {"type": "deploy", **m, "application": "memcached", "charm": CACHE, "units": 1},
        ]

    def observe(self, body: dict[str, Any], reply: dict[str, Any]) -> None:
        if not reply.get("ok"):
            return
        s, r, kind = self.state, reply["result"], body["type"]
        if kind == "deploy":
            if r["subordinate"]:
                s.subordinates.add(r["application"])
            else:
                s.apps[r["application"]] = list(r["units"])
            for peer in r["peer_relations"]:
                s.relations[peer["id"]] = (r["application"],)
        elif kind == "add_units":
            s.apps[body["application"]] += r["units"]
        elif kind == "integrate":
            s.relations[r["id"]] = tuple(e["application"] for e in r["endpoints"])
        elif kind == "enter_scope":
            s.in_scope.add((body["relation"], body["unit"]))
            for unit in r.get("created_units", []):
                s.in_scope.discard((body["relation"], unit))
        elif kind == "leave_scope":
            s.in_scope.discard((body["relation"], body["unit"]))
        elif kind == "remove_relation":
            s.relations.pop(r["id"], None)
        elif kind == "remove_unit":
            app = body["unit"].rpartition("/")[0]
            if body["unit"] in s.apps.get(app, []):
                s.apps[app].remove(body["unit"])
        elif kind == "remove_application":
            s.apps.pop(body["application"], None)
            s.subordinates.discard(body["application"])

    def _unit_of(self, apps: tuple[str, ...]) -> str | None:
        units = [u for a in apps for u in self.state.apps.get(a, [])]
        return self.rng.choice(units) if units else None

    def next(self) -> dict[str, Any]:
        """The next command: a realistic mix of writes, some of which will be refused."""
        s, rng, m = self.state, self.rng, {"model": self.state.name}
        ops = [
            ("add_units", 8), ("integrate", 10), ("enter_scope", 22), ("leave_scope", 10),
            ("unit_settings", 16), ("app_settings", 8), ("status", 8), ("remove_relation", 5),
            ("remove_unit", 4), ("deploy", 4), ("remove_application", 1), ("set_leader", 4),
        ]  # fmt: skip
        op = rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
        principals = sorted(s.apps)
        relations = sorted(s.relations)
        if op == "add_units" and principals:
            return {
                "type": "add_units",
                **m,
                "application": rng.choice(principals),
                "count": rng.randint(1, 2),
            }
        if op == "integrate":
            pairs = [
                ["wordpress", "mysql"], ["telegraf:juju-info", "wordpress"], ["telegraf:juju-info", "mysql"],
                ["limited:db", "mysql"], ["limited:cache", "memcached"], ["wordpress:cache", "memcached"],
            ]  # fmt: skip
            pairs += [["limited:db", a] for a in principals if a.startswith("db-")]
            pairs += [[f"{a}:cache", "memcached"] for a in principals if a.startswith("web-")]
            body: dict[str, Any] = {"type": "integrate", **m, "endpoints": rng.choice(pairs)}
            if rng.random() < 0.3:
                app = body["endpoints"][0].partition(":")[0]
                body["settings"] = {app: {"created": str(rng.randint(0, 9))}}
            return body
        if op == "deploy":
            s.next_app += 1
            kind = rng.choice(["db", "web"])
            meta = (
                {"provides": {"db": {"interface": "mysql"}}}
                if kind == "db"
                else {"requires": {"cache": {"interface": "memcache", "limit": 1}}, "peers": {"p": "x"}}
            )
            return {"type": "deploy", **m, "application": f"{kind}-{_letters(s.next_app)}", "charm": meta,
                    "units": rng.randint(0, 2)}  # fmt: skip
        if op == "set_leader" and principals:
            unit = self._unit_of((rng.choice(principals),))
            if unit:
                return {"type": "set_leader", **m, "unit": unit}
        if op == "remove_unit" and principals:
            unit = self._unit_of(tuple(principals))
            if unit:
                return {"type": "remove_unit", **m, "unit": unit}
        if op == "remove_application" and len(principals) > 4:
            return {"type": "remove_application", **m, "application": rng.choice(principals[4:])}
        if relations:
            rel = rng.choice(relations)
            apps = s.relations[rel]
            in_scope = sorted(u for r, u in s.in_scope if r == rel)
            if op == "leave_scope" and in_scope:
                return {"type": "leave_scope", **m, "relation": rel, "unit": rng.choice(in_scope)}
            if op == "unit_settings" and in_scope:
                return {
                    "type": "set_unit_settings", **m, "relation": rel, "unit": rng.choice(in_scope),
                    "settings": {rng.choice(["host", "port", "user"]): rng.choice(METACHARACTERS)},
                }  # fmt: skip
            if op == "app_settings":
                unit = self._unit_of(apps)
                if unit:
                    return {"type": "set_application_settings", **m, "relation": rel, "unit": unit,
                            "settings": {"k": str(rng.randint(0, 3))}}  # fmt: skip
            if op == "status":
                unit = self._unit_of(apps)
                if unit:
                    status = rng.choice(["joined", "suspending", "suspended", "error", "broken", "joining"])
                    return {"type": "set_relation_status", **m, "relation": rel, "unit": unit,
                            "status": status, "message": rng.choice(["", "maintenance", "disk full"])}  # fmt: skip
            if op == "remove_relation" and len(apps) == 2:
                return {"type": "remove_relation", **m, "relation": rel}
            unit = self._unit_of(apps) or f"{apps[0]}/0"
            body = {"type": "enter_scope", **m, "relation": rel, "unit": unit}
            if rng.random() < 0.4:
                body["settings"] = {"ingress": f"10.0.0.{rng.randint(1, 9)}"}
            return body
        return {"type": "add_units", **m, "application": "wordpress"}


def _letters(n: int) -> str:
    """1 -> a, 26 -> z, 27 -> ba: application names may not end in a number group."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
        if not n:
            return out


async def run_stream(driver: Driver, stream: ModelStream, done: Callable[[], None] | None = None) -> None:
    """Send the model's commands one after the other, each after the previous one's reply."""
    bodies = stream.setup()
    for i in range(stream.count):
        body = bodies[i] if i < len(bodies) else stream.next()
        command_id = str(uuid.uuid4())
        stream.sent.append((command_id, body))
        reply = await driver.call(body, command_id)
        stream.observe(body, reply)
        if done is not None:
            done()


async def apply_reference(url: str, streams: list[ModelStream]) -> dict[str, dict[str, Any]]:
    """Apply each stream's bodies once, in order, through the applier; the replies by command id."""
    conn = await connect(url)
    replies: dict[str, dict[str, Any]] = {}
    try:
        for stream in streams:
            for command_id, body in stream.sent:
                raw = json.dumps(body).encode()
                try:
                    parsed = parse(raw, message_id=command_id, content_type=None, max_body_bytes=1 << 20)
                except RelationdError as err:
                    replies[command_id] = error_reply(command_id, None, err)
                    continue
                applied = await apply(conn, command_id, parsed.digest, parsed.command)
                replies[command_id] = applied.reply
    finally:
        await conn.close()
    return replies


# ---- canonical state ----------------------------------------------------------------------------

_DUMP_QUERIES = {
    "model": "SELECT name FROM model",
    "application": """
        SELECT m.name, a.name, a.life_id, a.unit_sequence, c.name, c.subordinate
        FROM application a JOIN model m ON m.uuid = a.model_uuid
        JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid""",
    "endpoint": """
        SELECT m.name, v.application_name, v.endpoint_name, v.role, v.interface, v.scope,
               v.capacity, v.optional
        FROM v_application_endpoint v JOIN model m ON m.uuid = v.model_uuid""",
    "unit": """
        SELECT m.name, u.name, u.number, u.life_id, p.name
        FROM unit u JOIN model m ON m.uuid = u.model_uuid
        LEFT JOIN unit p ON p.model_uuid = u.model_uuid AND p.uuid = u.principal_uuid""",
    "leader": """
        SELECT m.name, a.name, u.name FROM application_leader l
        JOIN model m ON m.uuid = l.model_uuid
        JOIN application a ON a.model_uuid = l.model_uuid AND a.uuid = l.application_uuid
        JOIN unit u ON u.model_uuid = l.model_uuid AND u.uuid = l.unit_uuid""",
    "relation": """
        SELECT m.name, r.relation_id, r.key, r.is_peer, r.scope_id, r.life_id, rs.status_type_id,
               rs.message
        FROM relation r JOIN model m ON m.uuid = r.model_uuid
        JOIN relation_status rs ON rs.model_uuid = r.model_uuid AND rs.relation_uuid = r.uuid""",
    "relation_endpoint": """
        SELECT m.name, v.relation_id, v.position, v.application_name, v.endpoint_name
        FROM v_relation_endpoint v JOIN model m ON m.uuid = v.model_uuid""",
    "relation_unit": """
        SELECT m.name, r.relation_id, u.name
        FROM relation_unit ru JOIN model m ON m.uuid = ru.model_uuid
        JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
        JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid""",
    "unit_setting": """
        SELECT m.name, r.relation_id, u.name, s.key, s.value
        FROM relation_unit_setting s JOIN model m ON m.uuid = s.model_uuid
        JOIN relation_unit ru ON ru.model_uuid = s.model_uuid AND ru.uuid = s.relation_unit_uuid
        JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
        JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid""",
    "unit_settings_hash": """
        SELECT m.name, r.relation_id, u.name, h.sha256
        FROM relation_unit_settings_hash h JOIN model m ON m.uuid = h.model_uuid
        JOIN relation_unit ru ON ru.model_uuid = h.model_uuid AND ru.uuid = h.relation_unit_uuid
        JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
        JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid""",
    "application_setting": """
        SELECT m.name, v.relation_id, v.application_name, s.key, s.value
        FROM relation_application_setting s JOIN model m ON m.uuid = s.model_uuid
        JOIN v_relation_endpoint v ON v.model_uuid = s.model_uuid
             AND v.relation_endpoint_uuid = s.relation_endpoint_uuid""",
    "application_settings_hash": """
        SELECT m.name, v.relation_id, v.application_name, h.sha256
        FROM relation_application_settings_hash h JOIN model m ON m.uuid = h.model_uuid
        JOIN v_relation_endpoint v ON v.model_uuid = h.model_uuid
             AND v.relation_endpoint_uuid = h.relation_endpoint_uuid""",
    "unit_archive": """
        SELECT m.name, v.relation_id, v.application_name, a.unit_name
        FROM relation_unit_archive a JOIN model m ON m.uuid = a.model_uuid
        JOIN v_relation_endpoint v ON v.model_uuid = a.model_uuid
             AND v.relation_endpoint_uuid = a.relation_endpoint_uuid""",
    "unit_setting_archive": """
        SELECT m.name, v.relation_id, a.unit_name, a.key, a.value
        FROM relation_unit_setting_archive a JOIN model m ON m.uuid = a.model_uuid
        JOIN v_relation_endpoint v ON v.model_uuid = a.model_uuid
             AND v.relation_endpoint_uuid = a.relation_endpoint_uuid""",
    "relation_sequence": """
        SELECT m.name, s.value FROM relation_sequence s JOIN model m ON m.uuid = s.model_uuid""",
    "event_sequence": """
        SELECT m.name, s.value FROM model_event_sequence s JOIN model m ON m.uuid = s.model_uuid""",
}
_EVENTS = """
SELECT m.name AS model, e.seq, e.namespace, e.kind, e.key, e.payload, e.command_id
FROM change_event e JOIN model m ON m.uuid = e.model_uuid
ORDER BY m.name, e.seq
"""


def scrub(value: Any) -> str:
    """JSON with every UUID replaced: uuids differ between two databases, nothing else may."""
    return UUID_PATTERN.sub("<uuid>", json.dumps(value, sort_keys=True))


async def canonical_state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The domain state without uuids or timestamps, each table as a sorted list of rows."""
    conn = await connect(url)
    try:
        out = {}
        for name, query in _DUMP_QUERIES.items():
            rows = await conn.fetch(query)
            out[name] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        await conn.close()


async def events_by_command(url: str) -> dict[str, list[str]]:
    """Each command id's change events (scrubbed), in sequence order."""
    conn = await connect(url)
    try:
        out: dict[str, list[str]] = defaultdict(list)
        for r in await conn.fetch(_EVENTS):
            out[r["command_id"]].append(
                scrub([r["model"], r["seq"], r["namespace"], r["kind"], r["key"], r["payload"]])
            )
        return out
    finally:
        await conn.close()


def diff_states(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> list[str]:
    problems = []
    for table in a:
        only_a = set(a[table]) - set(b[table])
        only_b = set(b[table]) - set(a[table])
        if only_a or only_b or len(a[table]) != len(b[table]):
            problems.append(
                f"{table}: run has {len(a[table])} rows, reference {len(b[table])}; "
                f"only in run {sorted(only_a, key=repr)[:3]}, only in reference {sorted(only_b, key=repr)[:3]}"
            )
    return problems


@dataclass
class Verdict:
    figures: dict[str, Any]
    problems: list[str]


async def verify_run(
    run_url: str, streams: list[ModelStream], driver: Driver, collector: EventCollector
) -> Verdict:
    """Every check of parts 1 and 2, with the figures the suite prints."""
    problems: list[str] = []
    sent = [(cid, body) for s in streams for cid, body in s.sent]
    ids = [cid for cid, _ in sent]
    reference_url = await create_database(prefix="relationd_reference")
    try:
        ref_replies = await apply_reference(reference_url, streams)
        run_state, ref_state = await canonical_state(run_url), await canonical_state(reference_url)
        run_events, ref_events = await events_by_command(run_url), await events_by_command(reference_url)
    finally:
        await drop_database(reference_url)
    problems += [f"state differs: {p}" for p in diff_states(run_state, ref_state)]

    # Replies: at least one per command, all copies identical, equal to the reference's.
    unanswered = [cid for cid in ids if not driver.replies.get(cid)]
    extra_replies = sum(max(0, len(driver.replies.get(cid, [])) - 1) for cid in ids)
    inconsistent = [cid for cid in ids if len({scrub(r) for r in driver.replies.get(cid, [])}) > 1]
    differs = [
        cid
        for cid in ids
        if driver.replies.get(cid) and scrub(driver.replies[cid][0]) != scrub(ref_replies[cid])
    ]
    internal = [
        cid for cid in ids if (driver.replies.get(cid) or [{}])[0].get("error", {}).get("code") == "Internal"
    ]

    conn = await connect(run_url)
    try:
        processed = Counter(
            r["command_id"]
            for r in await conn.fetch(
                "SELECT command_id FROM processed_command WHERE command_id = ANY($1)", ids
            )
        )
        db_events = await conn.fetch(
            "SELECT e.event_id, e.model_uuid, e.seq, o.event_id IS NULL AS published FROM change_event e "
            "LEFT JOIN outbox o ON o.event_id = e.event_id"
        )
    finally:
        await conn.close()
    not_processed = [cid for cid in ids if processed[cid] != 1]
    # Applied twice: a command whose change events differ from applying it once.
    applied_twice = [cid for cid in ids if run_events.get(cid, []) != ref_events.get(cid, [])]
    lost = set(unanswered) | set(not_processed)

    # Events: every committed event published, and received; per model gapless and in order.
    all_ids = {r["event_id"] for r in db_events}
    unpublished = [r["event_id"] for r in db_events if not r["published"]]
    missing = await collector.wait_for_ids(all_ids)
    first_seen: dict[int, dict[str, Any]] = {}
    duplicates = 0
    per_model: dict[str, list[int]] = defaultdict(list)
    for event_id, event in collector.received:
        if event_id in first_seen:
            duplicates += 1
            if event != first_seen[event_id]:
                problems.append(f"event {event_id} delivered twice with different bodies")
            continue
        first_seen[event_id] = event
        per_model[event["model_uuid"]].append(event["seq"])
    out_of_order = [m for m, seqs in per_model.items() if seqs != list(range(1, len(seqs) + 1))]

    if unanswered:
        problems.append(f"{len(unanswered)} commands never answered, e.g. {unanswered[:3]}")
    if not_processed:
        problems.append(f"{len(not_processed)} commands not recorded exactly once, e.g. {not_processed[:3]}")
    if inconsistent:
        problems.append(f"{len(inconsistent)} commands answered differently on redelivery")
    if differs:
        cid = differs[0]
        problems.append(
            f"{len(differs)} replies differ from the reference, e.g. {driver.replies[cid][0]} vs {ref_replies[cid]}"
        )
    if internal:
        problems.append(f"{len(internal)} commands got Internal")
    if applied_twice:
        cid = applied_twice[0]
        problems.append(
            f"{len(applied_twice)} commands' effects differ from one application, e.g. "
            f"{cid}: {run_events.get(cid)} vs {ref_events.get(cid)}"
        )
    if unpublished:
        problems.append(f"{len(unpublished)} committed events never published")
    if missing:
        problems.append(f"{len(missing)} published events never received, e.g. {sorted(missing)[:5]}")
    if out_of_order:
        problems.append(f"{len(out_of_order)} models' event sequences have gaps or are out of order")
    ok_count = sum(1 for cid in ids if (driver.replies.get(cid) or [{}])[0].get("ok"))
    figures = {
        "commands": len(ids),
        "models": len(streams),
        "ok": ok_count,
        "refused": len(ids) - ok_count - len(unanswered),
        "replies": sum(len(driver.replies.get(cid, [])) for cid in ids),
        "repeat_replies": extra_replies,
        "client_resends": driver.resends,
        "events": len(all_ids),
        "events_received": len(collector.received),
        "duplicates_dropped": duplicates,
        "lost": len(lost),
        "applied_twice": len(applied_twice),
        "state_equal": not any(p.startswith("state differs") for p in problems),
        "gapless_models": len(per_model) - len(out_of_order),
    }
    return Verdict(figures, problems)


def metric(text: str, name: str) -> float:
    """The sum of a Prometheus metric's samples in /metrics text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- one faulted run ----------------------------------------------------------------------------


async def streamed_run(
    *,
    title: str,
    amqp: str,
    database: str,
    daemon: Any,
    commands: int,
    models: int,
    faults: int,
    fault: Callable[[], Awaitable[None]],
    seed: int | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
    window: tuple[float, float] = (0.05, 0.9),
) -> Verdict:
    """Stream ``commands`` over ``models`` sequential model streams through a running ``daemon``,
    calling ``fault`` at ``faults`` random moments; then stop the daemon cleanly and verify."""
    seed = seed if seed is not None else seed_from_env()
    rng = random.Random(seed)
    collector = await EventCollector(amqp).start()
    driver = await Driver(amqp, timeout=20).start()
    began = time.monotonic()
    try:
        await daemon.wait_ready(60)
        per_model = commands // models
        streams = [
            ModelStream(f"{title}-{i}-{uuid.uuid4().hex[:6]}", random.Random(rng.random()), per_model)
            for i in range(models)
        ]
        total = per_model * models
        finished = 0

        def done() -> None:
            nonlocal finished
            finished += 1

        points = sorted(rng.sample(range(int(total * window[0]), int(total * window[1])), faults))
        applied: list[float] = []
        after_fault: list[int] = []  # commands still to finish when each fault was over

        async def faulter() -> None:
            for point in points:
                while finished < point:  # noqa: ASYNC110 (a counter, polled every 5 ms)
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0, 0.05))
                t = time.monotonic()
                await fault()
                applied.append(time.monotonic() - t)
                after_fault.append(total - finished)

        fault_task = asyncio.create_task(faulter())
        streams_done = asyncio.gather(*(run_stream(driver, s, done) for s in streams))
        await asyncio.wait_for(streams_done, 3600)
        await asyncio.wait_for(fault_task, 300)
        metrics_text = (await asyncio.to_thread(daemon.http, "/metrics"))[1]
        code = await asyncio.to_thread(daemon.terminate)
        assert code == 0, daemon.log()[-3000:]
        verdict = await verify_run(database, streams, driver, collector)
        verdict.figures = {
            "seed": seed,
            **verdict.figures,
            "faults": len(applied),
            "commands_after_last_fault": after_fault[-1] if after_fault else 0,
            "fault_s_max": round(max(applied, default=0), 2),
            "daemon_starts": daemon.starts,
            "broker_reconnects": int(metric(metrics_text, 'relationd_reconnects_total{peer="broker"}')),
            "db_retries": int(metric(metrics_text, 'relationd_transient_retries_total{where="database"}')),
            "redeliveries": int(metric(metrics_text, "relationd_redeliveries_total")),
            **(extra() if extra else {}),
            "seconds": round(time.monotonic() - began, 1),
        }
        report(title, verdict.figures)
        assert len(applied) == faults
        # Each fault hit a live stream: commands were still outstanding when it was over.
        assert all(n > 0 for n in after_fault), after_fault
        return verdict
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        await driver.close()
        await collector.close()


# ---- fixtures shared by the fault tests (import them into a test module to use them) ----------


@pytest.fixture
async def fault_vhost() -> AsyncIterator[str]:
    """A vhost of the test's own on the shared broker (no other daemon takes its commands).

    The shared broker is restarted by other people's work now and then: wait for it."""
    from tests.conftest import AMQP_URL
    from tests.harness import create_vhost, delete_vhost, vhost_url

    vhost = f"relationd-fault-{uuid.uuid4().hex[:10]}"
    for attempt in range(60):
        try:
            create_vhost(vhost)
            break
        except Exception:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    yield vhost_url(AMQP_URL, vhost)
    try:
        delete_vhost(vhost)
    except Exception:
        pass


@pytest.fixture
async def fault_database() -> AsyncIterator[str]:
    """A fresh database with the schema on the shared server, dropped afterwards."""
    url = await create_database("relationd_fault")
    yield url
    await drop_database(url)
