"""A relation-departed hook reads the departed unit's settings, as a charm's does in Juju: the hook
stream is fed the log as it grows, and each departed hook's read happens when it would run."""

from __future__ import annotations

from typing import Any

from client.hooks import BROKEN, CHANGED, CREATED, DEPARTED, JOINED, Hook, UnitHooks
from tests.domain import Domain


class LiveUnit:
    """One unit's hooks, derived from the events committed so far, as a unit agent follows them."""

    def __init__(self, domain: Domain, unit: str) -> None:
        self.domain, self.machine, self.seen = domain, UnitHooks(unit), 0

    async def new_hooks(self) -> list[Hook]:
        events = await self.domain.events(self.seen)
        if events:
            self.seen = events[-1]["seq"]
        return [hook for event in events for hook in self.machine.apply(event)]


async def test_a_departed_hook_reads_the_departed_units_last_settings(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=2)
    rel = int((await domain.integrate("wordpress", "mysql"))["id"])
    wp = LiveUnit(domain, "wordpress/0")

    async def run(body: dict[str, Any]) -> list[Hook]:
        await domain.run(body | {"relation": rel})
        return await wp.new_hooks()

    async def read_in_hook(hook: Hook) -> Any:
        assert hook.remote_unit is not None
        return await domain.run(
            {"type": "get_unit_settings", "relation": rel, "unit": hook.remote_unit, "as_unit": "wordpress/0"}
        )

    await run({"type": "enter_scope", "unit": "wordpress/0"})
    await run({"type": "enter_scope", "unit": "mysql/0", "settings": {"host": "db0"}})
    await run({"type": "enter_scope", "unit": "mysql/1", "settings": {"host": "db1"}})
    await run({"type": "set_unit_settings", "unit": "mysql/0", "settings": {"port": "3306"}})

    # mysql/0 leaves scope: its departed hook reads what it last wrote.
    left = await run({"type": "leave_scope", "unit": "mysql/0"})
    # mysql/1 is removed: dying while in scope, then it leaves and is removed in one command.
    await domain.run({"type": "remove_unit", "unit": "mysql/1"})
    removed = await run({"type": "leave_scope", "unit": "mysql/1"})
    broken = await run({"type": "remove_relation"})

    assert [(h.hook, h.remote_unit) for h in left] == [(DEPARTED, "mysql/0")]
    assert await read_in_hook(left[0]) == {"host": "db0", "port": "3306"}
    assert [(h.hook, h.remote_unit) for h in removed] == [(DEPARTED, "mysql/1")]
    assert await read_in_hook(removed[0]) == {"host": "db1"}
    assert [(h.hook, h.remote_unit) for h in broken] == [(BROKEN, None)]
    # The same hooks as before the archive: replaying the whole log derives them again.
    replay = UnitHooks("wordpress/0")
    hooks = [
        (h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in replay.run(await domain.events())
    ]
    assert [h for h in hooks if h[1] == rel] == [
        (CREATED, rel, "mysql"),
        (JOINED, rel, "mysql/0"),
        (CHANGED, rel, "mysql/0"),
        (JOINED, rel, "mysql/1"),
        (CHANGED, rel, "mysql/1"),
        (CHANGED, rel, "mysql/0"),
        (DEPARTED, rel, "mysql/0"),
        (DEPARTED, rel, "mysql/1"),
        (BROKEN, rel, "mysql"),
    ]
