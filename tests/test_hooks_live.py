"""Relation hooks followed live through the real daemon, stopped and resumed midway."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from client.hook_stream import HookStream
from client.hooks import BROKEN, JOINED, Hook, follow_hooks
from client.rpc import RelationClient
from tests.domain import charm
from tests.test_hooks import EXPECTED, realistic_life


class BrokerDomain:
    """The Domain helpers of tests/domain.py, sent through the broker instead of the applier."""

    def __init__(self, client: RelationClient, model: str) -> None:
        self.client = client
        self.model = model

    async def run(self, body: dict[str, Any]) -> Any:
        return await self.client.call({**body, "model": self.model})

    async def deploy(self, app: str, units: int = 0) -> Any:
        return await self.run({"type": "deploy", "application": app, "charm": charm(app), "units": units})

    async def integrate(self, a: str, b: str) -> Any:
        return await self.run({"type": "integrate", "endpoints": [a, b]})


def _short(hooks: list[Hook]) -> list[tuple[str, int, str]]:
    return [(h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in hooks]


async def _take(
    url: str,
    model: str,
    unit: str,
    n: int,
    after: tuple[int, int] | None = (0, 0),
    state: dict[str, Any] | None = None,
) -> list[Hook]:
    """The first ``n`` hooks: by default the whole log's (from position 0.0)."""
    out: list[Hook] = []
    stream = follow_hooks(url, model, unit, after=None if state else after, state=state, timeout=15)
    try:
        async for hook in stream:
            out.append(hook)
            if len(out) == n:
                break
    finally:
        await stream.aclose()
    return out


async def test_hooks_follow_live_and_resume_midway_without_repeats_or_gaps(
    client: RelationClient, amqp_url: str
) -> None:
    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    expected = EXPECTED["wordpress/0"]
    half = len(expected) // 2
    # The follower starts before anything happens and sees the first half live.
    first = asyncio.create_task(_take(amqp_url, model, "wordpress/0", half))
    await asyncio.sleep(0.5)
    await realistic_life(BrokerDomain(client, model))  # type: ignore[arg-type]
    seen = await asyncio.wait_for(first, 30)
    # A new consumer resumes from the last hook handled.
    rest = await asyncio.wait_for(
        _take(amqp_url, model, "wordpress/0", len(expected) - half, after=seen[-1].position), 30
    )
    assert _short(seen + rest) == expected
    positions = [h.position for h in seen + rest]
    assert positions == sorted(set(positions))


async def test_each_unit_follows_its_own_hooks(client: RelationClient, amqp_url: str) -> None:
    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    await realistic_life(BrokerDomain(client, model))  # type: ignore[arg-type]
    for unit in ("mysql/1", "telegraf/0"):
        hooks = await asyncio.wait_for(_take(amqp_url, model, unit, len(EXPECTED[unit])), 30)
        assert _short(hooks) == EXPECTED[unit], unit


async def _relctl_lines(amqp_url: str, model: str, *args: str, stop_after: int) -> list[str]:
    """Run `relctl hooks` and SIGKILL it once it has printed ``stop_after`` lines."""
    import os
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "relctl"
    proc = await asyncio.create_subprocess_exec(
        str(script), "--amqp-url", amqp_url, "-m", model, "--json", "hooks", *args,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.stdout is not None
    out: list[str] = []
    try:
        while len(out) < stop_after:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "relctl hooks ended early"
            out.append(line.decode())
    finally:
        proc.kill()
        await proc.wait()
    return out


async def test_relctl_hooks_killed_and_resumed_from_its_last_position(
    client: RelationClient, amqp_url: str
) -> None:
    import json

    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    await realistic_life(BrokerDomain(client, model))  # type: ignore[arg-type]
    expected = EXPECTED["mysql/0"]
    first = [
        json.loads(x) for x in await _relctl_lines(amqp_url, model, "mysql/0", "--from", "0", stop_after=3)
    ]
    resume = f"{first[-1]['seq']}.{first[-1]['index']}"
    rest = [
        json.loads(x)
        for x in await _relctl_lines(
            amqp_url, model, "mysql/0", "--from", resume, stop_after=len(expected) - 3
        )
    ]
    got = [(h["hook"], h["relation_id"], h["remote_unit"] or h["remote_app"]) for h in first + rest]
    assert got == expected


async def test_a_hook_stream_resumed_from_its_state_goes_on_exactly(
    client: RelationClient, amqp_url: str
) -> None:
    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    await realistic_life(BrokerDomain(client, model))  # type: ignore[arg-type]
    expected = EXPECTED["wordpress/0"]
    first = await asyncio.wait_for(_take(amqp_url, model, "wordpress/0", 4), 30)
    saved = json.loads(json.dumps(first[-1].state))  # as a file would give it back
    rest = await asyncio.wait_for(_take(amqp_url, model, "wordpress/0", len(expected) - 4, state=saved), 30)
    assert _short(first + rest) == expected


async def _relctl_hooks(amqp_url: str, model: str, *args: str) -> list[dict[str, Any]]:
    """`relctl --json hooks ARGS` run to its end (give --count)."""
    import os
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "relctl"
    proc = await asyncio.create_subprocess_exec(
        str(script), "--amqp-url", amqp_url, "-m", model, "--json", "hooks", *args,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_relctl_hooks_with_a_state_file_starts_new_then_resumes_where_it_stopped(
    client: RelationClient, amqp_url: str, tmp_path: Any
) -> None:
    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    d = BrokerDomain(client, model)
    await d.deploy("mysql", units=1)
    await d.deploy("wordpress", units=1)
    db = await d.integrate("wordpress", "mysql")
    state = tmp_path / "mysql-0.json"
    # A new agent: its snapshot (its peer relation and relation 2), then it stops.
    first = await _relctl_hooks(amqp_url, model, "mysql/0", "--state", str(state), "--count", "2")
    assert [(h["hook"], h["relation_id"]) for h in first] == [
        ("relation-created", 0),
        ("relation-created", db["id"]),
    ]
    assert json.loads(state.read_text())["position"] == [first[-1]["seq"], first[-1]["index"]]
    for unit in ("wordpress/0", "mysql/0"):
        await d.run({"type": "enter_scope", "relation": db["id"], "unit": unit})
    rest = await _relctl_hooks(amqp_url, model, "mysql/0", "--state", str(state), "--count", "2")
    assert [(h["hook"], h["remote_unit"]) for h in rest] == [
        ("relation-joined", "wordpress/0"),
        ("relation-changed", "wordpress/0"),
    ]


async def test_relctl_snapshot_shows_a_units_view_and_position(client: RelationClient, amqp_url: str) -> None:
    import os
    import sys
    from pathlib import Path

    from contracts.snapshot import ModelSnapshot

    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    d = BrokerDomain(client, model)
    await d.deploy("mysql", units=1)
    await d.deploy("wordpress", units=1)
    db = await d.integrate("wordpress", "mysql")
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/0", "settings": {"h": "1"}})
    script = Path(sys.executable).parent / "relctl"
    proc = await asyncio.create_subprocess_exec(
        str(script), "--amqp-url", amqp_url, "-m", model, "--json", "snapshot", "wordpress/0",
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    snap = ModelSnapshot.model_validate_json(out)
    assert snap.unit == "wordpress/0" and snap.seq == (await client.events_after(model))[-1].seq
    rel = next(r for r in snap.relations if r.id == db["id"])
    assert rel.in_scope is False and [u.name for u in rel.units] == ["mysql/0"]


async def test_a_state_further_behind_than_max_replay_resumes_from_the_snapshot(
    client: RelationClient, amqp_url: str
) -> None:
    """Past ``max_replay`` events the stream reads the unit's snapshot instead of replaying the log:
    the hooks for the difference, without the joins and departures made meanwhile."""
    model = f"hooks-{uuid.uuid4().hex[:8]}"
    await client.call({"type": "create_model", "name": model})
    await realistic_life(BrokerDomain(client, model))  # type: ignore[arg-type]
    first = await asyncio.wait_for(_take(amqp_url, model, "wordpress/0", 4), 30)
    assert _short(first) == EXPECTED["wordpress/0"][:4]
    stream = HookStream(amqp_url, model, "wordpress/0", state=first[-1].state, timeout=15, max_replay=0)
    rest: list[Hook] = []
    hooks = aiter(stream)
    try:
        while True:
            try:
                rest.append(await asyncio.wait_for(anext(hooks), 5))
            except TimeoutError:
                break
    finally:
        await stream.close()
    assert stream.resyncs == 1
    short = _short(rest)
    assert short[-1] == (BROKEN, 2, "mysql")
    assert (JOINED, 2, "mysql/1") not in short  # replayed, the log would have joined it
