"""The raw pipeline: a minimal aio-pika + asyncpg RPC server, the simplest thing that could work.

Consume a persistent command (manual ack, the same prefetch as relationd), run one
integrate-sized transaction, publish a persistent reply and one persistent event with publisher
confirms, ack. No validation, dedupe, outbox or events framework.

Run by the bench as ``python -m bench.raw_server`` with BENCH_AMQP_URL and BENCH_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aio_pika
import asyncpg

from bench import rawsql
from bench.env import READY_LINE, env_flag, use_uvloop
from contracts import topology


async def serve() -> None:
    prefetch = int(os.environ.get("BENCH_PREFETCH", "64"))
    pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"], min_size=1, max_size=int(os.environ.get("BENCH_POOL_SIZE", "10"))
    )
    connection = await aio_pika.connect(os.environ["BENCH_AMQP_URL"])
    publish = await connection.channel(publisher_confirms=True)
    consume = await connection.channel(publisher_confirms=False)
    await consume.set_qos(prefetch_count=prefetch)
    events = await publish.declare_exchange(
        topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    spec = topology.command_queue()
    queue = await consume.declare_queue(spec.name, durable=True, arguments=spec.arguments)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        # aiormq runs each delivery in a task of its own: commands are handled concurrently.
        try:
            cmd = json.loads(message.body)
            async with pool.acquire() as conn:
                reply, event = await rawsql.integrate(conn, cmd["model"], cmd["endpoints"])
            await asyncio.gather(
                publish.default_exchange.publish(
                    aio_pika.Message(
                        json.dumps(reply).encode(),
                        content_type=topology.CONTENT_TYPE,
                        correlation_id=message.correlation_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=message.reply_to or "",
                ),
                events.publish(
                    aio_pika.Message(
                        event,
                        content_type=topology.CONTENT_TYPE,
                        message_id=f"{cmd['model']}.{reply['result']['id']}",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=rawsql.routing_key(cmd["model"], reply["result"]["id"]),
                ),
            )
            await message.ack()
        except Exception as exc:
            print(f"raw: command failed: {exc!r}", file=sys.stderr)
            await message.reject(requeue=False)

    await queue.consume(on_message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(READY_LINE, flush=True)
    await stop.wait()
    await connection.close()
    await pool.close()


def main() -> None:
    use_uvloop(env_flag("BENCH_UVLOOP"))
    asyncio.run(serve())


if __name__ == "__main__":
    main()
