"""Several broker nodes in the client library: connect to the first that answers, and when the
node goes, reconnect to the next by itself and resend the call in flight with the same command id.

Two "nodes" here are two TCP proxies in front of the test broker, so a node can be lost (every
connection through it cut, nothing listening) or frozen (nothing forwarded) at an exact moment
without a cluster; tests/test_fault_cluster.py does the same on a real three-node cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from client.rpc import RelationClient, node_urls
from client.watch import watch
from daemon.settings import Settings
from tests.node_proxy import NodeProxy
from tests.private_services import free_port


@pytest.fixture
async def two_nodes(amqp_url: str) -> AsyncIterator[list[NodeProxy]]:
    nodes = [await NodeProxy(amqp_url).start(), await NodeProxy(amqp_url).start()]
    yield nodes
    for node in nodes:
        await node.lose()


async def test_connect_skips_a_node_that_is_down(daemon: Any, amqp_url: str) -> None:
    dead = amqp_url.replace(f":{urlsplit(amqp_url).port or 5672}/", f":{free_port()}/")
    async with await RelationClient.connect(f"{dead},{amqp_url}", timeout=10) as client:
        assert client.node == 1
        assert isinstance(await client.list_models(), list)


async def test_a_call_in_flight_when_its_node_goes_is_answered_through_the_next_node(
    daemon: Any, two_nodes: list[NodeProxy]
) -> None:
    first, second = two_nodes
    client = await RelationClient.connect(f"{first.url},{second.url}", timeout=15)
    try:
        assert client.node == 0
        name = f"failover-{uuid.uuid4().hex[:8]}"
        command_id = str(uuid.uuid4())
        first.hold()  # the command reaches the daemon, its reply never comes back this way
        call = asyncio.create_task(client.create_model(name, command_id=command_id))
        await asyncio.sleep(1.0)
        assert not call.done()
        await first.lose()
        model = await asyncio.wait_for(call, 15)
        assert model.name == name
        assert (client.node, client.reconnects) == (1, 1)
        # Applied once: the resend with the same id was answered from the stored reply.
        assert [m.name for m in await client.list_models()].count(name) == 1
        again = await client.create_model(name, command_id=command_id)
        assert again.uuid == model.uuid
    finally:
        await client.close()


async def test_an_idle_client_reconnects_by_itself(daemon: Any, two_nodes: list[NodeProxy]) -> None:
    first, second = two_nodes
    async with await RelationClient.connect(f"{first.url},{second.url}", timeout=15) as client:
        await first.lose()
        for _ in range(100):
            if client.reconnects:
                break
            await asyncio.sleep(0.05)
        assert (client.node, client.reconnects) == (1, 1)
        assert isinstance(await client.list_models(), list)


async def test_relctl_takes_a_list_of_nodes_by_option_and_environment(daemon: Any, amqp_url: str) -> None:
    from tests.test_relctl import relctl

    dead = amqp_url.replace(f":{urlsplit(amqp_url).port or 5672}/", f":{free_port()}/")
    nodes = f"{dead},{amqp_url}"
    by_option = await relctl("--amqp-url", nodes, "--json", "models")
    assert by_option.code == 0, by_option.err
    by_env = await relctl("--json", "models", env={"RELATIOND_AMQP_URL": nodes})
    assert by_env.code == 0, by_env.err


def test_node_urls_split_a_list_and_the_daemon_checks_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    assert node_urls(" amqp://a:1/ , amqp://b:2/,") == ["amqp://a:1/", "amqp://b:2/"]
    monkeypatch.setenv("RELATIOND_AMQP_URL", "amqp://u:pw@a:1/,amqps://u:pw@b:2/")
    assert Settings().amqp_urls() == ["amqp://u:pw@a:1/", "amqps://u:pw@b:2/"]
    monkeypatch.setenv("RELATIOND_AMQP_URL", "amqp://u:secret-pw@a:1/,mq2:5672")
    with pytest.raises(ValidationError, match="item 2 of 2 is not an amqp") as refused:
        Settings()
    assert "secret-pw" not in str(refused.value)


async def test_a_watch_moves_to_the_next_node_and_misses_nothing(
    daemon: Any, two_nodes: list[NodeProxy]
) -> None:
    first, second = two_nodes
    mysql = {"name": "mysql", "provides": {"db": {"interface": "mysql"}}}
    wordpress = {"name": "wordpress", "requires": {"db": {"interface": "mysql"}}}
    async with await RelationClient.connect(second.url, timeout=15) as writer:
        model = await writer.create_model(f"watch-failover-{uuid.uuid4().hex[:8]}")
        events: list[int] = []
        arrived = asyncio.Event()
        stream = watch(f"{first.url},{second.url}", model.uuid, timeout=15)

        async def follow() -> None:
            async for event in stream:
                events.append(event.seq)
                arrived.set()

        task = asyncio.create_task(follow())
        try:
            await writer.deploy(model.uuid, "mysql", mysql, units=1)
            await asyncio.wait_for(arrived.wait(), 15)
            await first.lose()
            await writer.deploy(model.uuid, "wordpress", wordpress, units=2)
            last = (await writer.events_after(model.uuid, 0))[-1].seq
            async with asyncio.timeout(20):
                while True:
                    arrived.clear()
                    if events[-1] >= last:
                        break
                    await arrived.wait()
            assert events == list(range(1, last + 1))
            assert stream.reconnects >= 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stream.close()
