"""The daemon's broker session over several nodes: the first that answers, the next one when its node
stops answering, and an error that says what to do about an old classic dead-letter queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika

from contracts import topology
from tests.fault_support import fault_vhost
from tests.harness import DaemonProcess
from tests.node_proxy import NodeProxy
from tests.private_services import free_port
from tests.service_support import own_database, stop_daemon, wait_readyz

__all__ = ["fault_vhost", "own_database"]


def sessions(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [line for line in daemon.log_lines() if line.get("event") == "broker session open"]


async def test_a_daemon_skips_a_node_that_is_down_and_leaves_one_that_freezes(
    fault_vhost: str, own_database: str, tmp_path: Path
) -> None:
    port = urlsplit(fault_vhost).port or 5672
    dead = fault_vhost.replace(f":{port}/", f":{free_port()}/")
    frozen = await NodeProxy(fault_vhost).start()
    nodes = f"{dead},{frozen.url},{fault_vhost}"
    daemon = DaemonProcess(nodes, own_database, tmp_path, amqp_heartbeat_seconds=1)
    try:
        daemon.start()
        await daemon.wait_ready(30)
        assert sessions(daemon)[0]["node"] == f"127.0.0.1:{frozen.listen_port}"
        frozen.hold()  # the node's sockets stay open, nothing comes back: a SIGSTOPped broker
        began = asyncio.get_running_loop().time()
        while len(sessions(daemon)) < 2:
            assert asyncio.get_running_loop().time() - began < 15, daemon.log()[-3000:]
            await asyncio.sleep(0.1)
        assert sessions(daemon)[1]["node"] == f"127.0.0.1:{port}"  # the one after the frozen node
        assert any(
            line.get("event") == "broker node stopped answering; moving on" for line in daemon.log_lines()
        )
        await wait_readyz(daemon, 200, timeout=10)
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
        await frozen.lose()
    assert code == 0, daemon.log()[-3000:]


async def test_a_classic_dead_letter_queue_from_an_older_relationd_is_named_with_the_fix(
    fault_vhost: str, own_database: str, tmp_path: Path
) -> None:
    """Before schema 4 the dead-letter queue was classic; its type cannot change in place, so the
    daemon stays unready and its log says how to replace the queue."""
    async with await aio_pika.connect(fault_vhost) as conn:
        channel = await conn.channel()
        await channel.declare_queue(topology.DEAD_LETTER_QUEUE, durable=True)
    daemon = DaemonProcess(fault_vhost, own_database, tmp_path)
    try:
        daemon.start()
        readyz = await wait_readyz(daemon, 503, timeout=15)
        assert readyz["broker_ok"] is False
        refused: list[dict[str, Any]] = []
        for _ in range(50):
            refused = [line for line in daemon.log_lines() if "inequivalent arg" in line.get("error", "")]
            if refused:
                break
            await asyncio.sleep(0.1)
        assert refused, daemon.log()
        assert refused[0]["level"] == "error"
        assert "delete_queue relationd.dead-letter" in refused[0]["event"], refused[0]
        assert "Upgrading the dead-letter queue" in refused[0]["event"]
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()[-3000:]


async def test_a_command_queue_from_an_older_relationd_is_used_as_it_is(
    fault_vhost: str, own_database: str, tmp_path: Path
) -> None:
    """Before schema 4 the command queue had no x-quorum-initial-group-size; the broker refuses a
    redeclaration that adds it, so without the fallback the daemon would never become ready."""
    from client.rpc import RelationClient

    old = topology.command_queue()
    arguments = {k: v for k, v in old.arguments.items() if k != "x-quorum-initial-group-size"}
    async with await aio_pika.connect(fault_vhost) as conn:
        channel = await conn.channel()
        await channel.declare_queue(topology.COMMAND_QUEUE, durable=True, arguments=arguments)
    daemon = DaemonProcess(fault_vhost, own_database, tmp_path)
    try:
        daemon.start()
        await daemon.wait_ready(30)
        assert any("declared by an older relationd" in line.get("event", "") for line in daemon.log_lines())
        async with await RelationClient.connect(fault_vhost, timeout=15) as client:
            assert isinstance(await client.list_models(), list)
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()[-3000:]
