"""OpenTelemetry tracing (the [otel] extra): one trace per command, across the broker and the database.

The daemon runs in this process (its Service, as `relationd run` starts it) so the SDK's in-memory
exporter sees both sides; broker and database are the real ones. A command sent by the client is
one trace: the client's send span, the daemon's consumer span (its parent arrived in the
``traceparent`` header), the transaction with one span per SQL statement, and the reply. The
relay that publishes the command's change events continues the trace. Tracing off:
tests/test_unit_tracing.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import pytest

from client.rpc import RelationClient
from contracts import topology
from daemon import tracing as daemon_tracing
from daemon.service import Service
from daemon.settings import Settings
from tests.conftest import AMQP_URL
from tests.domain import charm
from tests.harness import create_database, create_vhost, delete_vhost, drop_database, vhost_url

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the [otel] extra is not installed")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402


@contextlib.asynccontextmanager
async def in_process_daemon(amqp_url: str, database_url: str) -> AsyncIterator[Service]:
    settings = Settings(amqp_url=amqp_url, database_url=database_url, http_port=0, outbox_poll_seconds=0.2)
    service = Service(settings)
    running = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.broker.connected.wait(), 30)
        yield service
    finally:
        service.request_stop()
        await asyncio.wait_for(running, 60)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # Service.run installed them on pytest's loop
            loop.remove_signal_handler(sig)


@dataclass
class Traced:
    amqp_url: str
    database_url: str
    spans: Any  # the InMemorySpanExporter


@pytest.fixture(scope="module")
async def traced() -> AsyncIterator[Traced]:
    """Tracing on into an in-memory exporter, and one in-process daemon on a vhost and database
    of its own, shared by this module's tests."""
    spans = InMemorySpanExporter()
    provider = sdk.TracerProvider(sampler=daemon_tracing.statements_in_commands(sdk.sampling.ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    database = await create_database("relationd_trace")
    daemon_tracing.enable(provider)
    try:
        async with in_process_daemon(vhost_url(AMQP_URL, vhost), database):
            yield Traced(vhost_url(AMQP_URL, vhost), database, spans)
    finally:
        daemon_tracing.disable()
        provider.shutdown()
        await drop_database(database)
        delete_vhost(vhost)


async def test_one_trace_per_command_from_send_to_reply(traced: Traced) -> None:
    name, command_id = f"traced-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    async with await RelationClient.connect(traced.amqp_url, timeout=30) as client:
        await client.create_model(name)
        await client.deploy(name, "mysql", charm("mysql"), units=1, command_id=command_id)

    spans = traced.spans.get_finished_spans()
    (send,) = [
        s for s in spans if s.name == "relationd send" and s.attributes["relationd.command_id"] == command_id
    ]
    trace = [s for s in spans if s.context.trace_id == send.context.trace_id]
    by_name: dict[str, list[Any]] = {}
    for s in trace:
        by_name.setdefault(s.name, []).append(s)

    assert send.parent is None and send.kind is SpanKind.PRODUCER
    assert send.attributes["relationd.model"] == name and send.attributes["relationd.ok"] is True
    (process,) = by_name["relationd process"]
    assert process.kind is SpanKind.CONSUMER
    assert process.parent.span_id == send.context.span_id and process.parent.is_remote  # via the header
    assert process.attributes["relationd.command_id"] == command_id
    assert process.attributes["relationd.model"] == name
    assert process.attributes["relationd.type"] == "deploy"
    assert process.attributes["relationd.outcome"] == "applied"
    (transaction,) = by_name["relationd transaction"]
    assert transaction.parent.span_id == process.context.span_id
    statements = [s for s in trace if s.attributes.get("db.system") == "postgresql"]
    assert statements, f"no SQL statement spans in the trace: {sorted(by_name)}"
    assert {s.parent.span_id for s in statements} == {transaction.context.span_id}
    (reply,) = by_name["relationd reply"]
    assert reply.parent.span_id == process.context.span_id and reply.kind is SpanKind.PRODUCER
    # The client's span ends at the reply's receipt: after the reply's publish began (not
    # necessarily after it ended: the broker may deliver the reply before it confirms the publish).
    assert reply.start_time <= send.end_time
    # The trace holds these, the SQL statements, and the relay's "relationd publish event" spans
    # once it has published the command's events.
    expected = {"relationd send", "relationd process", "relationd transaction", "relationd reply"}
    expected.add("relationd publish event")
    assert set(by_name) - expected == {s.name for s in statements}
    # The relay's polls and the pool's checks ran meanwhile; outside a command they are not traced.
    assert all(s.parent is not None for s in spans if s.attributes.get("db.system")), [
        s.attributes.get("db.statement") for s in spans if s.parent is None and s.attributes.get("db.system")
    ]
    print(f"\ntrace of {command_id}: {len(trace)} spans, {len(statements)} SQL statements")


async def test_the_reply_carries_the_trace_context_back(traced: Traced) -> None:
    """The daemon's reply has a traceparent of the command's trace (read with a bare aio-pika
    consumer, so the check does not depend on the client's own handling)."""
    connection = await aio_pika.connect(traced.amqp_url)
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue(exclusive=True)
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        await channel.default_exchange.publish(
            aio_pika.Message(
                b'{"type": "list_models"}',
                content_type=topology.CONTENT_TYPE,
                message_id=str(uuid.uuid4()),
                reply_to=replies.name,
                correlation_id="c1",
                user_id="guest",
                headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
            ),
            routing_key=topology.COMMAND_QUEUE,
        )
        message = await replies.get(timeout=30, fail=False)
        for _ in range(100):
            if message is not None:
                break
            await asyncio.sleep(0.1)
            message = await replies.get(timeout=30, fail=False)
        assert message is not None, "no reply"
        traceparent = message.headers["traceparent"]
        assert isinstance(traceparent, str) and traceparent.split("-")[1] == trace_id
    finally:
        await connection.close()
    processed = [s for s in traced.spans.get_finished_spans() if s.name == "relationd process"]
    assert [format(s.context.trace_id, "032x") for s in processed].count(trace_id) == 1


async def test_a_commands_events_are_published_in_its_trace(traced: Traced) -> None:
    """The relay of the instance that applied the command publishes each of its change events in
    a span under the command's, and the event message carries that trace context."""
    name, command_id = f"evtrace-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    connection = await aio_pika.connect(traced.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="#")
        async with await RelationClient.connect(traced.amqp_url, timeout=30) as client:
            await client.create_model(name)
            await client.deploy(name, "mysql", charm("mysql"), units=2, command_id=command_id)
        conn = await asyncpg.connect(traced.database_url)
        try:
            expected = await conn.fetchval(
                "SELECT count(*) FROM change_event WHERE command_id = $1", command_id
            )
        finally:
            await conn.close()
        headers: list[Any] = []

        async def collect() -> None:
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    if json.loads(message.body).get("command_id") == command_id:
                        headers.append(message.headers.get("traceparent"))
                    if len(headers) == expected:
                        return

        await asyncio.wait_for(collect(), 30)
    finally:
        await connection.close()

    spans = traced.spans.get_finished_spans()
    (send,) = [
        s for s in spans if s.name == "relationd send" and s.attributes["relationd.command_id"] == command_id
    ]
    (process,) = [
        s for s in spans if s.name == "relationd process" and s.parent.span_id == send.context.span_id
    ]
    published = [
        s
        for s in spans
        if s.name == "relationd publish event" and s.parent.span_id == process.context.span_id
    ]
    assert expected >= 4 and len(published) == expected  # deployed, endpoints, peer relation, units, leader
    assert all(s.context.trace_id == send.context.trace_id and s.kind is SpanKind.PRODUCER for s in published)
    trace_id = format(send.context.trace_id, "032x")
    assert [h.split("-")[1] if isinstance(h, str) else h for h in headers] == [trace_id] * expected
