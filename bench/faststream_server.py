"""The same work as the raw pipeline, written as a FastStream application: the peer a Python user
would otherwise build.

A subscriber on the command queue (a pydantic model for the body, as FastStream users write it),
the same integrate-sized transaction, the event published through a persistent publisher with
confirms, and the reply as the handler's (persistent) return value; FastStream acks after the
handler. Its per-message logging is set to warning, as relationd's is in the bench.

Run by the bench as ``python -m bench.faststream_server`` with BENCH_AMQP_URL and
BENCH_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import asyncpg
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
    RabbitResponse,
)
from pydantic import BaseModel

from bench import rawsql
from bench.env import READY_LINE, env_flag, use_uvloop
from contracts import topology


class IntegrateCommand(BaseModel):
    type: str
    model: int
    endpoints: list[str]


def build(pool_holder: dict[str, Any]) -> RabbitBroker:
    logger = logging.getLogger("bench.faststream")
    logger.setLevel(logging.WARNING)
    broker = RabbitBroker(
        os.environ["BENCH_AMQP_URL"],
        default_channel=Channel(
            prefetch_count=int(os.environ.get("BENCH_PREFETCH", "64")), publisher_confirms=True
        ),
        logger=logger,
    )
    events = broker.publisher(
        exchange=RabbitExchange(topology.EVENTS_EXCHANGE, type=ExchangeType.TOPIC, durable=True),
        persist=True,
        content_type=topology.CONTENT_TYPE,
    )
    spec = topology.command_queue()
    queue = RabbitQueue(spec.name, queue_type=QueueType.QUORUM, durable=True, arguments=spec.arguments)

    @broker.subscriber(queue)
    async def integrate(cmd: IntegrateCommand) -> RabbitResponse:
        async with pool_holder["pool"].acquire() as conn:
            reply, event = await rawsql.integrate(conn, cmd.model, cmd.endpoints)
        await events.publish(
            event,
            routing_key=rawsql.routing_key(cmd.model, reply["result"]["id"]),
        )
        return RabbitResponse(reply, persist=True, content_type=topology.CONTENT_TYPE)

    return broker


async def serve() -> None:
    logging.basicConfig(level=logging.WARNING)
    holder: dict[str, Any] = {}
    holder["pool"] = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"], min_size=1, max_size=int(os.environ.get("BENCH_POOL_SIZE", "10"))
    )
    broker = build(holder)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(READY_LINE, flush=True)
    await stop.wait()
    await broker.stop()
    await holder["pool"].close()


def main() -> None:
    use_uvloop(env_flag("BENCH_UVLOOP"))
    asyncio.run(serve())


if __name__ == "__main__":
    main()
