"""A TCP proxy that stands for one broker node, so a test can lose or freeze a "node" at an exact
moment without a cluster (tests/private_rabbit_cluster.py has the real thing)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from tests.private_services import free_port


class NodeProxy:
    """A TCP proxy standing for one broker node: ``lose()`` cuts it, ``hold()`` stops replies."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5672
        self.listen_port = free_port()
        self.url = parts._replace(
            netloc=f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{self.listen_port}"
        ).geturl()
        self.held = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> NodeProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        return self

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(self.host, self.port)
        self._writers += [client_w, broker_w]
        for task in (self._pipe(client_r, broker_w, False), self._pipe(broker_r, client_w, True)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, to_client: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if to_client and self.held.is_set():
                    continue  # frozen: what the broker sends never reaches the client
                writer.write(data)
                await writer.drain()
        writer.close()

    def hold(self) -> None:
        self.held.set()

    async def lose(self) -> None:
        """The node dies: nothing listens any more and every connection is reset."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        for task in list(self._tasks):
            task.cancel()
        self._writers.clear()
