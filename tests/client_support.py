"""Shared by the client tests: a virtual host where no relationd runs.

Import the fixture into a test module (``from tests.client_support import idle_amqp``). One vhost
serves the whole run (creating one costs seconds); a test that declares the command queue there
deletes it again, so each test finds the vhost empty.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from contracts.topology import COMMAND_QUEUE
from tests.conftest import AMQP_URL
from tests.harness import create_vhost, delete_vhost, vhost_url


@pytest.fixture(scope="session")
async def idle_amqp() -> AsyncIterator[str]:
    """A vhost with no relationd: no command queue, nobody consuming."""
    vhost = f"relationd-idle-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


class UnservedQueue:
    """While open, the vhost has a command queue that nobody consumes (a daemon that is down)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: aio_pika.abc.AbstractConnection | None = None

    async def __aenter__(self) -> UnservedQueue:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel()
        await channel.declare_queue(COMMAND_QUEUE, durable=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.connection is not None
        async with self.connection:
            channel = await self.connection.channel()
            await channel.queue_delete(COMMAND_QUEUE)
