"""A unit acting in a relation (enter scope, unit and application settings writes).

When several things are wrong at once the refusal names the first, in a fixed order: relation,
unit, life, membership, scope or leadership, size. A relation named by UUID acts as by id. The
handlers ask the database a fixed, small number of times.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts.commands import COMMAND_ADAPTER
from handlers import Actor, Context, run
from handlers.context import Limits
from handlers.settings_bag import bag_hash
from tests.domain import CommandFailed, Domain, Recording

OVERSIZE = {"k": "x" * 100}


async def refused(domain: Domain, body: dict[str, Any]) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await domain.run(body)
    return info.value


def enter(relation: int | str, unit: str, settings: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "enter_scope", "relation": relation, "unit": unit}
    if settings is not None:
        body["settings"] = settings
    return body


def set_unit(relation: int | str, unit: str, settings: dict[str, str]) -> dict[str, Any]:
    return {"type": "set_unit_settings", "relation": relation, "unit": unit, "settings": settings}


def set_app(relation: int | str, unit: str, settings: dict[str, str]) -> dict[str, Any]:
    return {"type": "set_application_settings", "relation": relation, "unit": unit, "settings": settings}


WRITES = [enter, lambda r, u: set_unit(r, u, {"a": "1"}), lambda r, u: set_app(r, u, {"a": "1"})]


@pytest.fixture
async def rel(domain: Domain) -> int:
    """wordpress and mysql (2 units each, leaders wordpress/0 and mysql/0), related; none in scope."""
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=2)
    return int((await domain.integrate("wordpress", "mysql"))["id"])


@pytest.fixture
def small_bags(domain: Domain) -> None:
    domain.limits = Limits(max_bag_bytes=64)


async def relation_uuid(domain: Domain, relation: int) -> str:
    rels = await domain.run({"type": "list_relations"})
    uuid: str = next(r["uuid"] for r in rels if r["id"] == relation)
    return uuid


# ---- precedence -----------------------------------------------------------------------------


@pytest.mark.parametrize("write", WRITES)
async def test_an_unknown_relation_outranks_an_unknown_unit(domain: Domain, rel: int, write: Any) -> None:
    err = await refused(domain, write(99, "nobody/0"))

    assert (err.code, err.message) == ("RelationNotFound", "relation 99 not found")
    assert err.reply["error"]["details"] == {"relation": 99}


@pytest.mark.parametrize("write", WRITES)
async def test_an_unknown_unit_outranks_a_dying_relation(domain: Domain, rel: int, write: Any) -> None:
    await domain.run(enter(rel, "mysql/0"))
    await domain.run({"type": "remove_relation", "relation": rel})

    err = await refused(domain, write(rel, "mysql/9"))

    assert (err.code, err.message) == ("UnitNotFound", "unit 'mysql/9' not found")
    assert err.reply["error"]["details"] == {"unit": "mysql/9"}


async def test_refusals_name_things_as_the_reads_do(domain: Domain, rel: int) -> None:
    reads = [
        {"type": "get_unit_settings", "relation": 99, "unit": "mysql/0"},
        {"type": "get_unit_settings", "relation": rel, "unit": "mysql/9"},
    ]
    writes = [set_unit(99, "mysql/0", {"a": "1"}), set_app(rel, "mysql/9", {"a": "1"})]

    for read, write in zip(reads, writes, strict=True):
        assert (await refused(domain, write)).reply["error"] == (await refused(domain, read)).reply["error"]


async def test_a_dying_relation_outranks_a_dying_unit(domain: Domain, rel: int) -> None:
    peer = (await domain.run({"type": "list_relations", "application": "wordpress"}))[0]["id"]
    await domain.run(enter(peer, "wordpress/1"))
    await domain.run({"type": "remove_unit", "unit": "wordpress/1"})
    await domain.run(enter(rel, "mysql/0"))
    await domain.run({"type": "remove_relation", "relation": rel})

    err = await refused(domain, enter(rel, "wordpress/1"))

    assert err.code == "CannotEnterScopeNotAlive"
    assert "the relation is dying" in err.message


async def test_a_dying_unit_outranks_not_being_in_the_relation(domain: Domain, rel: int) -> None:
    await domain.deploy("postgresql", units=1)
    peer = (await domain.run({"type": "list_relations", "application": "postgresql"}))[0]["id"]
    await domain.run(enter(peer, "postgresql/0"))
    await domain.run({"type": "remove_unit", "unit": "postgresql/0"})

    err = await refused(domain, enter(rel, "postgresql/0"))

    assert err.code == "CannotEnterScopeNotAlive"
    assert "the unit is dying" in err.message


async def test_not_in_the_relation_outranks_not_in_scope_and_not_leading(domain: Domain, rel: int) -> None:
    await domain.deploy("postgresql", units=2)

    for body in (set_unit(rel, "postgresql/0", {"a": "1"}), set_app(rel, "postgresql/1", {"a": "1"})):
        err = await refused(domain, body)
        assert err.code == "UnitNotInRelation"
        assert err.reply["error"]["details"] == {"unit": body["unit"], "relation_id": rel}


async def test_not_in_scope_outranks_an_oversize_bag(domain: Domain, rel: int, small_bags: None) -> None:
    err = await refused(domain, set_unit(rel, "mysql/1", OVERSIZE))

    assert err.code == "RelationUnitNotFound"


async def test_not_leading_outranks_an_oversize_bag(domain: Domain, rel: int, small_bags: None) -> None:
    err = await refused(domain, set_app(rel, "mysql/1", OVERSIZE))

    assert err.code == "NotLeader"
    assert err.message == (
        "unit 'mysql/1' cannot write application settings: it is not the leader of 'mysql' (leader: mysql/0)"
    )


async def test_the_leader_writes_application_settings_without_being_in_scope(
    domain: Domain, rel: int
) -> None:
    result = await domain.run(set_app(rel, "mysql/0", {"a": "1"}))

    assert result == {"changed": True, "hash": bag_hash({"a": "1"})}


# ---- naming the relation by UUID ------------------------------------------------------------


async def test_a_relation_named_by_uuid_acts_as_by_id(domain: Domain, rel: int) -> None:
    ref = await relation_uuid(domain, rel)
    seq = await domain.last_seq()

    entered = await domain.run(enter(ref, "mysql/0", {"a": "1"}))
    unit_write = await domain.run(set_unit(ref, "mysql/0", {"b": "2"}))
    app_write = await domain.run(set_app(ref, "mysql/0", {"c": "3"}))

    assert entered == {"id": rel, "unit": "mysql/0", "in_scope": True, "created_units": []}
    assert unit_write == {"changed": True, "hash": bag_hash({"a": "1", "b": "2"})}
    assert app_write == {"changed": True, "hash": bag_hash({"c": "3"})}
    events = await domain.events(seq)
    assert [(e["namespace"], e["kind"]) for e in events] == [
        ("relation_unit", "entered"),
        ("relation_status", "changed"),
        ("relation_unit_setting", "changed"),
        ("relation_unit_setting", "changed"),
        ("relation_application_setting", "changed"),
    ]
    assert {e["key"]["relation_id"] for e in events} == {rel}


async def test_an_unknown_relation_uuid_is_named_in_the_refusal(domain: Domain, rel: int) -> None:
    ref = "00000000-0000-4000-8000-000000000000"

    err = await refused(domain, set_unit(ref, "mysql/0", {"a": "1"}))

    assert (err.code, err.message) == ("RelationNotFound", f"relation {ref} not found")


# ---- one write: deletions, updates and the hash together ------------------------------------


async def test_a_write_that_deletes_updates_and_adds_stores_the_merged_bag(domain: Domain, rel: int) -> None:
    await domain.run(enter(rel, "mysql/0", {"a": "1", "b": "1", "keep": "k"}))
    await domain.run(set_app(rel, "mysql/0", {"a": "1", "b": "1", "keep": "k"}))

    unit_write = await domain.run(set_unit(rel, "mysql/0", {"a": "", "b": "2", "c": "3"}))
    app_write = await domain.run(set_app(rel, "mysql/0", {"a": "", "b": "2", "c": "3"}))
    again = await domain.run(set_unit(rel, "mysql/0", {"b": "2", "zzz": ""}))

    merged = {"b": "2", "c": "3", "keep": "k"}
    assert unit_write == app_write == {"changed": True, "hash": bag_hash(merged)}
    assert again == {"changed": False, "hash": bag_hash(merged)}
    unit_bag = await domain.run({"type": "get_unit_settings", "relation": rel, "unit": "mysql/0"})
    app_bag = await domain.run(
        {
            "type": "get_application_settings",
            "relation": rel,
            "application": "mysql",
            "as_unit": "wordpress/0",
        }
    )
    assert unit_bag == app_bag == merged


# ---- round trips ----------------------------------------------------------------------------


async def handler_statements(domain: Domain, body: dict[str, Any]) -> tuple[int, int]:
    """Run one command's handler alone, in a transaction rolled back afterwards: the statements it
    ran and the settings bags it left for the daemon to store with its events."""
    cmd = COMMAND_ADAPTER.validate_python({**body, "model": domain.model})
    async with domain.pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            counting = Recording(conn)
            ctx = Context(counting, Actor.system())
            await run(ctx, cmd)
            return len(counting.statements), len(ctx.bag_stores)
        finally:
            await tr.rollback()


async def test_the_hot_writes_ask_the_database_a_few_times(domain: Domain, rel: int) -> None:
    await domain.run(enter(rel, "mysql/0"))

    # The model lock, the unit in its relation, then the scope row; a bag written is stored
    # later, with the command's events.
    assert await handler_statements(domain, enter(rel, "mysql/1")) == (3, 0)
    assert await handler_statements(domain, enter(rel, "mysql/1", {"a": "1"})) == (3, 1)
    # Already in scope: no scope row, but its bag is read to be replaced.
    assert await handler_statements(domain, enter(rel, "mysql/0", {"a": "1"})) == (3, 1)
    # A settings write reads its bag with the unit in its relation.
    assert await handler_statements(domain, set_unit(rel, "mysql/0", {"a": "1"})) == (2, 1)
    assert await handler_statements(domain, set_app(rel, "mysql/0", {"a": "1"})) == (2, 1)
    # A write that changes nothing stops after that read, with nothing to store.
    assert await handler_statements(domain, set_unit(rel, "mysql/0", {"a": ""})) == (2, 0)
