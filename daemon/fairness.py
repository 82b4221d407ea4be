"""Fair shares between users of one daemon instance: who gets the next database turn, who waits.

Every user's commands share one queue, so a burst from one user used to sit in front of everyone
else's: its deliveries took every pool connection in arrival order. Here a command first enters
this instance's window (``admit``): a user may hold at most ``user_max_held`` commands (and
``user_max_held_bytes`` of bodies) in it, and a delivery past that share is refused at once with
``RateLimited`` (no database work, nothing stored, so the same command id can be sent again). Then
it waits for a database turn (``turn``): ``slots`` turns (the pool's size) go round robin over the
users who have commands waiting, each user's in arrival order, and while more than one user holds
commands no user starts more than ``user_slots`` at once (alone, a user may use every turn). A
second user's command therefore waits for one turn to end, not for the first user's burst, and
runs beside a few of the burst's commands, not beside a pool full of them (on a busy machine
each of those slows every step of it); a burst larger than its share drains at the cost of a
refusal each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from contracts import errors
from daemon.settings import Settings


@dataclass(slots=True)
class _Held:
    commands: int = 0
    bytes: int = 0


class Fairness:
    """The per-user window shares and the round robin of database turns (one per instance)."""

    def __init__(
        self,
        *,
        slots: int,
        user_slots: int,
        user_max_held: int,
        user_max_held_bytes: int,
        enabled: bool = True,
    ) -> None:
        if slots < 1 or user_slots < 1 or user_max_held < 1 or user_max_held_bytes < 1:
            raise ValueError("fairness limits must be at least 1")
        self.enabled = enabled
        self.slots = slots
        self.user_slots = min(user_slots, slots)
        self.user_max_held = user_max_held
        self.user_max_held_bytes = user_max_held_bytes
        self._held: dict[str, _Held] = {}
        self._free = slots
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._ring: deque[str] = deque()  # users with a command waiting, in the order they get turns
        self._turn_seconds = 0.01  # moving average of a turn's length, for the retry hint

    # The window: what each user holds in this instance.

    def admit(self, user: str, size: int) -> None:
        """Count a delivered command of ``user`` (``size`` body bytes) as held until ``leave``.

        Raises RateLimited, counting nothing, when the user already holds its share.
        """
        held = self._held.setdefault(user, _Held())
        if (
            self.enabled
            and held.commands
            and (held.commands >= self.user_max_held or held.bytes + size > self.user_max_held_bytes)
        ):
            retry_after = self.retry_after(user)
            raise errors.RateLimited(
                f"user {user!r} already has {held.commands} commands ({held.bytes} bytes) waiting in "
                f"this relationd instance (at most {self.user_max_held} commands, "
                f"{self.user_max_held_bytes} bytes per user): send this command again, with the same "
                f"command id, after {retry_after} s",
                user=user,
                held=held.commands,
                retry_after=retry_after,
            )
        held.commands += 1
        held.bytes += size

    def leave(self, user: str, size: int) -> None:
        """The command ``admit`` counted is finished (answered, abandoned or failed)."""
        held = self._held.get(user)
        if held is None:
            return
        held.commands -= 1
        held.bytes -= size
        if held.commands <= 0:
            del self._held[user]

    def held(self, user: str) -> int:
        held = self._held.get(user)
        return held.commands if held else 0

    def retry_after(self, user: str) -> float:
        """Seconds until about half the user's held commands have had their turn (0.05 .. 30)."""
        estimate = self.held(user) / 2 * self._turn_seconds / self.user_slots
        return round(min(30.0, max(0.05, estimate)), 2)

    # Database turns.

    @contextlib.asynccontextmanager
    async def turn(self, user: str) -> AsyncIterator[None]:
        """Wait for ``user``'s next fair turn at the database and hold it for the block."""
        if not self.enabled:
            yield
            return
        await self._acquire(user)
        started = asyncio.get_running_loop().time()
        try:
            yield
        finally:
            elapsed = asyncio.get_running_loop().time() - started
            self._turn_seconds += (elapsed - self._turn_seconds) / 16
            self._release(user)

    async def _acquire(self, user: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(user)
        if queue is None:
            queue = self._waiting[user] = deque()
            self._ring.append(user)
        queue.append(future)
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(user)  # granted, but the waiter was cancelled before it ran
            else:
                self._forget(user, future)
            raise

    def _forget(self, user: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user)
        if queue is None or future not in queue:
            return
        queue.remove(future)
        if not queue:
            del self._waiting[user]
            self._ring.remove(user)

    def _release(self, user: str) -> None:
        self._running[user] -= 1
        if not self._running[user]:
            del self._running[user]
        self._free += 1
        self._dispatch()

    def _cap(self) -> int:
        """Turns one user may hold: all of them alone, ``user_slots`` while others hold commands."""
        return self.user_slots if len(self._held) > 1 else self.slots

    def _dispatch(self) -> None:
        """Give free turns to the users in the ring, in turn, skipping those at their cap."""
        passed = 0
        while self._free and self._ring and passed < len(self._ring):
            user = self._ring[0]
            if self._running.get(user, 0) >= self._cap():
                self._ring.rotate(-1)
                passed += 1
                continue
            queue = self._waiting[user]
            future = queue.popleft()
            self._ring.popleft()
            if queue:
                self._ring.append(user)
            else:
                del self._waiting[user]
            if future.done():  # its waiter was cancelled and has not run its clean-up yet
                passed = 0
                continue
            self._running[user] = self._running.get(user, 0) + 1
            self._free -= 1
            future.set_result(None)
            passed = 0


def from_settings(settings: Settings) -> Fairness:
    """The instance's shares: turns as many as pool connections (times the batch size, as a batch
    holds one connection for several commands), the rest from RELATIOND_*."""
    per_connection = settings.batch_max
    return Fairness(
        slots=settings.pool_size * per_connection,
        user_slots=(settings.user_concurrency or max(1, settings.pool_size // 2)) * per_connection,
        user_max_held=settings.user_max_held,
        user_max_held_bytes=settings.user_max_held_bytes,
        enabled=settings.fairness,
    )
