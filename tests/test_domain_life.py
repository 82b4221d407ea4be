"""Life: removing relations, applications and units; dying first, dead and removed once free."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import Domain, enter, leave, refused


async def rows_of_relation(domain: Domain, relation_uuid: str) -> dict[str, int]:
    """How many rows each relation table still holds for one relation (by SQL, not by handler)."""
    queries = {
        "relation": "SELECT count(*) FROM relation WHERE model_uuid = $1 AND uuid = $2",
        "relation_endpoint": "SELECT count(*) FROM relation_endpoint WHERE model_uuid = $1 AND relation_uuid = $2",
        "relation_status": "SELECT count(*) FROM relation_status WHERE model_uuid = $1 AND relation_uuid = $2",
        "relation_unit": """SELECT count(*) FROM relation_unit ru JOIN relation_endpoint re
                            ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
                            WHERE ru.model_uuid = $1 AND re.relation_uuid = $2""",
        "relation_application_setting": """
            SELECT count(*) FROM relation_application_setting s JOIN relation_endpoint re
            ON re.model_uuid = s.model_uuid AND re.uuid = s.relation_endpoint_uuid
            WHERE s.model_uuid = $1 AND re.relation_uuid = $2""",
    }
    async with domain.pool.acquire() as conn:
        return {
            name: await conn.fetchval(sql, domain.model_uuid, relation_uuid) for name, sql in queries.items()
        }


async def unit_setting_rows(domain: Domain) -> int:
    async with domain.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM relation_unit_setting WHERE model_uuid = $1", domain.model_uuid
        )
    return count


@pytest.fixture
async def rel(domain: Domain) -> dict[str, Any]:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=1)
    relation: dict[str, Any] = await domain.integrate("wordpress", "mysql", mysql={"database": "wp"})
    return relation


# ---- removing a relation --------------------------------------------------------------------


async def test_a_relation_with_no_unit_in_scope_is_removed_at_once(
    domain: Domain, rel: dict[str, Any]
) -> None:
    seq = await domain.last_seq()

    result = await domain.run({"type": "remove_relation", "relation": rel["id"]})

    assert result == {"id": rel["id"], "life": "dead"}
    assert await domain.events_since(seq) == [
        ("relation", "life"),
        ("relation_status", "changed"),
        ("relation", "removed"),
    ]
    err = await refused(domain.run({"type": "get_relation", "relation": rel["id"]}))
    assert err.code == "RelationNotFound"
    assert set((await rows_of_relation(domain, rel["uuid"])).values()) == {0}


async def test_removing_a_relation_in_use_makes_it_dying_and_broken(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await enter(domain, rel["id"], "wordpress/0")
    seq = await domain.last_seq()

    result = await domain.run({"type": "remove_relation", "relation": rel["id"]})

    assert result == {"id": rel["id"], "life": "dying"}
    assert await domain.events_since(seq) == [("relation", "life"), ("relation_status", "changed")]
    info = await domain.run({"type": "get_relation", "relation": rel["id"]})
    assert (info["life"], info["status"], info["message"]) == ("dying", "broken", "relation removed")


async def test_a_dying_relation_becomes_dead_and_is_removed_when_its_last_unit_leaves(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await enter(domain, rel["id"], "wordpress/0", {"a": "1"})
    await enter(domain, rel["id"], "mysql/0", {"b": "2"})
    await domain.run({"type": "remove_relation", "relation": rel["id"]})

    seq = await domain.last_seq()
    await leave(domain, rel["id"], "wordpress/0")
    after_first = await domain.events_since(seq)
    still_there = await domain.run({"type": "get_relation", "relation": rel["id"]})
    seq = await domain.last_seq()
    await leave(domain, rel["id"], "mysql/0")

    assert after_first == [("relation_unit", "left")]
    assert still_there["life"] == "dying"
    assert still_there["units_in_scope"] == ["mysql/0"]
    assert await domain.events_since(seq) == [("relation_unit", "left"), ("relation", "removed")]
    removed = (await domain.events(seq))[-1]
    assert removed["payload"] == {"life": "dead"}
    assert removed["key"]["relation_id"] == rel["id"]
    assert set((await rows_of_relation(domain, rel["uuid"])).values()) == {0}
    assert await unit_setting_rows(domain) == 0


async def test_remove_relation_twice_is_idempotent_while_dying(domain: Domain, rel: dict[str, Any]) -> None:
    await enter(domain, rel["id"], "wordpress/0")
    await domain.run({"type": "remove_relation", "relation": rel["id"]})
    seq = await domain.last_seq()

    again = await domain.run({"type": "remove_relation", "relation": rel["uuid"]})

    assert again == {"id": rel["id"], "life": "dying"}
    assert await domain.events_since(seq) == []


async def test_remove_relation_by_its_endpoints(domain: Domain, rel: dict[str, Any]) -> None:
    result = await domain.run({"type": "remove_relation", "endpoints": ["mysql", "wordpress"]})

    assert result == {"id": rel["id"], "life": "dead"}


async def test_remove_relation_by_named_endpoints(domain: Domain, rel: dict[str, Any]) -> None:
    result = await domain.run({"type": "remove_relation", "endpoints": ["wordpress:db", "mysql:db"]})

    assert result["id"] == rel["id"]


async def test_remove_relation_by_endpoints_of_a_pair_related_twice_needs_the_endpoint(
    domain: Domain,
) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("nrpe")
    monitors = await domain.integrate("nrpe", "mysql")
    info = await domain.integrate("nrpe:general-info", "mysql")

    ambiguous = await refused(domain.run({"type": "remove_relation", "endpoints": ["nrpe", "mysql"]}))
    removed = await domain.run({"type": "remove_relation", "endpoints": ["nrpe:general-info", "mysql"]})

    assert ambiguous.code == "AmbiguousRelation"
    assert removed["id"] == info["id"]
    remaining = [r["id"] for r in await domain.run({"type": "list_relations", "application": "nrpe"})]
    assert remaining == [monitors["id"]]


async def test_remove_relation_by_endpoints_that_are_not_related_is_refused(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await domain.deploy("postgresql")

    unrelated = await refused(
        domain.run({"type": "remove_relation", "endpoints": ["wordpress", "postgresql"]})
    )
    wrong_endpoint = await refused(
        domain.run({"type": "remove_relation", "endpoints": ["wordpress:cache", "mysql"]})
    )
    unknown = await refused(domain.run({"type": "remove_relation", "endpoints": ["wordpress", "ghost"]}))

    assert unrelated.code == wrong_endpoint.code == "RelationNotFound"
    assert unknown.code == "ApplicationNotFound"


@pytest.mark.parametrize(
    "body", [{}, {"relation": 0, "endpoints": ["wordpress", "mysql"]}], ids=["neither", "both"]
)
async def test_remove_relation_needs_either_an_id_or_endpoints(
    domain: Domain, rel: dict[str, Any], body: dict[str, Any]
) -> None:
    err = await refused(domain.run({"type": "remove_relation", **body}))

    assert err.code == "InvalidCommand"


async def test_remove_relation_of_an_unknown_relation_is_refused(domain: Domain, rel: dict[str, Any]) -> None:
    by_id = await refused(domain.run({"type": "remove_relation", "relation": 42}))
    by_uuid = await refused(
        domain.run({"type": "remove_relation", "relation": "00000000-0000-4000-8000-000000000000"})
    )

    assert by_id.code == by_uuid.code == "RelationNotFound"


async def test_a_peer_relation_cannot_be_removed(domain: Domain, rel: dict[str, Any]) -> None:
    peer = next(r for r in await domain.run({"type": "list_relations"}) if r["key"] == "mysql:cluster")

    err = await refused(domain.run({"type": "remove_relation", "relation": peer["id"]}))

    assert err.code == "CannotRemovePeerRelation"
    assert (await domain.run({"type": "get_relation", "relation": peer["id"]}))["life"] == "alive"


# ---- applications and units dying ----------------------------------------------------------


async def test_an_application_dying_makes_all_its_relations_dying(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await domain.deploy("telegraf")
    container = await domain.integrate("telegraf:juju-info", "mysql")
    await enter(domain, rel["id"], "mysql/0")
    await enter(domain, container["id"], "mysql/0")
    await enter(domain, container["id"], "telegraf/0")

    result = await domain.run({"type": "remove_application", "application": "mysql"})

    assert result == {"name": "mysql", "life": "dying"}
    lives = {r["key"]: (r["life"], r["status"]) for r in await domain.run({"type": "list_relations"})}
    assert lives == {
        "wordpress:loadbalancer": ("alive", "joining"),
        "wordpress:db mysql:db": ("dying", "broken"),
        "telegraf:juju-info mysql:juju-info": ("dying", "broken"),
    }
    apps = {a["name"]: a["life"] for a in await domain.run({"type": "list_applications"})}
    assert apps == {"mysql": "dying", "telegraf": "alive", "wordpress": "alive"}


async def test_a_dying_application_is_removed_once_its_units_have_left(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await domain.deploy("telegraf")
    container = await domain.integrate("telegraf:juju-info", "mysql")
    await enter(domain, rel["id"], "mysql/0")
    await enter(domain, container["id"], "mysql/0")
    await enter(domain, container["id"], "telegraf/0")
    await domain.run({"type": "remove_application", "application": "mysql"})

    await leave(domain, rel["id"], "mysql/0")
    await leave(domain, container["id"], "mysql/0")
    mysql_still_there = [a["name"] for a in await domain.run({"type": "list_applications"})]
    seq = await domain.last_seq()
    await leave(domain, container["id"], "telegraf/0")

    assert "mysql" in mysql_still_there
    assert await domain.events_since(seq) == [
        ("relation_unit", "left"),
        ("relation", "removed"),
        ("unit", "removed"),
        ("application", "leader"),
        ("unit", "removed"),
        ("application", "leader"),
        ("application_endpoint", "removed"),
        ("application", "removed"),
    ]
    apps = {a["name"]: a["units"] for a in await domain.run({"type": "list_applications"})}
    assert apps == {"telegraf": [], "wordpress": ["wordpress/0", "wordpress/1"]}
    assert [r["key"] for r in await domain.run({"type": "list_relations"})] == ["wordpress:loadbalancer"]


async def test_a_dying_unit_is_removed_when_it_leaves_its_last_scope(
    domain: Domain, rel: dict[str, Any]
) -> None:
    await enter(domain, rel["id"], "wordpress/1")
    await domain.run({"type": "remove_unit", "unit": "wordpress/1"})
    seq = await domain.last_seq()

    await leave(domain, rel["id"], "wordpress/1")

    assert await domain.events_since(seq) == [("relation_unit", "left"), ("unit", "removed")]
    assert (await domain.run({"type": "list_applications"}))[1]["units"] == ["wordpress/0"]


async def test_relations_of_a_removed_unit_stay_alive(domain: Domain, rel: dict[str, Any]) -> None:
    await enter(domain, rel["id"], "wordpress/1")

    await domain.run({"type": "remove_unit", "unit": "wordpress/1"})

    assert (await domain.run({"type": "get_relation", "relation": rel["id"]}))["life"] == "alive"


async def test_no_dead_relation_is_ever_left_behind(domain: Domain, rel: dict[str, Any]) -> None:
    await enter(domain, rel["id"], "wordpress/0")
    await domain.run({"type": "remove_application", "application": "wordpress"})
    await leave(domain, rel["id"], "wordpress/0")

    async with domain.pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM relation WHERE model_uuid = $1 AND life_id = 2", domain.model_uuid
        )
    assert dead == 0
    assert [r["key"] for r in await domain.run({"type": "list_relations"})] == ["mysql:cluster"]
