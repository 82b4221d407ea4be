"""Dead letters keep whole command bodies, settings values included (issue 15, part 7): the queue
the daemon declares is bounded, drops the oldest letter first, and forgets each after its TTL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aio_pika

from client.rpc import RelationClient
from contracts import topology
from tests.fault_support import fault_vhost
from tests.harness import DaemonProcess
from tests.service_support import own_database, stop_daemon

__all__ = ["fault_vhost", "own_database"]


async def _letters(url: str) -> list[bytes]:
    """The bodies in the dead-letter queue, oldest first (each requeued after reading)."""
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
        assert queue.declaration_result.message_count is not None
        bodies = []
        for _ in range(queue.declaration_result.message_count):
            message = await queue.get(fail=False, no_ack=False)
            if message is None:
                break
            bodies.append(message.body)
        return bodies  # unacked: back in the queue when the channel closes


async def test_the_dead_letter_queue_keeps_the_newest_letters_and_forgets_them(
    fault_vhost: str, own_database: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(
        fault_vhost, own_database, tmp_path, dead_letter_max_messages=2, dead_letter_ttl_seconds=3
    )
    try:
        daemon.start()
        await daemon.wait_ready(30)
        async with await RelationClient.connect(fault_vhost, timeout=15) as client:
            sent = [f'{{"secret": "{uuid.uuid4()}"'.encode() for _ in range(3)]  # not JSON: refused
            for body in sent:
                reply = await client.send(body)
                assert reply is not None and reply["error"]["code"] == "InvalidCommand"
        # The letters as they settle (the daemon may reply before its dead-letter copy lands).
        letters: list[bytes] = []
        for _ in range(40):
            letters = await _letters(fault_vhost)
            if letters == sent[1:]:
                break
            await asyncio.sleep(0.1)
        assert letters == sent[1:]  # bounded: the oldest went first
        for _ in range(60):
            letters = await _letters(fault_vhost)
            if not letters:
                break
            await asyncio.sleep(0.5)
        assert letters == []  # forgotten after the TTL (3 s)
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()[-3000:]
