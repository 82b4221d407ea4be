"""Forms batches from the write commands waiting for the database, without waiting to fill one.

A command that has its fair turn (daemon/fairness.py) joins the queue here in the order the turns
were given; while fewer than ``workers`` batches run, the next batch is taken at once from what
waits (at concurrency 1, one command), up to ``batch_max``. A model with a batch running in this
instance keeps its later commands waiting, and a command is never taken before an earlier one of
its model, so each model's commands are applied, answered and their events numbered in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daemon import metrics
from daemon.applier import Applied
from daemon.batch import Item

# How long a command whose model another instance holds waits before its next try.
DEFER_SECONDS = 0.005


@dataclass(slots=True)
class _Waiting:
    item: Item
    future: asyncio.Future[Applied]


class Batcher:
    """The queue of batchable commands and the tasks that apply them in batches."""

    def __init__(
        self,
        apply: Callable[[list[Item]], Awaitable[list[Applied | Exception | None]]],
        *,
        batch_max: int,
        workers: int,
    ) -> None:
        if batch_max < 1 or workers < 1:
            raise ValueError("batch_max and workers must be at least 1")
        # Applies one batch (retrying transient failures); per item its outcome, the error that
        # ended it, or None to try it again in a later batch.
        self._apply = apply
        self.batch_max = batch_max
        self.workers = workers
        self._queue: deque[_Waiting] = deque()
        self._busy: set[str] = set()  # models with a batch running in this instance
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Applied:
        """Apply ``item`` in the next batch that may take it; its outcome once committed."""
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self._running < self.workers:
            batch = self._take()
            if not batch:
                return
            self._running += 1
            self._busy.update(w.item.key for w in batch)
            task = asyncio.create_task(self._run(batch), name=f"command batch of {len(batch)}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Waiting]:
        taken: list[_Waiting] = []
        left: deque[_Waiting] = deque()
        held: set[str] = set()  # models with an earlier command left waiting
        ids: set[str] = set()
        for waiting in self._queue:
            if waiting.future.done():  # its command's task was cancelled
                continue
            if (
                len(taken) < self.batch_max
                and waiting.item.key not in self._busy
                and waiting.item.key not in held
                and waiting.item.command_id not in ids
            ):
                taken.append(waiting)
                ids.add(waiting.item.command_id)
            else:
                left.append(waiting)
                held.add(waiting.item.key)
        self._queue = left
        return taken

    async def _run(self, batch: list[_Waiting]) -> None:
        deferred: list[_Waiting] = []
        metrics.BATCH_COMMANDS.observe(len(batch))
        try:
            results = await self._apply([w.item for w in batch])
            for waiting, result in zip(batch, results, strict=True):
                if result is None:
                    deferred.append(waiting)
                elif waiting.future.done():
                    continue
                elif isinstance(result, Exception):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)
            if deferred:
                metrics.BATCH_DEFERRED.inc(len(deferred))
                await asyncio.sleep(DEFER_SECONDS)
        except BaseException as exc:
            for waiting in batch:
                if waiting.future.done():
                    continue
                if isinstance(exc, Exception):
                    waiting.future.set_exception(exc)
                else:
                    waiting.future.cancel()
            if not isinstance(exc, Exception):
                raise
        finally:
            # Deferred commands go first: nothing of their models was taken after them.
            self._queue.extendleft(reversed(deferred))
            self._busy.difference_update(w.item.key for w in batch)
            self._running -= 1
            self._start()
