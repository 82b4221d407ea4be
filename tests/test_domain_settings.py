"""Unit and application settings: merge writes, leader-only application bags, reads, hashes, size."""

from __future__ import annotations

from typing import Any

import pytest

from handlers import settings_bag
from handlers.context import Limits
from tests.domain import CommandFailed, Domain


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


@pytest.fixture
async def rel(domain: Domain) -> int:
    """wordpress (2 units, leader wordpress/0) and mysql (2 units, leader mysql/0), related, all in scope."""
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=2)
    relation = await domain.integrate("wordpress", "mysql")
    for unit in ("wordpress/0", "wordpress/1", "mysql/0", "mysql/1"):
        await domain.run({"type": "enter_scope", "relation": relation["id"], "unit": unit})
    return int(relation["id"])


@pytest.fixture
def small_bags(domain: Domain) -> int:
    """Bags limited to 64 bytes for this test's commands."""
    domain.limits = Limits(max_bag_bytes=64)
    return 64


async def set_unit(domain: Domain, relation: int, unit: str, settings: dict[str, str]) -> Any:
    return await domain.run(
        {"type": "set_unit_settings", "relation": relation, "unit": unit, "settings": settings}
    )


async def set_app(domain: Domain, relation: int, unit: str, settings: dict[str, str]) -> Any:
    return await domain.run(
        {"type": "set_application_settings", "relation": relation, "unit": unit, "settings": settings}
    )


async def get_unit(domain: Domain, relation: int, unit: str, as_unit: str | None = None) -> Any:
    body: dict[str, Any] = {"type": "get_unit_settings", "relation": relation, "unit": unit}
    if as_unit:
        body["as_unit"] = as_unit
    return await domain.run(body)


async def get_app(domain: Domain, relation: int, application: str, as_unit: str | None = None) -> Any:
    body: dict[str, Any] = {
        "type": "get_application_settings",
        "relation": relation,
        "application": application,
    }
    if as_unit:
        body["as_unit"] = as_unit
    return await domain.run(body)


# ---- unit settings --------------------------------------------------------------------------


async def test_unit_settings_write_merges_into_the_bag(domain: Domain, rel: int) -> None:
    await set_unit(domain, rel, "mysql/0", {"host": "10.0.0.5", "port": "3306"})
    seq = await domain.last_seq()

    result = await set_unit(domain, rel, "mysql/0", {"port": "3307", "user": "wp"})

    assert result == {
        "changed": True,
        "hash": settings_bag.bag_hash({"host": "10.0.0.5", "port": "3307", "user": "wp"}),
    }
    assert await get_unit(domain, rel, "mysql/0") == {"host": "10.0.0.5", "port": "3307", "user": "wp"}
    events = await domain.events(seq)
    assert [(e["namespace"], e["kind"]) for e in events] == [("relation_unit_setting", "changed")]
    assert events[0]["key"]["unit"] == "mysql/0"
    assert events[0]["key"]["relation_id"] == rel
    assert events[0]["payload"] == {"hash": result["hash"]}


async def test_an_empty_value_deletes_a_key(domain: Domain, rel: int) -> None:
    await set_unit(domain, rel, "mysql/0", {"host": "10.0.0.5", "port": "3306"})

    result = await set_unit(domain, rel, "mysql/0", {"port": ""})

    assert result["changed"] is True
    assert await get_unit(domain, rel, "mysql/0") == {"host": "10.0.0.5"}


async def test_a_unit_settings_write_that_changes_nothing_emits_no_event(domain: Domain, rel: int) -> None:
    first = await set_unit(domain, rel, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    same = await set_unit(domain, rel, "mysql/0", {"host": "10.0.0.5"})
    delete_absent = await set_unit(domain, rel, "mysql/0", {"nothing": ""})
    empty = await set_unit(domain, rel, "mysql/0", {})

    assert same == delete_absent == empty == {"changed": False, "hash": first["hash"]}
    assert await domain.events_since(seq) == []


async def test_writing_to_an_empty_bag_only_deletions_changes_nothing(domain: Domain, rel: int) -> None:
    seq = await domain.last_seq()

    result = await set_unit(domain, rel, "mysql/1", {"gone": ""})

    assert result == {"changed": False, "hash": settings_bag.bag_hash({})}
    assert await domain.events_since(seq) == []


async def test_unit_settings_need_the_unit_in_scope(domain: Domain, rel: int) -> None:
    """Writes need the unit in scope; reads of a unit that never entered are refused alike (a
    unit that left is read from its archive: tests/test_domain_departed.py)."""
    await domain.run({"type": "leave_scope", "relation": rel, "unit": "mysql/1"})
    await domain.run({"type": "add_units", "application": "mysql"})

    writing = await refused(set_unit(domain, rel, "mysql/1", {"a": "1"}))
    never_entered = await refused(get_unit(domain, rel, "mysql/2"))

    assert writing.code == never_entered.code == "RelationUnitNotFound"
    assert await get_unit(domain, rel, "mysql/1") == {}


async def test_unit_settings_of_a_unit_outside_the_relation_are_refused(domain: Domain, rel: int) -> None:
    await domain.deploy("postgresql", units=1)

    writing = await refused(set_unit(domain, rel, "postgresql/0", {"a": "1"}))
    reading = await refused(get_unit(domain, rel, "mysql/0", as_unit="postgresql/0"))

    assert writing.code == reading.code == "UnitNotInRelation"


async def test_unit_settings_of_unknown_things_are_refused(domain: Domain, rel: int) -> None:
    no_relation = await refused(set_unit(domain, 99, "mysql/0", {"a": "1"}))
    no_unit = await refused(set_unit(domain, rel, "mysql/9", {"a": "1"}))
    no_reader = await refused(get_unit(domain, rel, "mysql/0", as_unit="wordpress/9"))

    assert no_relation.code == "RelationNotFound"
    assert no_unit.code == no_reader.code == "UnitNotFound"


async def test_units_of_either_side_read_unit_settings(domain: Domain, rel: int) -> None:
    await set_unit(domain, rel, "mysql/1", {"host": "10.0.0.6"})

    other_side = await get_unit(domain, rel, "mysql/1", as_unit="wordpress/1")
    same_side = await get_unit(domain, rel, "mysql/1", as_unit="mysql/0")

    assert other_side == same_side == {"host": "10.0.0.6"}


async def test_an_oversize_unit_settings_bag_is_refused(domain: Domain, rel: int, small_bags: int) -> None:
    await set_unit(domain, rel, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    err = await refused(set_unit(domain, rel, "mysql/0", {"blob": "x" * small_bags}))

    assert err.code == "PayloadTooLarge"
    assert f"limit is {small_bags}" in err.message
    assert await get_unit(domain, rel, "mysql/0") == {"host": "10.0.0.5"}
    assert await domain.events_since(seq) == []


async def test_a_bag_under_the_limit_after_a_deletion_is_accepted(
    domain: Domain, rel: int, small_bags: int
) -> None:
    await set_unit(domain, rel, "mysql/0", {"blob": "x" * 40})

    result = await set_unit(domain, rel, "mysql/0", {"blob": "", "other": "y" * 40})

    assert result["changed"] is True


async def test_oversize_settings_on_entering_scope_are_refused(
    domain: Domain, rel: int, small_bags: int
) -> None:
    await domain.run({"type": "leave_scope", "relation": rel, "unit": "mysql/1"})

    err = await refused(
        domain.run({"type": "enter_scope", "relation": rel, "unit": "mysql/1", "settings": {"b": "x" * 100}})
    )

    assert err.code == "PayloadTooLarge"
    assert "mysql/1" not in await domain.run({"type": "relation_units", "relation": rel})


# ---- application settings -------------------------------------------------------------------


async def test_the_leader_writes_its_application_settings(domain: Domain, rel: int) -> None:
    seq = await domain.last_seq()

    result = await set_app(domain, rel, "mysql/0", {"database": "wp", "password": "s3cret"})

    assert result["changed"] is True
    events = await domain.events(seq)
    assert [(e["namespace"], e["kind"]) for e in events] == [("relation_application_setting", "changed")]
    assert events[0]["key"]["application"] == "mysql"
    assert events[0]["payload"] == {"hash": result["hash"]}
    assert "s3cret" not in str(events[0])
    assert await get_app(domain, rel, "mysql") == {"database": "wp", "password": "s3cret"}


async def test_a_non_leader_cannot_write_application_settings(domain: Domain, rel: int) -> None:
    seq = await domain.last_seq()

    err = await refused(set_app(domain, rel, "mysql/1", {"database": "wp"}))

    assert err.code == "NotLeader"
    assert "mysql/1" in err.message
    assert await domain.events_since(seq) == []
    assert await get_app(domain, rel, "mysql") == {}


async def test_application_settings_merge_and_delete_like_unit_settings(domain: Domain, rel: int) -> None:
    await set_app(domain, rel, "mysql/0", {"database": "wp", "user": "wp"})
    seq = await domain.last_seq()

    await set_app(domain, rel, "mysql/0", {"user": "", "host": "db"})
    unchanged = await set_app(domain, rel, "mysql/0", {"host": "db"})

    assert unchanged["changed"] is False
    assert await domain.events_since(seq) == [("relation_application_setting", "changed")]
    assert await get_app(domain, rel, "mysql") == {"database": "wp", "host": "db"}


async def test_the_leader_reads_its_own_application_settings(domain: Domain, rel: int) -> None:
    await set_app(domain, rel, "mysql/0", {"database": "wp"})

    assert await get_app(domain, rel, "mysql", as_unit="mysql/0") == {"database": "wp"}


async def test_a_non_leader_cannot_read_its_own_application_settings(domain: Domain, rel: int) -> None:
    await set_app(domain, rel, "mysql/0", {"database": "wp"})

    err = await refused(get_app(domain, rel, "mysql", as_unit="mysql/1"))

    assert err.code == "NotLeader"


async def test_any_unit_of_the_other_side_reads_application_settings(domain: Domain, rel: int) -> None:
    await set_app(domain, rel, "mysql/0", {"database": "wp"})

    assert await get_app(domain, rel, "mysql", as_unit="wordpress/1") == {"database": "wp"}
    assert await get_app(domain, rel, "mysql", as_unit="wordpress/0") == {"database": "wp"}


async def test_leadership_moves_the_right_to_write(domain: Domain, rel: int) -> None:
    await domain.run({"type": "set_leader", "unit": "mysql/1"})

    old = await refused(set_app(domain, rel, "mysql/0", {"database": "wp"}))
    new = await set_app(domain, rel, "mysql/1", {"database": "wp"})

    assert old.code == "NotLeader"
    assert new["changed"] is True


async def test_peers_read_their_own_application_bag_in_a_peer_relation(domain: Domain) -> None:
    deployed = await domain.deploy("mysql", units=2)
    peer = deployed["peer_relations"][0]["id"]
    await set_app(domain, peer, "mysql/0", {"primary": "mysql/0"})

    read = await get_app(domain, peer, "mysql", as_unit="mysql/1")
    write = await refused(set_app(domain, peer, "mysql/1", {"primary": "mysql/1"}))

    assert read == {"primary": "mysql/0"}
    assert write.code == "NotLeader"


async def test_application_settings_of_an_application_outside_the_relation_are_refused(
    domain: Domain, rel: int
) -> None:
    await domain.deploy("postgresql", units=1)

    not_in_relation = await refused(get_app(domain, rel, "postgresql"))
    unknown = await refused(get_app(domain, rel, "ghost"))
    reader_outside = await refused(get_app(domain, rel, "mysql", as_unit="postgresql/0"))
    writer_outside = await refused(set_app(domain, rel, "postgresql/0", {"a": "1"}))

    assert not_in_relation.code == "ApplicationNotFoundForRelation"
    assert unknown.code == "ApplicationNotFound"
    assert reader_outside.code == writer_outside.code == "UnitNotInRelation"


async def test_an_oversize_application_bag_is_refused(domain: Domain, rel: int, small_bags: int) -> None:
    err = await refused(set_app(domain, rel, "mysql/0", {"k": "v" * 100}))

    assert err.code == "PayloadTooLarge"
    assert await get_app(domain, rel, "mysql") == {}


async def test_oversize_initial_settings_refuse_the_integrate(domain: Domain, small_bags: int) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")

    err = await refused(domain.integrate("wordpress", "mysql", mysql={"k": "v" * 100}))

    assert err.code == "PayloadTooLarge"
    assert [r["key"] for r in await domain.run({"type": "list_relations"})] == [
        "wordpress:loadbalancer",
        "mysql:cluster",
    ]


async def test_a_unit_still_in_scope_of_a_dying_relation_may_write_its_settings(
    domain: Domain, rel: int
) -> None:
    await domain.run({"type": "remove_relation", "relation": rel})
    seq = await domain.last_seq()

    unit = await set_unit(domain, rel, "wordpress/1", {"bye": "1"})
    app = await set_app(domain, rel, "mysql/0", {"bye": "1"})

    assert unit["changed"] is app["changed"] is True
    assert await domain.events_since(seq) == [
        ("relation_unit_setting", "changed"),
        ("relation_application_setting", "changed"),
    ]
