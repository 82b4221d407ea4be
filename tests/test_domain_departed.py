"""A departed unit's settings stay readable until the relation is removed (Juju 4.x archives them
on leave scope; 3.x keeps the document): not in scope, archived, replaced by entering again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import Domain, enter, leave, refused


async def read(domain: Domain, relation: int, unit: str, as_unit: str | None = None) -> Any:
    body: dict[str, Any] = {"type": "get_unit_settings", "relation": relation, "unit": unit}
    if as_unit is not None:
        body["as_unit"] = as_unit
    return await domain.run(body)


async def archived_rows(domain: Domain) -> int:
    async with domain.pool.acquire() as conn:
        n: int = await conn.fetchval(
            "SELECT (SELECT count(*) FROM relation_unit_archive WHERE model_uuid = $1)"
            " + (SELECT count(*) FROM relation_unit_setting_archive WHERE model_uuid = $1)",
            domain.model_uuid,
        )
    return n


@pytest.fixture
async def db(domain: Domain) -> int:
    """wordpress/0 and mysql/0 in scope of wordpress:db mysql:db; mysql/0 has written settings."""
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=2)
    rel = int((await domain.integrate("wordpress", "mysql"))["id"])
    await enter(domain, rel, "wordpress/0")
    await enter(domain, rel, "mysql/0", {"host": "10.0.0.5"})
    await domain.run(
        {"type": "set_unit_settings", "relation": rel, "unit": "mysql/0", "settings": {"port": "3306"}}
    )
    return rel


async def test_the_units_still_in_scope_read_a_departed_units_last_settings(domain: Domain, db: int) -> None:
    seq = await domain.last_seq()

    await leave(domain, db, "mysql/0")

    assert await domain.events_since(seq) == [("relation_unit", "left")]
    assert await read(domain, db, "mysql/0", as_unit="wordpress/0") == {"host": "10.0.0.5", "port": "3306"}
    assert await read(domain, db, "mysql/0") == {"host": "10.0.0.5", "port": "3306"}
    assert await domain.run({"type": "relation_units", "relation": db}) == ["wordpress/0"]
    mine = await domain.run({"type": "unit_relations", "unit": "mysql/0"})
    assert [r["in_scope"] for r in mine if r["id"] == db] == [False]
    got = await domain.run({"type": "get_relation", "relation": db})
    assert got["units_in_scope"] == ["wordpress/0"]


async def test_a_departed_unit_cannot_write_its_archived_settings(domain: Domain, db: int) -> None:
    await leave(domain, db, "mysql/0")
    seq = await domain.last_seq()

    err = await refused(
        domain.run({"type": "set_unit_settings", "relation": db, "unit": "mysql/0", "settings": {"a": "b"}})
    )

    assert err.code == "RelationUnitNotFound"
    assert await domain.events_since(seq) == []
    assert await read(domain, db, "mysql/0") == {"host": "10.0.0.5", "port": "3306"}


async def test_a_unit_that_left_with_no_settings_reads_as_an_empty_bag(domain: Domain, db: int) -> None:
    await leave(domain, db, "wordpress/0")

    assert await read(domain, db, "wordpress/0", as_unit="mysql/0") == {}


async def test_reads_of_a_unit_that_never_entered_still_fail(domain: Domain, db: int) -> None:
    never = await refused(read(domain, db, "mysql/1", as_unit="wordpress/0"))
    unknown = await refused(read(domain, db, "mysql/7"))

    assert never.code == "RelationUnitNotFound"
    assert "mysql/1" in never.message
    assert unknown.code == "UnitNotFound"


async def test_entering_again_replaces_the_archive_as_entering_does(domain: Domain, db: int) -> None:
    await leave(domain, db, "mysql/0")
    seq = await domain.last_seq()

    await enter(domain, db, "mysql/0", {"host": "10.0.0.6"})

    assert await domain.events_since(seq) == [
        ("relation_unit", "entered"),
        ("relation_unit_setting", "changed"),
    ]
    assert await read(domain, db, "mysql/0", as_unit="wordpress/0") == {"host": "10.0.0.6"}
    await leave(domain, db, "mysql/0")
    assert await read(domain, db, "mysql/0") == {"host": "10.0.0.6"}
    await enter(domain, db, "mysql/0")
    assert await read(domain, db, "mysql/0") == {}
    assert await archived_rows(domain) == 0


async def test_a_removed_units_settings_stay_readable_until_the_relation_goes(
    domain: Domain, db: int
) -> None:
    await domain.run({"type": "remove_unit", "unit": "mysql/0"})
    seq = await domain.last_seq()

    await leave(domain, db, "mysql/0")

    events = await domain.events_since(seq)
    assert events[:2] == [("relation_unit", "left"), ("unit", "removed")]  # then a new mysql leader
    assert await read(domain, db, "mysql/0", as_unit="wordpress/0") == {"host": "10.0.0.5", "port": "3306"}


async def test_removing_the_relation_drops_the_archive(domain: Domain, db: int) -> None:
    await domain.run({"type": "remove_relation", "relation": db})
    await leave(domain, db, "mysql/0")
    # Dying, with wordpress/0 still in scope: its relation-departed hook reads mysql/0's bag.
    assert await read(domain, db, "mysql/0", as_unit="wordpress/0") == {"host": "10.0.0.5", "port": "3306"}
    assert await archived_rows(domain) == 3
    seq = await domain.last_seq()

    await leave(domain, db, "wordpress/0")

    assert await domain.events_since(seq) == [("relation_unit", "left"), ("relation", "removed")]
    assert (await refused(read(domain, db, "mysql/0"))).code == "RelationNotFound"
    assert await archived_rows(domain) == 0
