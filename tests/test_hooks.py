"""Relation hooks derived from change events, per unit, in Juju's uniter order (no broker)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.hooks import BROKEN, CHANGED, CREATED, DEPARTED, JOINED, UnitHooks
from tests.domain import CommandFailed, Domain


async def realistic_life(d: Domain) -> None:
    """wordpress + mysql + a telegraf subordinate: integrate, scope, settings, leader, removal."""
    await d.deploy("mysql", units=2)
    await d.deploy("wordpress", units=1)
    await d.deploy("telegraf")
    db = await d.integrate("wordpress", "mysql")
    sub = await d.integrate("telegraf:juju-info", "wordpress")
    await d.run(
        {"type": "enter_scope", "relation": db["id"], "unit": "wordpress/0", "settings": {"database": "wp"}}
    )
    await d.run({"type": "enter_scope", "relation": sub["id"], "unit": "wordpress/0"})
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/0", "settings": {"host": "db0"}})
    await d.run({"type": "enter_scope", "relation": sub["id"], "unit": "telegraf/0"})
    await d.run(
        {
            "type": "set_unit_settings",
            "relation": db["id"],
            "unit": "mysql/0",
            "settings": {"host": "db0.lan"},
        }
    )
    await d.run(
        {
            "type": "set_unit_settings",
            "relation": db["id"],
            "unit": "mysql/0",
            "settings": {"host": "db0.lan"},
        }
    )
    await d.run(
        {
            "type": "set_application_settings",
            "relation": db["id"],
            "unit": "mysql/0",
            "settings": {"password": "s"},
        }
    )
    await d.run({"type": "set_leader", "unit": "mysql/1"})
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/1"})
    await d.run(
        {
            "type": "set_application_settings",
            "relation": db["id"],
            "unit": "mysql/1",
            "settings": {"password": "t"},
        }
    )
    await d.run({"type": "remove_relation", "relation": db["id"]})
    await d.run({"type": "leave_scope", "relation": db["id"], "unit": "mysql/0"})
    await d.run({"type": "leave_scope", "relation": db["id"], "unit": "mysql/1"})
    await d.run({"type": "leave_scope", "relation": db["id"], "unit": "wordpress/0"})


EXPECTED = {
    "wordpress/0": [
        (CREATED, 1, "wordpress"),  # its peer relation
        (CREATED, 2, "mysql"),
        (CREATED, 3, "telegraf"),
        (JOINED, 2, "mysql/0"),
        (CHANGED, 2, "mysql/0"),  # settings written on entry: part of the first changed
        (JOINED, 3, "telegraf/0"),
        (CHANGED, 3, "telegraf/0"),
        (CHANGED, 2, "mysql/0"),  # the second, identical write emits nothing
        (CHANGED, 2, "mysql"),  # remote application settings
        (JOINED, 2, "mysql/1"),
        (CHANGED, 2, "mysql/1"),
        (CHANGED, 2, "mysql"),
        (DEPARTED, 2, "mysql/0"),
        (DEPARTED, 2, "mysql/1"),
        (BROKEN, 2, "mysql"),
    ],
    "mysql/0": [
        (CREATED, 0, "mysql"),
        (CREATED, 2, "wordpress"),
        (JOINED, 2, "wordpress/0"),
        (CHANGED, 2, "wordpress/0"),
        (CHANGED, 2, "mysql"),  # its own application's settings, while it leads
        (DEPARTED, 2, "wordpress/0"),
        (BROKEN, 2, "wordpress"),
    ],
    "mysql/1": [
        (CREATED, 0, "mysql"),
        (CREATED, 2, "wordpress"),
        (JOINED, 2, "wordpress/0"),
        (CHANGED, 2, "wordpress/0"),
        (CHANGED, 2, "mysql"),  # leader by then
        (DEPARTED, 2, "wordpress/0"),
        (BROKEN, 2, "wordpress"),
    ],
    "telegraf/0": [
        (CREATED, 3, "wordpress"),
        (JOINED, 3, "wordpress/0"),
        (CHANGED, 3, "wordpress/0"),
    ],
}


def _short(hooks: Any) -> list[tuple[str, int, str]]:
    return [(h.hook, h.relation_id, h.remote_unit or h.remote_app) for h in hooks]


async def test_each_unit_sees_the_exact_hook_sequence(domain: Domain) -> None:
    await realistic_life(domain)
    events = await domain.events()
    for unit, expected in EXPECTED.items():
        assert _short(UnitHooks(unit).run(events)) == expected, unit


async def test_resuming_after_any_hook_neither_repeats_nor_skips(domain: Domain) -> None:
    await realistic_life(domain)
    events = await domain.events()
    for unit, expected in EXPECTED.items():
        full = list(UnitHooks(unit).run(events))
        for cut in range(len(full)):
            resumed = list(UnitHooks(unit).run(events, after=full[cut].position))
            assert full[: cut + 1] + resumed == full, (unit, cut)
        assert _short(full) == expected


async def test_subordinate_sees_only_its_principal_across_a_container_relation(domain: Domain) -> None:
    d = domain
    await d.deploy("wordpress", units=2)
    await d.deploy("telegraf")
    sub = await d.integrate("telegraf:juju-info", "wordpress")
    for unit in ("wordpress/0", "wordpress/1"):
        await d.run({"type": "enter_scope", "relation": sub["id"], "unit": unit})
    for unit in ("telegraf/0", "telegraf/1"):
        await d.run({"type": "enter_scope", "relation": sub["id"], "unit": unit})
    events = await d.events()
    assert _short(UnitHooks("telegraf/1").run(events)) == [
        (CREATED, sub["id"], "wordpress"),
        (JOINED, sub["id"], "wordpress/1"),
        (CHANGED, sub["id"], "wordpress/1"),
    ]
    assert _short(UnitHooks("wordpress/0").run(events))[-2:] == [
        (JOINED, sub["id"], "telegraf/0"),
        (CHANGED, sub["id"], "telegraf/0"),
    ]


async def test_application_settings_of_its_own_application_reach_only_the_leader(domain: Domain) -> None:
    d = domain
    await d.deploy("mysql", units=2)
    await d.deploy("wordpress", units=1)
    db = await d.integrate("wordpress", "mysql")
    for unit in ("mysql/0", "mysql/1", "wordpress/0"):
        await d.run({"type": "enter_scope", "relation": db["id"], "unit": unit})
    seq = await d.last_seq()
    await d.run(
        {"type": "set_application_settings", "relation": db["id"], "unit": "mysql/0", "settings": {"a": "1"}}
    )
    events = await d.events()
    after = (seq, 10**6)
    assert _short(UnitHooks("mysql/0").run(events, after)) == [(CHANGED, db["id"], "mysql")]
    assert _short(UnitHooks("mysql/1").run(events, after)) == []
    assert _short(UnitHooks("wordpress/0").run(events, after)) == [(CHANGED, db["id"], "mysql")]


# ---- property: Juju's ordering rules hold for every unit over random command sequences --------

APPS = {
    "db": (
        {"provides": {"db": {"interface": "sql", "limit": 3}}, "peers": {"ring": {"interface": "ring"}}},
        2,
    ),
    "web": ({"requires": {"db": {"interface": "sql"}}}, 2),
    "agent": (
        {"subordinate": True, "requires": {"host": {"interface": "juju-info", "scope": "container"}}},
        0,
    ),
}
UNITS = ["db/0", "db/1", "db/2", "web/0", "web/1", "web/2", "agent/0", "agent/1"]

step = st.one_of(
    st.tuples(st.just("integrate"), st.sampled_from([("web", "db"), ("agent", "web"), ("agent", "db")])),
    st.tuples(st.just("enter"), st.integers(0, 5), st.sampled_from(UNITS), st.booleans()),
    st.tuples(st.just("leave"), st.integers(0, 5), st.sampled_from(UNITS)),
    st.tuples(st.just("unit_settings"), st.integers(0, 5), st.sampled_from(UNITS), st.sampled_from("xyz")),
    st.tuples(st.just("app_settings"), st.integers(0, 5), st.sampled_from(UNITS), st.sampled_from("xyz")),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("leader"), st.sampled_from(UNITS)),
    st.tuples(st.just("add_unit"), st.sampled_from(["db", "web"])),
)


async def _apply_step(d: Domain, s: tuple[Any, ...]) -> None:
    kind = s[0]
    bodies = {
        "integrate": lambda: {"type": "integrate", "endpoints": list(s[1])},
        "enter": lambda: {
            "type": "enter_scope",
            "relation": s[1],
            "unit": s[2],
            **({"settings": {"k": "v"}} if s[3] else {}),
        },
        "leave": lambda: {"type": "leave_scope", "relation": s[1], "unit": s[2]},
        "unit_settings": lambda: {
            "type": "set_unit_settings",
            "relation": s[1],
            "unit": s[2],
            "settings": {"k": s[3]},
        },
        "app_settings": lambda: {
            "type": "set_application_settings",
            "relation": s[1],
            "unit": s[2],
            "settings": {"k": s[3]},
        },
        "remove": lambda: {"type": "remove_relation", "relation": s[1]},
        "leader": lambda: {"type": "set_leader", "unit": s[1]},
        "add_unit": lambda: {"type": "add_units", "application": s[1]},
    }
    try:
        await d.run(bodies[kind]())
    except CommandFailed:
        pass  # refusals are part of a random walk; they emit nothing


def check_uniter_order(unit: str, hooks: list[Any]) -> None:
    created: set[int] = set()
    broken: set[int] = set()
    joined: dict[int, set[str]] = {}
    for h in hooks:
        rid, remote = h.relation_id, h.remote_unit
        assert rid not in broken, f"{unit}: {h.hook} after relation-broken on {rid}"
        if h.hook == CREATED:
            assert rid not in created
            created.add(rid)
            continue
        assert rid in created, f"{unit}: {h.hook} before relation-created on {rid}"
        members = joined.setdefault(rid, set())
        if h.hook == JOINED:
            assert remote not in members, f"{unit}: joined {remote} twice"
            members.add(remote)  # type: ignore[arg-type]
        elif h.hook == CHANGED and remote is not None:
            assert remote in members, f"{unit}: changed for {remote} before joined"
        elif h.hook == DEPARTED:
            assert remote in members, f"{unit}: departed {remote} without joined"
            members.discard(remote)  # type: ignore[arg-type]
        elif h.hook == BROKEN:
            assert not members, f"{unit}: broken with {members} not departed"
            broken.add(rid)
        if remote is not None:
            assert remote != unit and remote.rpartition("/")[0] == h.remote_app


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=5, max_size=30))
async def test_hook_order_holds_for_every_unit(pool: Any, steps: list[tuple[Any, ...]]) -> None:
    d = Domain(pool)
    await d.new_model()
    for app, (meta, units) in APPS.items():
        await d.deploy(app, metadata=meta, units=units)
    for s in steps:
        await _apply_step(d, s)
    events = await d.events()
    apps = await d.run({"type": "list_applications"})
    for unit in [u for a in apps for u in a["units"]] + ["agent/0"]:
        hooks = list(UnitHooks(unit).run(events))
        check_uniter_order(unit, hooks)
        # Resuming from the middle gives the same tail.
        if hooks:
            mid = hooks[len(hooks) // 2]
            assert list(UnitHooks(unit).run(events, after=mid.position)) == hooks[len(hooks) // 2 + 1 :]
