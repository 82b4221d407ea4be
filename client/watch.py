"""Follow a model's change events: replay what was missed, then live, with no gap and no duplicate.

How it stays exact:

1. Bind a private queue to the events exchange *first* (for the model, optionally one namespace
   or one relation), so that every event published from then on is buffered.
2. Replay from the daemon's log (``events_after``) page by page from the requested sequence.
   An event committed before the replay query is in the log; one committed after it is published
   after the binding, so it is in the buffer. Nothing falls between the two.
3. Yield live events, skipping any whose ``seq`` was already yielded (replay overlap, or the
   outbox republishing after a crash). A live event is trusted only when it is the very next
   ``seq``; anything else may hide a gap (and with a namespace or relation filter the matching
   sequence numbers are never contiguous), so the log is asked for what follows the last event
   yielded, with the same filters, before going on. When nothing arrives live for ``idle``
   seconds the log is asked too, so a stalled or misrouted relay delays events but never
   hides them.
4. When the broker connection is lost (broker restart), reconnect with backoff, bind again and
   resume with a replay from the last ``seq`` yielded. While the daemon is down the broker holds
   the replay query until it is back. With several broker nodes (a comma-separated URL list) each
   reconnect starts from the node after the one lost.
5. When the daemon no longer keeps the events after the last ``seq`` (retention deleted them:
   EventsExpired), read a snapshot of the model (``snapshot``), say so in the log, call
   ``on_resync`` with it and go on from its ``seq``: the watcher is told what it missed (the
   state now), never silently skipped past it. ``fallback=False`` raises EventsExpired instead.

Example::

    async with watch(url, "prod", after=41, namespace="relation_unit") as events:
        async for event in events:
            print(event.seq, event.kind, event.key)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType

import aio_pika
from aio_pika.exceptions import AMQPError
from aiormq.exceptions import ChannelInvalidStateError
from pydantic import ValidationError

from client.rpc import DaemonUnreachable, RelationClient
from contracts import errors
from contracts.events import ChangeEvent, binding_key
from contracts.names import is_uuid
from contracts.snapshot import ModelSnapshot
from contracts.topology import EVENTS_EXCHANGE

log = logging.getLogger("relationd.client.watch")

# Worth a reconnect: the broker went away, or the daemon did not answer a replay query in time.
# A publish or declare on a channel that closed under us raises ChannelInvalidStateError, a
# RuntimeError rather than an AMQPError.
RECONNECTABLE: tuple[type[BaseException], ...] = (
    OSError,
    AMQPError,
    ChannelInvalidStateError,
    DaemonUnreachable,
)

ReadLog = Callable[[int], Awaitable[list[ChangeEvent]]]
NextBatch = Callable[[], Awaitable[list[ChangeEvent]]]


async def follow(
    read_log: ReadLog, next_batch: NextBatch, after: int, page: int
) -> AsyncIterator[ChangeEvent]:
    """Merge the log and the live stream into one ordered stream of events with ``seq > after``.

    ``read_log(seq)`` returns at most ``page`` logged events after ``seq`` (matching the filters);
    ``next_batch()`` waits for live events and returns every one buffered, or an empty list when
    none came for a while (then the log is checked). The live stream must have been subscribed
    before the first ``read_log`` call.
    """
    last = after
    while True:
        while True:  # catch up from the log
            events = await read_log(last)
            for event in events:
                if event.seq > last:
                    last = event.seq
                    yield event
            if len(events) < page:
                break
        caught_up = True
        while caught_up:  # follow live while each event is the next one
            batch = await next_batch()
            if not batch:
                break  # quiet for a while: make sure of it in the log
            for event in sorted(batch, key=lambda e: e.seq):
                if event.seq <= last:
                    continue  # already yielded
                if event.seq != last + 1:
                    caught_up = False  # a possible gap: back to the log
                    break
                last = event.seq
                yield event


async def model_uuid(client: RelationClient, model: str, *, timeout: float | None = None) -> str:
    """The UUID of ``model``, given by name or UUID (a UUID needs no call). Raises ModelNotFound."""
    if is_uuid(model):
        return model
    found = [m.uuid for m in await client.list_models(timeout=timeout) if m.name == model]
    if not found:
        raise errors.ModelNotFound(f"model {model!r} not found", model=model)
    return found[0]


def _backoff(first: float, most: float) -> Iterator[float]:
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * 2, most)


class _LiveQueue:
    """A server-named exclusive queue bound to the events exchange, buffering what arrives."""

    def __init__(self, idle: float | None) -> None:
        self.idle = idle
        self.buffer: asyncio.Queue[ChangeEvent | BaseException] = asyncio.Queue()

    async def bind(self, connection: aio_pika.abc.AbstractConnection, routing_key: str) -> None:
        connection.close_callbacks.add(self._on_close)
        channel = await connection.channel()
        channel.close_callbacks.add(self._on_close)
        # Passively: a client user may read the exchange but not configure it (deploy/README.md).
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=routing_key)
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            self.buffer.put_nowait(ChangeEvent.model_validate_json(message.body))
        except ValidationError as exc:
            log.warning("ignoring a malformed event message %s: %s", message.message_id, exc)

    def _on_close(self, _sender: object, exc: BaseException | None = None) -> None:
        self.buffer.put_nowait(ConnectionError(f"the broker connection closed: {exc}"))

    async def next_batch(self) -> list[ChangeEvent]:
        try:
            items = [await asyncio.wait_for(self.buffer.get(), self.idle)]
        except TimeoutError:
            return []
        while not self.buffer.empty():
            items.append(self.buffer.get_nowait())
        for item in items:
            if isinstance(item, BaseException):
                raise item
        return [item for item in items if isinstance(item, ChangeEvent)]


class Watch:
    """An async iterator over one model's change events, from ``seq > after`` on, forever.

    ``namespace`` (a ``contracts.events.Namespace`` value) and ``relation_id`` narrow it.
    ``idle``: seconds without a live event after which the log is checked (None: never).
    ``last_seq`` is the sequence number of the last event yielded: keep it to resume later.
    ``reconnects`` counts the broker connections lost and re-established; ``resyncs`` the times
    it went on from a snapshot because the events it needed were no longer kept.

    Raises ModelNotFound (and any other refusal of the replay query, such as PermissionDenied;
    EventsExpired with ``fallback=False``); connection losses and daemon outages are retried,
    never raised.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        after: int = 0,
        namespace: str | None = None,
        relation_id: int | None = None,
        timeout: float = 30.0,
        page: int = 1000,
        max_backoff: float = 5.0,
        idle: float | None = 15.0,
        fallback: bool = True,
        on_resync: Callable[[ModelSnapshot], None] | None = None,
    ) -> None:
        self.url = url
        self.model = model
        self.last_seq = after
        self.namespace = namespace
        self.relation_id = relation_id
        self.timeout = timeout
        self.page = page
        self.max_backoff = max_backoff
        self.idle = idle
        self.reconnects = 0
        self.resyncs = 0
        self.fallback = fallback
        self.on_resync = on_resync
        self._model_uuid: str | None = None
        self._node = -1  # the broker node (index in the URL list) of the last connection
        self._client: RelationClient | None = None
        self._events: AsyncGenerator[ChangeEvent, None] | None = None

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def close(self) -> None:
        if self._events is not None:
            await self._events.aclose()
        if self._client is not None:
            await self._client.close()

    async def _run(self) -> AsyncGenerator[ChangeEvent, None]:
        delays = _backoff(0.1, self.max_backoff)
        while True:
            try:
                client = await self._connect()
                live = _LiveQueue(self.idle)
                uuid = await self._resolve(client)
                await live.bind(client.connection, binding_key(uuid, self.namespace, self.relation_id))
                while True:
                    try:
                        async for event in follow(
                            self._reader(client), live.next_batch, self.last_seq, self.page
                        ):
                            self.last_seq = event.seq
                            yield event
                            delays = _backoff(0.1, self.max_backoff)
                    except errors.EventsExpired as exc:
                        if not self.fallback:
                            raise
                        await self._resync(client, exc)
            except RECONNECTABLE as exc:
                self.reconnects += 1
                delay = next(delays)
                log.warning("watch of %s interrupted (%s); resuming after seq %d in %.1fs",
                            self.model, exc or type(exc).__name__, self.last_seq, delay)  # fmt: skip
                await self._disconnect()
                await asyncio.sleep(delay)

    async def _resync(self, client: RelationClient, exc: errors.RelationdError) -> None:
        """Go on from a snapshot of the model: the events after ``last_seq`` are gone."""
        snapshot = await client.snapshot(self._model_uuid or self.model, timeout=self.timeout)
        self.resyncs += 1
        log.warning("events of %s after seq %d are no longer kept (the oldest kept is seq %s); "
                    "going on from a snapshot of the model at seq %d, without the events between",
                    self.model, self.last_seq, exc.details.get("oldest_kept_seq"), snapshot.seq)  # fmt: skip
        self.last_seq = max(self.last_seq, snapshot.seq)
        if self.on_resync is not None:
            self.on_resync(snapshot)

    async def _connect(self) -> RelationClient:
        await self._disconnect()
        # From the node after the one last used: after a loss, that node is likely gone.
        self._client = await RelationClient.connect(self.url, timeout=self.timeout, start=self._node + 1)
        self._node = self._client.node
        return self._client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except RECONNECTABLE:
                pass

    async def _resolve(self, client: RelationClient) -> str:
        """The model's UUID, for the binding key (the model may be given by name)."""
        if self._model_uuid is None:
            self._model_uuid = await model_uuid(client, self.model, timeout=self.timeout)
        return self._model_uuid

    def _reader(self, client: RelationClient) -> ReadLog:
        async def read_log(after: int) -> list[ChangeEvent]:
            return await client.events_after(
                self._model_uuid or self.model,
                after,
                limit=self.page,
                namespace=self.namespace,
                relation_id=self.relation_id,
            )

        return read_log


def watch(
    url: str,
    model: str,
    *,
    after: int = 0,
    namespace: str | None = None,
    relation_id: int | None = None,
    timeout: float = 30.0,
) -> Watch:
    """Watch ``model``'s events with ``seq > after``: replay, then live. See :class:`Watch`."""
    return Watch(url, model, after=after, namespace=namespace, relation_id=relation_id, timeout=timeout)
