"""The fair-share rules of daemon/fairness.py on their own: who gets a turn, who is refused."""

from __future__ import annotations

import asyncio

import pytest

from contracts import errors
from daemon.fairness import Fairness


def fairness(**limits: int) -> Fairness:
    values = {"slots": 2, "user_slots": 2, "user_max_held": 100, "user_max_held_bytes": 10**9, **limits}
    return Fairness(**values)


async def _turns(f: Fairness, arrivals: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Let commands arrive in this order, all before the first turn ends; the order of turns."""
    seen: list[tuple[str, int]] = []

    async def one(user: str, n: int) -> None:
        async with f.turn(user):
            seen.append((user, n))
            await asyncio.sleep(0)

    await asyncio.gather(*(one(u, n) for u, n in arrivals))
    return seen


async def test_a_second_user_gets_a_turn_ahead_of_the_rest_of_the_first_users_burst() -> None:
    f = fairness(slots=1, user_slots=1)
    seen = await _turns(f, [("a", n) for n in range(5)] + [("b", 0)])
    # a0 was running and a1 already waiting in the ring when b0 came; b0 goes next.
    assert seen == [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("a", 3), ("a", 4)]


async def test_turns_go_round_robin_and_keep_each_users_order() -> None:
    f = fairness(slots=1, user_slots=1)
    seen = await _turns(f, [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("c", 0)])
    assert seen == [("a", 0), ("a", 1), ("b", 0), ("c", 0), ("a", 2), ("b", 1)]


async def _most_running(f: Fairness, user: str, commands: int) -> int:
    """Start ``commands`` of ``user``'s turns at once; how many ran at the same time at most."""
    running = most = 0
    gate = asyncio.Event()

    async def one() -> None:
        nonlocal running, most
        async with f.turn(user):
            running += 1
            most = max(most, running)
            await gate.wait()
            running -= 1

    tasks = [asyncio.create_task(one()) for _ in range(commands)]
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    return most


async def test_a_user_alone_may_use_every_turn() -> None:
    f = fairness(slots=4, user_slots=2)
    for _ in range(6):
        f.admit("a", 10)
    assert await _most_running(f, "a", 6) == 4


async def test_while_another_user_holds_commands_a_user_starts_at_most_its_turns() -> None:
    f = fairness(slots=4, user_slots=2)
    for _ in range(6):
        f.admit("a", 10)
    f.admit("b", 10)
    assert await _most_running(f, "a", 6) == 2


async def test_a_second_user_takes_the_first_turn_that_ends() -> None:
    f = fairness(slots=3, user_slots=2)
    gates = {n: asyncio.Event() for n in range(5)}
    started: list[str] = []

    async def one(user: str, n: int) -> None:
        async with f.turn(user):
            started.append(user)
            await gates[n].wait()

    for _ in range(4):
        f.admit("a", 10)
    tasks = [asyncio.create_task(one("a", n)) for n in range(4)]
    await asyncio.sleep(0)
    assert started == ["a", "a", "a"]  # alone, a takes every turn
    f.admit("b", 10)
    tasks.append(asyncio.create_task(one("b", 4)))
    await asyncio.sleep(0)
    gates[0].set()  # one of a's ends: a holds 2, its cap now that b waits, so b goes next
    for _ in range(3):
        await asyncio.sleep(0)
    assert started == ["a", "a", "a", "b"]
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert started.count("a") == 4


async def test_a_cancelled_waiter_gives_its_place_and_turn_back() -> None:
    f = fairness(slots=1, user_slots=1)
    gate = asyncio.Event()
    done: list[str] = []

    async def one(user: str) -> None:
        async with f.turn(user):
            await gate.wait()
            done.append(user)

    first = asyncio.create_task(one("a"))
    waiting = asyncio.create_task(one("b"))
    after = asyncio.create_task(one("c"))
    await asyncio.sleep(0)
    waiting.cancel()
    gate.set()
    await asyncio.gather(first, after)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert done == ["a", "c"]
    assert f._free == 1 and not f._running and not f._waiting and not f._ring


async def test_a_user_over_its_share_of_the_window_is_refused_with_a_retry_hint() -> None:
    f = fairness(user_max_held=2)
    f.admit("a", 10)
    f.admit("a", 10)
    with pytest.raises(errors.RateLimited) as refused:
        f.admit("a", 10)
    details = refused.value.details
    assert details["user"] == "a" and details["held"] == 2
    assert 0.05 <= details["retry_after"] <= 30
    assert "'a'" in refused.value.message and "same command id" in refused.value.message
    f.admit("b", 10)  # another user's share is its own
    f.leave("a", 10)
    f.admit("a", 10)
    assert f.held("a") == 2 and f.held("b") == 1


async def test_the_byte_share_refuses_but_a_lone_large_command_is_let_in() -> None:
    f = fairness(user_max_held_bytes=100)
    f.admit("a", 500)  # alone it is let in whatever its size: the body limit bounds it
    with pytest.raises(errors.RateLimited):
        f.admit("a", 1)
    f.leave("a", 500)
    f.admit("a", 60)
    with pytest.raises(errors.RateLimited):
        f.admit("a", 41)
    f.admit("a", 40)


async def test_switched_off_nothing_is_refused_or_queued() -> None:
    f = Fairness(slots=1, user_slots=1, user_max_held=1, user_max_held_bytes=1, enabled=False)
    for _ in range(5):
        f.admit("a", 10)
    inside = 0

    async def one() -> None:
        nonlocal inside
        async with f.turn("a"):
            inside += 1
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(one()) for _ in range(3)]
    await asyncio.sleep(0)
    assert inside == 3
    await asyncio.gather(*tasks)
