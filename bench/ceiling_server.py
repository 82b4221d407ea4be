"""The broker-only ceiling: consume a persistent command, publish a persistent reply with a
confirm, ack. No database: the fastest round trip this machine's broker and client allow.

Run by the bench as ``python -m bench.ceiling_server`` with BENCH_AMQP_URL.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aio_pika

from bench.env import READY_LINE, env_flag, use_uvloop
from contracts import topology

_REPLY = b'{"ok": true, "result": null}'


async def serve() -> None:
    connection = await aio_pika.connect(os.environ["BENCH_AMQP_URL"])
    publish = await connection.channel(publisher_confirms=True)
    consume = await connection.channel(publisher_confirms=False)
    await consume.set_qos(prefetch_count=int(os.environ.get("BENCH_PREFETCH", "64")))
    spec = topology.command_queue()
    queue = await consume.declare_queue(spec.name, durable=True, arguments=spec.arguments)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await publish.default_exchange.publish(
            aio_pika.Message(
                _REPLY,
                content_type=topology.CONTENT_TYPE,
                correlation_id=message.correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=message.reply_to or "",
        )
        await message.ack()

    await queue.consume(on_message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(READY_LINE, flush=True)
    await stop.wait()
    await connection.close()


def main() -> None:
    use_uvloop(env_flag("BENCH_UVLOOP"))
    asyncio.run(serve())


if __name__ == "__main__":
    main()
