"""A failed broker connect leaves no aio-pika Connection open, in the client and in the daemon.

``aio_pika.connect`` creates its Connection before it connects and does not close it when the
connect fails (refused, bad credentials, TLS, timeout): the caller never gets it, so it was left
to ``Connection.__del__``, which schedules ``close()`` on whatever loop is current at garbage
collection time, and warns "coroutine 'Connection.close' was never awaited" when there is none
(a later synchronous test). Every Connection created here must be closed when the call returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from client.rpc import BrokerUnreachable, RelationClient
from contracts.errors import Unauthorized
from daemon.broker import Broker
from daemon.settings import Settings
from tests.conftest import AMQP_URL

REFUSED = "amqp://guest:guest@127.0.0.1:1/"
BAD_PASSWORD = AMQP_URL.replace("guest:guest@", "guest:not-the-password@", 1)


@pytest.fixture
def amqp_connections(monkeypatch: pytest.MonkeyPatch) -> list[aio_pika.Connection]:
    """Every aio-pika Connection created during the test."""
    created: list[aio_pika.Connection] = []
    init = aio_pika.Connection.__init__

    def tracking_init(self: aio_pika.Connection, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(aio_pika.Connection, "__init__", tracking_init)
    return created


@pytest.fixture
async def silent_broker() -> AsyncIterator[str]:
    """Accepts TCP connections and never answers: the AMQP handshake times out."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"amqp://guest:guest@127.0.0.1:{port}/"
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


def _assert_all_closed(created: list[aio_pika.Connection]) -> None:
    assert created, "no aio-pika Connection was created: the tracking does not see the connect"
    assert [c for c in created if not c.is_closed] == []


@pytest.mark.parametrize(
    ("url", "error"), [(REFUSED, BrokerUnreachable), (BAD_PASSWORD, Unauthorized)], ids=["refused", "auth"]
)
async def test_client_connect_failure_closes_its_connection(
    amqp_connections: list[aio_pika.Connection], url: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await RelationClient.connect(url, timeout=5)
    _assert_all_closed(amqp_connections)


async def test_client_connect_timeout_closes_its_connection(
    amqp_connections: list[aio_pika.Connection], silent_broker: str
) -> None:
    with pytest.raises(BrokerUnreachable):
        await RelationClient.connect(silent_broker, timeout=0.5)
    _assert_all_closed(amqp_connections)


@pytest.mark.parametrize("url", [REFUSED, BAD_PASSWORD], ids=["refused", "auth"])
async def test_daemon_session_failure_closes_its_connection(
    amqp_connections: list[aio_pika.Connection], url: str
) -> None:
    async def never(_message: Any) -> None:
        raise AssertionError("no message can arrive without a session")

    broker = Broker(Settings(amqp_url=url))
    with pytest.raises(Exception) as raised:
        await broker._open(never, asyncio.Event())
    assert not isinstance(raised.value, AssertionError)
    await broker._teardown()
    _assert_all_closed(amqp_connections)
