"""/healthz, /readyz and /metrics on aiohttp: today's answers, and hostile clients cannot stall them.

The server is exercised in-process (its readiness function is a plain coroutine, as the daemon
passes one) and then through the real daemon: a client trickling its headers (slowloris), one
sending garbage and one sending oversized requests are all connected while the probes still answer,
and the slow one is closed by the server once its idle bound passes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from client.rpc import RelationClient
from daemon.health import HealthServer
from tests.harness import DaemonProcess


class Readiness:
    """What the daemon's readiness function returns; a test flips it."""

    def __init__(self) -> None:
        self.checks: dict[str, Any] = {"broker_ok": True, "database_ok": True, "outbox_backlog": 0}

    async def __call__(self) -> dict[str, Any]:
        return dict(self.checks)


@pytest.fixture
async def server() -> AsyncIterator[tuple[HealthServer, Readiness]]:
    ready = Readiness()
    http = HealthServer("127.0.0.1", 0, ready, idle_timeout=1.0)
    await http.start()
    yield http, ready
    await http.stop()


async def _exchange(port: int, data: bytes, read_for: float = 5.0) -> bytes:
    """Send raw bytes, then read until a whole response is in, the server closes the connection,
    or ``read_for`` passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if _complete(out):
                break
        return out
    finally:
        writer.close()


def _complete(raw: bytes) -> bool:
    """A whole response: its head and as many body bytes as its Content-Length says."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


async def _get(port: int, path: str) -> tuple[int, bytes]:
    raw = await _exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    return _status(head), body


async def test_routes_answer_as_before(server: tuple[HealthServer, Readiness]) -> None:
    http, ready = server
    assert await _get(http.port, "/healthz") == (200, b'{"status": "ok"}\n')
    status, body = await _get(http.port, "/readyz?verbose=1")
    assert status == 200
    assert json.loads(body) == {"ready": True, "broker_ok": True, "database_ok": True, "outbox_backlog": 0}

    ready.checks |= {"database_ok": False, "database_error": "connection refused"}
    status, body = await _get(http.port, "/readyz")
    assert status == 503
    assert json.loads(body)["ready"] is False and json.loads(body)["database_error"] == "connection refused"

    status, body = await _get(http.port, "/metrics")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert status == 200 and {"relationd_commands", "relationd_outbox_backlog"} <= names
    assert (await _get(http.port, "/nowhere"))[0] == 404
    post = await _exchange(http.port, b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 2)
    assert _status(post) == 405


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"\x00\xff\xfe garbage \x01\r\n\r\n", id="binary-garbage"),
        pytest.param(b"GET /healthz HTTP/9.9\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", id="bad-header"),
        pytest.param(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", id="long-request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n", id="long-header"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(1000)) + b"\r\n",
            id="too-many-headers",
        ),
    ],
)
async def test_malformed_and_oversized_requests_get_a_4xx_and_the_server_goes_on(
    server: tuple[HealthServer, Readiness], request_bytes: bytes
) -> None:
    http, _ = server
    answer = await _exchange(http.port, request_bytes)
    assert 400 <= _status(answer) < 500, answer[:200]
    assert await _get(http.port, "/healthz") == (200, b'{"status": "ok"}\n')


async def test_an_oversized_body_is_not_read_into_memory(server: tuple[HealthServer, Readiness]) -> None:
    """A POST announcing 1 GB gets its 405 at once; the server neither waits for nor buffers it."""
    http, _ = server
    head = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
    answer = await _exchange(http.port, head + b"x" * 65536, read_for=1.0)
    assert _status(answer) == 405
    assert await _get(http.port, "/healthz") == (200, b'{"status": "ok"}\n')


async def test_slowloris_does_not_stall_the_probe_and_is_closed_at_the_idle_bound(
    server: tuple[HealthServer, Readiness],
) -> None:
    http, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    await writer.drain()
    try:
        closed_after = None
        began = time.monotonic()
        for i in range(40):  # one header byte every 0.1 s: never a complete request
            try:
                writer.write(b"y")
                await writer.drain()
            except ConnectionError:
                closed_after = time.monotonic() - began
                break
            if i == 3:  # the slow client is mid-request: the probe answers meanwhile
                assert await _get(http.port, "/healthz") == (200, b'{"status": "ok"}\n')
                assert (await _get(http.port, "/readyz"))[0] == 200
            try:
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    closed_after = time.monotonic() - began
                    break
            except TimeoutError:
                pass
        assert closed_after is not None, "the server kept a connection that never completed a request"
        print(f"\nslowloris connection closed by the server after {closed_after:.2f}s (idle bound 1.0s)")
    finally:
        writer.close()


async def test_hostile_clients_do_not_stall_the_running_daemon(
    daemon: DaemonProcess, client: RelationClient
) -> None:
    """Through the real daemon: while a slowloris client, garbage and oversized requests are
    connected, /readyz answers 200, a command is applied, and the daemon process lives on; the
    bad request is logged on one line."""
    port = daemon.port
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
    garbage = asyncio.create_task(_exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50))
    oversized = asyncio.create_task(
        _exchange(port, b"GET /metrics HTTP/1.1\r\nX: " + b"z" * 200_000 + b"\r\n\r\n")
    )
    try:
        status, body = await asyncio.to_thread(daemon.http, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        model = await client.create_model(f"hostile-{int(time.time() * 1000)}")
        assert model.name in [m.name for m in await client.list_models()]
        for answer in await asyncio.gather(garbage, oversized):
            assert 400 <= _status(answer) < 500, answer[:200]
        assert daemon.proc is not None and daemon.proc.poll() is None
        # The oversized request is logged as one bounded line naming it, not as a traceback.
        log = daemon.log()
        assert "WARNING aiohttp.server bad HTTP request (answered 400): Got more than 8190 bytes" in log, log
        assert "Error handling request" not in log
    finally:
        slow.close()
