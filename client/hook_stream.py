"""A unit's relation hooks, live: resumed from its saved state, from a log position, or from its
snapshot, then following the model's events (client.watch.Watch).

Where it starts:
- ``state`` (what the last hook handed out carried; ``relctl hooks --state FILE``): the hooks
  still pending from that hook's event, then the log after the state's position, exactly as one
  uninterrupted stream would have gone on, while the log still holds those events and they are
  at most ``max_replay``; otherwise the unit's snapshot and the hooks for the difference
  (client.hooks.UnitHooks.resync), as Juju's uniter does after a restart.
- ``after`` (a hook position, ``relctl hooks --from SEQ.INDEX``): the log replayed from its start
  to rebuild the unit's view, the hooks after that position; while the log holds its start.
- neither (a new agent): the unit's snapshot, as the difference from an empty view.
When retention has deleted events the stream needs (EventsExpired), it reads the snapshot and
goes on from there by itself, and says so in the log (``relctl`` shows it on stderr).

Each hook handed out carries ``state``: the unit's view once that hook has run. Persist it after
running the hook (client.state_file.write_state) and resume with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from client.hooks import Hook, StateError, UnitHooks, with_state
from client.rpc import RelationClient
from client.watch import Watch, model_uuid
from contracts import errors
from contracts.snapshot import ModelSnapshot

log = logging.getLogger("relationd.client.hooks")


class HookStream:
    """An async iterator over one unit's hooks, for ever. ``resyncs`` counts the starts from a
    snapshot that lost events (retention, or a gap longer than ``max_replay``).

    Raises ModelNotFound, UnitNotFound, client.hooks.StateError (a state of another unit or
    model, or not one at all).
    """

    def __init__(
        self,
        url: str,
        model: str,
        unit: str,
        *,
        state: dict[str, Any] | None = None,
        after: tuple[int, int] | None = None,
        timeout: float = 30.0,
        max_replay: int = 10_000,
        idle: float | None = 15.0,
    ) -> None:
        if state is not None and after is not None:
            raise ValueError("resume from a state or from a position, not both")
        self.url = url
        self.model = model
        self.unit = unit
        self.timeout = timeout
        self.max_replay = max_replay
        self.idle = idle
        self.resyncs = 0
        self.position: tuple[int, int] | None = None
        self._state = state
        self._after = after
        self._model_uuid = ""
        self._client: RelationClient | None = None
        self._hooks: AsyncGenerator[Hook, None] | None = None

    def __aiter__(self) -> AsyncIterator[Hook]:
        if self._hooks is None:
            self._hooks = self._run()
        return self._hooks

    async def close(self) -> None:
        if self._hooks is not None:
            await self._hooks.aclose()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _snapshot(self) -> ModelSnapshot:
        assert self._client is not None
        snapshot = await self._client.snapshot(self.model, self.unit, timeout=self.timeout)
        self._model_uuid = snapshot.model_uuid
        return snapshot

    async def _resolve(self, client: RelationClient) -> str:
        """The model's UUID (a log replay needs no snapshot, nor the unit to exist yet)."""
        return await model_uuid(client, self.model, timeout=self.timeout)

    def _hand_out(self, hooks: list[Hook], machine: UnitHooks) -> list[Hook]:
        return list(with_state(hooks, machine, model=self._model_uuid))

    async def _run(self) -> AsyncGenerator[Hook, None]:
        self._client = await RelationClient.connect(self.url, timeout=self.timeout)
        after = self._after
        if after is None:
            snapshot = await self._snapshot()
        else:
            self._model_uuid = await self._resolve(self._client)
        if self._state is not None:
            machine, pending = UnitHooks.from_state(self._state, self.unit)
            if self._state.get("model") not in (None, self._model_uuid):
                raise StateError(f"hook state is of model {self._state['model']!r}, not {self.model!r}")
            position = self._state.get("position")
            self.position = (position[0], position[1]) if position else None
            for hook in self._hand_out(pending, machine):
                self.position = hook.position
                yield hook
            if snapshot.seq - machine.last_seq > self.max_replay:
                log.warning(  # said like the retention fallback: joins and departures between are skipped
                    "unit %s: %d events since its state; resuming from its snapshot at seq %d",
                    self.unit, snapshot.seq - machine.last_seq, snapshot.seq,
                )  # fmt: skip
                self.resyncs += 1
                for hook in self._resync(machine, snapshot):
                    self.position = hook.position
                    yield hook
        else:
            machine = UnitHooks(self.unit)
            if after is None:
                for hook in self._resync(machine, snapshot):
                    self.position = hook.position
                    yield hook
        while True:
            try:
                async with Watch(
                    self.url, self._model_uuid, after=machine.last_seq, timeout=self.timeout,
                    idle=self.idle, fallback=False,
                ) as events:  # fmt: skip
                    async for event in events:
                        hooks = machine.apply(event.model_dump(mode="json"))
                        if after is not None:
                            hooks = [h for h in hooks if h.position > after]
                        for hook in self._hand_out(hooks, machine):
                            self.position = hook.position
                            yield hook
            except errors.EventsExpired as exc:
                log.warning(
                    "unit %s: the model's events after seq %d are no longer kept (the oldest kept "
                    "is seq %s); resuming from the unit's snapshot: the hooks for what changed meanwhile",
                    self.unit, machine.last_seq, exc.details.get("oldest_kept_seq"),
                )  # fmt: skip
                self.resyncs += 1
                after = None
                for hook in self._resync(machine, await self._snapshot()):
                    self.position = hook.position
                    yield hook

    def _resync(self, machine: UnitHooks, snapshot: ModelSnapshot) -> list[Hook]:
        return self._hand_out(machine.resync(snapshot, self.position), machine)
