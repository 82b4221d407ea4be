"""Resuming a unit's hooks from its saved state: from the log when it is kept (exactly the hooks
of one uninterrupted stream), from a snapshot when it is not (the same view, the uniter's rules
kept). Random command sequences, random restart points, no broker."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.hooks import Hook, UnitHooks
from contracts.snapshot import ModelSnapshot
from tests.domain import CommandFailed, Domain
from tests.test_hooks import APPS, EXPECTED, _apply_step, check_uniter_order, realistic_life, step


def _restart(
    machine: UnitHooks, position: tuple[int, int] | None, pending: list[Hook]
) -> tuple[UnitHooks, list[Hook]]:
    """What a stopped agent gets back: its state as written to a file, read again."""
    saved = json.loads(json.dumps(machine.to_state(position, pending)))
    return UnitHooks.from_state(saved, machine.unit)


async def test_resuming_from_the_state_after_any_hook_gives_the_rest_of_the_stream(domain: Domain) -> None:
    await realistic_life(domain)
    events = await domain.events()
    for unit in EXPECTED:
        full: list[Hook] = []
        states: list[dict[str, Any]] = []
        machine = UnitHooks(unit)
        for event in events:
            hooks = machine.apply(event)
            for i, hook in enumerate(hooks):
                full.append(hook)
                states.append(json.loads(json.dumps(machine.to_state(hook.position, hooks[i + 1 :]))))
        for cut, state in enumerate(states):
            resumed, pending = UnitHooks.from_state(state, unit)
            rest = pending + list(resumed.run(e for e in events if e["seq"] > resumed.last_seq))
            assert full[: cut + 1] + rest == full, (unit, cut)


async def _snapshot(d: Domain, unit: str) -> ModelSnapshot | None:
    try:
        return ModelSnapshot.model_validate(await d.run({"type": "snapshot", "unit": unit}))
    except CommandFailed as exc:
        if exc.code == "UnitNotFound":
            return None  # not added yet: an agent cannot run
        raise


# Per command: go on; restart from the saved state and the log; restart from the saved state and a
# snapshot (caught up: nothing was missed); stop following until a later command (events missed:
# the restart must come from a snapshot, as when retention deleted them).
ACTIONS = st.sampled_from(["run", "run", "log", "snapshot", "away"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(step, min_size=5, max_size=25),
    plan=st.lists(ACTIONS, min_size=25, max_size=25),
    unit=st.sampled_from(["db/0", "db/1", "web/0", "web/1", "agent/0"]),
    cut=st.integers(0, 3),
)
async def test_restarts_with_state_equal_one_stream_and_lost_events_end_in_the_same_view(
    pool: Any, steps: list[tuple[Any, ...]], plan: list[str], unit: str, cut: int
) -> None:
    d = Domain(pool)
    await d.new_model()
    for app, (meta, units) in APPS.items():
        await d.deploy(app, metadata=meta, units=units)
    reference = UnitHooks(unit)  # one uninterrupted stream
    expected: list[Hook] = []
    agent = UnitHooks(unit)
    got: list[Hook] = []
    position: tuple[int, int] | None = None
    away = lost = False
    for s, action in zip(steps, plan, strict=False):
        await _apply_step(d, s)
        events = await d.events(reference.last_seq)
        for event in events:
            expected += reference.apply(event)
        if away and action == "away":
            continue
        if away:  # back after missing events: only a snapshot can bring the agent up to date
            snap = await _snapshot(d, unit)
            if snap is None:
                continue
            lost = lost or snap.seq > agent.last_seq
            agent, pending = _restart(agent, position, [])
            got += agent.resync(snap, position)
            assert agent.view() == reference.view()
            away = False
            if got:
                position = got[-1].position
            continue
        if action == "away":
            away = True
            continue
        # Stop after the command's hook number `cut` (or after the command): the rest of that
        # hook's event is pending in the state; the agent goes on from the state.
        restarted = action == "run"
        n = 0
        for event in events:
            hooks = agent.apply(event)
            for i, hook in enumerate(hooks):
                got.append(hook)
                position = hook.position
                if not restarted and n == cut:
                    agent, pending = _restart(agent, position, hooks[i + 1 :])
                    assert pending == hooks[i + 1 :]
                    got += pending
                    position = got[-1].position
                    restarted = True
                    break
                n += 1
        if not restarted:
            agent, _ = _restart(agent, position, [])
        if action == "snapshot" and (snap := await _snapshot(d, unit)) is not None:
            assert snap.seq == agent.last_seq
            got += agent.resync(snap, position)
        assert agent.view() == reference.view()
        position = got[-1].position if got else None
    if not away:
        if not lost:
            assert got == expected
        assert agent.view() == reference.view()
    check_uniter_order(unit, got)


async def test_a_resync_runs_exactly_the_hooks_for_what_changed_while_the_agent_was_away(
    domain: Domain,
) -> None:
    d = domain
    await d.deploy("mysql", units=3)
    await d.deploy("wordpress", units=1)
    await d.deploy("telegraf")
    db = await d.integrate("wordpress", "mysql")
    for unit in ("wordpress/0", "mysql/0", "mysql/1"):
        await d.run({"type": "enter_scope", "relation": db["id"], "unit": unit})
    agent = UnitHooks("wordpress/0")
    list(agent.run(await d.events()))
    before = agent.view()
    # Away: one unit's settings change, one leaves, one enters, the remote application's settings
    # change, a new relation appears, and an unchanged write emits nothing.
    await d.run(
        {"type": "set_unit_settings", "relation": db["id"], "unit": "mysql/0", "settings": {"a": "1"}}
    )
    await d.run({"type": "leave_scope", "relation": db["id"], "unit": "mysql/1"})
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/2"})
    await d.run(
        {"type": "set_application_settings", "relation": db["id"], "unit": "mysql/0", "settings": {"p": "s"}}
    )
    sub = await d.integrate("telegraf:juju-info", "wordpress")
    snap = await _snapshot(d, "wordpress/0")
    assert snap is not None
    hooks = agent.resync(snap)
    assert [(h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in hooks] == [
        ("relation-created", sub["id"], "telegraf"),
        ("relation-joined", db["id"], "mysql/2"),
        ("relation-changed", db["id"], "mysql/2"),
        ("relation-changed", db["id"], "mysql/0"),
        ("relation-changed", db["id"], "mysql"),
        ("relation-departed", db["id"], "mysql/1"),
    ]
    assert {h.position for h in hooks} == {(snap.seq, i) for i in range(len(hooks))}
    assert agent.view() != before
    # The relation is removed while away: departed for whoever was joined, then broken.
    await d.run({"type": "remove_relation", "relation": db["id"]})
    for unit in ("mysql/0", "mysql/2", "wordpress/0"):
        await d.run({"type": "leave_scope", "relation": db["id"], "unit": unit})
    snap = await _snapshot(d, "wordpress/0")
    assert snap is not None
    hooks = agent.resync(snap)
    assert [(h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in hooks] == [
        ("relation-departed", db["id"], "mysql/0"),
        ("relation-departed", db["id"], "mysql/2"),
        ("relation-broken", db["id"], "mysql"),
    ]
    assert agent.resync(snap) == []  # nothing twice


async def test_a_new_agent_starts_from_the_snapshot(domain: Domain) -> None:
    await realistic_life(domain)
    snap = await _snapshot(domain, "wordpress/0")
    assert snap is not None
    agent = UnitHooks("wordpress/0")
    hooks = agent.resync(snap)
    # Relation 2 is gone; the peer relation and the subordinate relation remain, and telegraf/0
    # is in scope beside it.
    assert [(h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in hooks] == [
        ("relation-created", 1, "wordpress"),
        ("relation-created", 3, "telegraf"),
        ("relation-joined", 3, "telegraf/0"),
        ("relation-changed", 3, "telegraf/0"),
    ]
    reference = UnitHooks("wordpress/0")
    list(reference.run(await domain.events()))
    assert agent.view() == reference.view()
