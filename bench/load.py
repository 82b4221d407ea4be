"""The closed-loop load generator: N workers, each with one command outstanding at a time.

Every command is published persistent with publisher confirms, a unique message_id and a
reply_to, as :class:`client.rpc.RelationClient` sends them; its latency runs from just before the
publish to the arrival of its reply. A run has a warm-up (not counted) and a measured window:
throughput is the replies that arrived in the window divided by its length, p50 and p99 are of
their latencies. The same generator drives every contender.

An event sink (a queue bound to ``#`` on the events exchange, as a watcher would bind) consumes
what the contender publishes, so events are routed to a consumer rather than dropped, and counts
them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts import topology

Call = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]
Script = Callable[[Call], Awaitable[None]]


class LoadClient:
    """One AMQP connection: a confirming publisher, an exclusive reply queue, an event sink."""

    def __init__(self, url: str, *, user_id: str | None = "guest", timeout: float = 30.0) -> None:
        self.url = url
        self.user_id = user_id
        self.timeout = timeout
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._reply_to = ""
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self.events = 0

    async def open(self, *, events: bool = True) -> LoadClient:
        self.connection = await aio_pika.connect(self.url, timeout=30)
        self._channel = await self.connection.channel(publisher_confirms=True)
        replies = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self._reply_to = replies.name
        if events:
            sink_channel = await self.connection.channel()
            exchange = await sink_channel.declare_exchange(
                topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            sink = await sink_channel.declare_queue(exclusive=True, auto_delete=True)
            await sink.bind(exchange, routing_key="#")
            await sink.consume(self._on_event, no_ack=True)
        return self

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        self.events += 1

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Publish one command and wait for its reply."""
        assert self._channel is not None
        correlation_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type=topology.CONTENT_TYPE,
            message_id=str(uuid.uuid4()),
            correlation_id=correlation_id,
            reply_to=self._reply_to,
            user_id=self.user_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._channel.default_exchange.publish(message, routing_key=topology.COMMAND_QUEUE)
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(correlation_id, None)

    async def call(self, body: dict[str, Any]) -> Any:
        """Send a command and return its result; raise RuntimeError on a refusal."""
        reply = await self.request(body)
        if not reply.get("ok"):
            raise RuntimeError(f"{body.get('type')} refused: {reply.get('error')}")
        return reply.get("result")


@dataclass
class RunResult:
    contender: str
    concurrency: int
    run: int
    seconds: float
    completed: int
    errors: int
    throughput: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    events: int = 0
    server_cpu_ms_per_cmd: float | None = None
    database_cpu_ms_per_cmd: float | None = None
    client_cpu_ms_per_cmd: float | None = None
    machine_busy: float | None = None
    error_samples: list[str] = field(default_factory=list)
    by_type_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 1
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


async def closed_loop(
    client: LoadClient,
    script: Script,
    *,
    contender: str,
    concurrency: int,
    warmup: float,
    duration: float,
    run: int = 0,
    server_cpu: Callable[[], float] | None = None,
    database_cpu: Callable[[], dict[int, float]] | None = None,
) -> RunResult:
    """Run ``concurrency`` workers, each repeating ``script`` until the window closes."""
    now = time.perf_counter  # uvloop's loop.time() ticks in whole milliseconds
    start = now() + warmup
    end = start + duration
    latencies: list[float] = []
    by_type: dict[str, list[float]] = {}
    errors = 0
    samples: list[str] = []
    marks: dict[str, float] = {}
    backends: dict[str, dict[int, float]] = {}

    async def call(body: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal errors
        t0 = now()
        try:
            reply: dict[str, Any] | None = await client.request(body)
        except (TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            reply, failure = None, f"{type(exc).__name__}: {exc}"
        else:
            failure = None if reply.get("ok") else json.dumps(reply.get("error"))[:300]
        t1 = now()
        if start <= t1 < end:
            if failure is None:
                latencies.append(t1 - t0)
                by_type.setdefault(body.get("type", "?"), []).append(t1 - t0)
            else:
                errors += 1
                if len(samples) < 5:
                    samples.append(failure)
        return reply if failure is None else None

    async def worker() -> None:
        while now() < end:
            await script(call)

    async def sample_at(when: float, name: str) -> None:
        await asyncio.sleep(max(0.0, when - now()))
        marks[f"{name}_client"] = time.process_time()
        marks[f"{name}_server"] = server_cpu() if server_cpu else 0.0
        backends[name] = database_cpu() if database_cpu else {}
        marks[f"{name}_busy"], marks[f"{name}_total"] = machine_ticks()
        marks[f"{name}_events"] = client.events

    samplers = [asyncio.create_task(sample_at(start, "start")), asyncio.create_task(sample_at(end, "end"))]
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.gather(*samplers)
    done, pending = await asyncio.wait(workers, timeout=client.timeout + 5)
    for task in pending:
        task.cancel()
    failures = [exc for task in done if (exc := task.exception()) is not None]
    if failures:
        raise RuntimeError(
            f"{contender} c={concurrency}: load client failed ({failures[0]!r}); "
            "was the broker or database restarted during the run?"
        ) from failures[0]
    latencies.sort()
    n = len(latencies)
    per_cmd = 1000 / n if n else 0.0
    result = RunResult(
        contender=contender,
        concurrency=concurrency,
        run=run,
        seconds=duration,
        completed=n,
        errors=errors,
        throughput=n / duration,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        mean_ms=(sum(latencies) / n * 1000) if n else float("nan"),
        events=int(marks["end_events"] - marks["start_events"]),
        server_cpu_ms_per_cmd=(marks["end_server"] - marks["start_server"]) * per_cmd if server_cpu else None,
        # Per backend, so that a connection opened or closed in the window does not count
        # its whole life (a backend that exited in the window is missed).
        database_cpu_ms_per_cmd=(
            sum(cpu - backends["start"].get(pid, 0.0) for pid, cpu in backends["end"].items()) * per_cmd
            if database_cpu
            else None
        ),
        client_cpu_ms_per_cmd=(marks["end_client"] - marks["start_client"]) * per_cmd,
        machine_busy=(marks["end_busy"] - marks["start_busy"])
        / max(1, marks["end_total"] - marks["start_total"]),
        error_samples=samples,
    )
    for kind, values in by_type.items():
        values.sort()
        result.by_type_ms[kind] = {
            "n": len(values),
            "p50": percentile(values, 50) * 1000,
            "p99": percentile(values, 99) * 1000,
        }
    return result


async def run_all(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run setup calls with at most ``concurrency`` in flight (not timed)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(fn: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await fn()

    return await asyncio.gather(*(one(fn) for fn in calls))


def raw_script(models: int, seed: int = 7) -> Script:
    """The raw, FastStream and ceiling contenders' command: an integrate-shaped body."""
    rng = random.Random(seed)
    counter = itertools.count()

    async def script(call: Call) -> None:
        n = next(counter)
        await call(
            {
                "type": "integrate",
                "model": rng.randrange(models),
                "endpoints": [f"app{n % 997}:db", f"db{n % 991}:db"],
            }
        )

    return script
