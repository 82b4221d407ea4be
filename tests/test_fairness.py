"""Fair shares between users, through the real broker and daemon: a burst from one user does not
hold back another user's command, and a burst past a user's share is refused with RateLimited,
stored nowhere, so the same command id goes through when sent again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest

from client.rpc import RelationClient
from contracts import topology
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.harness import (
    DaemonProcess,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    rabbitmqctl,
    vhost_url,
)

FLOOD = 200


@dataclass
class Sender:
    """One broker user's connection: publishes commands, and logs every reply in arrival order."""

    user: str
    arrivals: list[tuple[str, dict[str, Any]]]
    connection: Any = None
    channel: Any = None
    reply_to: str = ""
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    async def open(self, url: str) -> Sender:
        self.connection = await aio_pika.connect(url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        replies = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self.reply_to = replies.name
        return self

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        reply = json.loads(message.body)
        self.arrivals.append((self.user, reply))
        future = self.waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def post(
        self, body: dict[str, Any], command_id: str | None = None, *, reply: bool = True
    ) -> asyncio.Future[dict[str, Any]]:
        """Publish (confirmed) and return the future of the reply (never done without ``reply``)."""
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[correlation_id] = future
        await self.channel.default_exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                content_type=topology.CONTENT_TYPE,
                message_id=command_id or str(uuid.uuid4()),
                correlation_id=correlation_id,
                reply_to=self.reply_to if reply else None,
                user_id=self.user,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=topology.COMMAND_QUEUE,
        )
        return future

    async def call(self, body: dict[str, Any]) -> Any:
        reply = await asyncio.wait_for(await self.post(body), 30)
        assert reply["ok"], reply
        return reply["result"]


@dataclass
class Site:
    daemon: DaemonProcess
    a: Sender
    b: Sender
    arrivals: list[tuple[str, dict[str, Any]]]
    amqp_url: str
    database: str


@dataclass
class Place:
    """A vhost and a database this module's daemons share, and two broker users: A (guest, the
    vhost's own user) and B (created here)."""

    vhost: str
    database: str
    users: list[str]


@pytest.fixture(scope="module")
async def place() -> AsyncIterator[Place]:
    other = f"flood-b-{uuid.uuid4().hex[:6]}"
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    database = await create_database("relationd_fair")
    try:
        rabbitmqctl("add_user", other, "pw-" + other)
        rabbitmqctl("set_permissions", "-p", vhost, other, ".*", ".*", ".*")
        yield Place(vhost, database, ["guest", other])
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            rabbitmqctl("delete_user", other)
        delete_vhost(vhost)
        await drop_database(database)


def _url(place: Place, user: str) -> str:
    base = AMQP_URL if user == "guest" else AMQP_URL.replace("guest:guest", f"{user}:pw-{user}")
    return vhost_url(base, place.vhost)


async def _site(place: Place, log_dir: Path, **settings: Any) -> AsyncIterator[Site]:
    """A daemon of the given settings on the module's place, and A's and B's connections."""
    daemon = DaemonProcess(vhost_url(AMQP_URL, place.vhost), place.database, log_dir, **settings)
    arrivals: list[tuple[str, dict[str, Any]]] = []
    senders: list[Sender] = []
    try:
        daemon.start()
        await daemon.wait_ready()
        for user in place.users:
            senders.append(await Sender(user, arrivals).open(_url(place, user)))
        yield Site(daemon, senders[0], senders[1], arrivals, vhost_url(AMQP_URL, place.vhost), place.database)
    finally:
        for sender in senders:
            await sender.connection.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()


async def _model(sender: Sender) -> tuple[str, int]:
    """A model of the sender's with mysql and wordpress related and wordpress/0 in scope."""
    model = f"fair-{uuid.uuid4().hex[:8]}"
    await sender.call({"type": "create_model", "name": model})
    for app in ("mysql", "wordpress"):
        await sender.call(
            {"type": "deploy", "model": model, "application": app, "charm": charm(app), "units": 1}
        )
    rel = await sender.call({"type": "integrate", "model": model, "endpoints": ["wordpress", "mysql"]})
    await sender.call({"type": "enter_scope", "model": model, "relation": rel["id"], "unit": "wordpress/0"})
    return model, int(rel["id"])


def _write(target: tuple[str, int], value: int) -> dict[str, Any]:
    model, relation = target
    return {
        "type": "set_unit_settings",
        "model": model,
        "relation": relation,
        "unit": "wordpress/0",
        "settings": {"n": str(value)},
    }


async def _flood_then_one(site: Site, flood: int) -> tuple[list[dict[str, Any]], dict[str, Any], int, int]:
    """User A puts ``flood`` writes to one model on the queue; then user B sends one write.

    Returns A's replies, B's reply, how many of A's commands were still unanswered when B's was
    on the queue, and how many of those were answered before B's."""
    a_model = await _model(site.a)
    b_model = await _model(site.b)
    site.arrivals.clear()
    a_futures = await asyncio.gather(*(site.a.post(_write(a_model, i)) for i in range(flood)))
    b_future = await site.b.post(_write(b_model, 0))
    answered_before_b_was_sent = len(site.arrivals)
    b_reply = await asyncio.wait_for(b_future, 120)
    a_replies = await asyncio.wait_for(asyncio.gather(*a_futures), 120)
    order = [user for user, _ in site.arrivals]
    waiting = flood - answered_before_b_was_sent
    return list(a_replies), b_reply, waiting, order.index(site.b.user) - answered_before_b_was_sent


@pytest.fixture
async def fair_site(place: Place, tmp_path: Path) -> AsyncIterator[Site]:
    async for site in _site(place, tmp_path):
        yield site


async def test_a_second_users_command_is_answered_before_the_first_users_burst(fair_site: Site) -> None:
    a_replies, b_reply, waiting, a_before_b = await _flood_then_one(fair_site, FLOOD)
    assert b_reply["ok"], b_reply
    assert all(r["ok"] for r in a_replies), [r for r in a_replies if not r["ok"]][:3]
    # In queue order B's command is last: every one of A's writes still waiting (one model, so
    # one at a time) would be answered first. With fair turns B's goes ahead of most of them.
    # Counted from when B's command was on the queue: on a loaded machine the daemon answered
    # 113 of A's 200 while A was still sending them.
    assert waiting >= FLOOD // 4, f"only {waiting} of A's {FLOOD} commands waited for B's: nothing to measure"
    assert a_before_b < waiting // 2, (
        f"{a_before_b} of A's {waiting} waiting commands were answered before B's"
    )


@pytest.fixture(scope="module")
async def tight_site(place: Place, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """One daemon with a share of 5 commands for the tests below. It starts after the test above
    has stopped its own daemon (tests run in file order): two daemons must not share the queue."""
    async for site in _site(place, tmp_path_factory.mktemp("tight"), user_max_held=5):
        yield site


async def test_a_burst_past_the_users_share_is_refused_with_rate_limited_and_can_be_resent(
    tight_site: Site,
) -> None:
    site = tight_site
    a_model = await _model(site.a)
    ids = [str(uuid.uuid4()) for _ in range(60)]
    bodies = {cid: _write(a_model, i) for i, cid in enumerate(ids)}
    futures = await asyncio.gather(*(site.a.post(bodies[cid], cid) for cid in ids))
    b_result = await site.b.call({"type": "list_models"})  # B's share is its own: not refused
    replies = dict(zip(ids, await asyncio.wait_for(asyncio.gather(*futures), 60), strict=True))

    refused = {cid: r for cid, r in replies.items() if not r["ok"]}
    assert refused, "no command of the burst was refused"
    assert len(refused) < len(ids)
    for cid, reply in refused.items():
        assert reply["command_id"] == cid
        error = reply["error"]
        assert error["code"] == "RateLimited", reply
        assert error["details"]["user"] == site.a.user
        assert error["details"]["held"] == 5
        assert 0 < error["details"]["retry_after"] <= 30
    assert isinstance(b_result, list)

    # Nothing of a refused command was stored (a stored refusal would be repeated for its id):
    # sent again with the same ids, they apply.
    for cid in refused:
        again = await asyncio.wait_for(await site.a.post(bodies[cid], cid), 30)
        assert again["ok"], again
        assert again["command_id"] == cid

    # Refusals that were answered are not dead-lettered: the sender has them and resends.
    channel = await site.a.connection.channel()
    dead = await channel.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
    letters = set()
    while (letter := await dead.get(no_ack=True, fail=False)) is not None:
        letters.add(letter.message_id)
    assert not letters & set(ids)


async def test_a_refusal_that_cannot_be_answered_is_dead_lettered_not_lost(tight_site: Site) -> None:
    """Without reply_to nobody would learn of the refusal: each command of such a burst is
    either applied or in the dead-letter queue with code RateLimited, never neither."""
    site = tight_site
    a_model = await _model(site.a)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    for i, cid in enumerate(ids):
        await site.a.post(_write(a_model, i), cid, reply=False)
    channel = await site.a.connection.channel()
    dead_queue = await channel.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
    dead: dict[str, str] = {}
    applied: set[str] = set()
    conn = await asyncpg.connect(site.database)
    try:
        for _ in range(300):
            while (letter := await dead_queue.get(no_ack=True, fail=False)) is not None:
                dead[letter.message_id or ""] = str(
                    (letter.headers or {}).get(topology.DEAD_LETTER_CODE_HEADER)
                )
            rows = await conn.fetch(
                "SELECT command_id FROM processed_command WHERE command_id = ANY($1::text[])", ids
            )
            applied = {r["command_id"] for r in rows}
            if len(applied) + len(dead) >= len(ids):
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert dead, "no command of the burst was refused"
    assert set(dead.values()) == {"RateLimited"}
    assert not applied & set(dead)
    assert applied | set(dead) == set(ids)


async def test_the_client_library_resends_a_rate_limited_command_after_retry_after(tight_site: Site) -> None:
    """client.rpc waits the refusal's retry_after and sends the same command id again, within
    the call's timeout: a burst past the user's share succeeds without the caller doing anything."""
    site = tight_site
    a_model = await _model(site.a)
    refused_before = _rate_limited_lines(site)
    client = await RelationClient.connect(site.amqp_url, timeout=60)
    try:
        results = await asyncio.gather(*(client.call(_write(a_model, i)) for i in range(40)))
    finally:
        await client.close()
    assert len(results) == 40 and all("hash" in r for r in results)
    refused = _rate_limited_lines(site)[len(refused_before) :]
    assert refused, "the daemon refused none of the burst: the test did not exercise a resend"
    assert {line["code"] for line in refused} == {"RateLimited"}


def _rate_limited_lines(site: Site) -> list[dict[str, Any]]:
    return [
        line
        for line in site.daemon.log_lines()
        if line.get("event") == "command" and line.get("outcome") == "rate_limited"
    ]
