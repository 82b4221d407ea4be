"""Reads: relation details, lists, endpoints, relation-ids, relation-list, endpoint uuids, unit relations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import CommandFailed, Domain


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


@pytest.fixture
async def model(domain: Domain) -> dict[str, Any]:
    """wordpress (peer 0, 2 units), mysql (peer 1, 1 unit), telegraf; db relation 2, juju-info relation 3."""
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=1)
    await domain.deploy("telegraf")
    db = await domain.integrate("wordpress", "mysql")
    info = await domain.integrate("telegraf", "wordpress")
    await domain.run({"type": "enter_scope", "relation": db["id"], "unit": "wordpress/1"})
    await domain.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/0"})
    await domain.run({"type": "enter_scope", "relation": info["id"], "unit": "wordpress/0"})
    return {"db": db, "info": info}


async def test_get_relation_by_id_and_by_uuid_are_the_same(domain: Domain, model: dict[str, Any]) -> None:
    by_id = await domain.run({"type": "get_relation", "relation": model["db"]["id"]})
    by_uuid = await domain.run({"type": "get_relation", "relation": model["db"]["uuid"]})

    assert by_id == by_uuid
    assert by_id["id"] == 2
    assert by_id["uuid"] == model["db"]["uuid"]


async def test_get_relation_gives_the_full_details(domain: Domain, model: dict[str, Any]) -> None:
    rel = await domain.run({"type": "get_relation", "relation": model["db"]["id"]})

    assert {k: rel[k] for k in ("key", "life", "status", "message", "scope", "interface")} == {
        "key": "wordpress:db mysql:db",
        "life": "alive",
        "status": "joined",
        "message": "",
        "scope": "global",
        "interface": "mysql",
    }
    assert rel["units_in_scope"] == ["wordpress/1", "mysql/0"]
    assert [{k: v for k, v in e.items() if k != "relation_endpoint_uuid"} for e in rel["endpoints"]] == [
        {
            "application": "wordpress",
            "name": "db",
            "role": "requirer",
            "interface": "mysql",
            "scope": "global",
            "limit": None,
            "optional": False,
        },
        {
            "application": "mysql",
            "name": "db",
            "role": "provider",
            "interface": "mysql",
            "scope": "global",
            "limit": None,
            "optional": False,
        },
    ]


async def test_a_peer_relation_has_one_endpoint_and_its_key(domain: Domain, model: dict[str, Any]) -> None:
    rel = await domain.run({"type": "get_relation", "relation": 0})

    assert rel["key"] == "wordpress:loadbalancer"
    assert [(e["application"], e["name"], e["role"]) for e in rel["endpoints"]] == [
        ("wordpress", "loadbalancer", "peer")
    ]


async def test_get_relation_of_an_unknown_relation_is_refused(domain: Domain, model: dict[str, Any]) -> None:
    by_id = await refused(domain.run({"type": "get_relation", "relation": 4}))
    by_uuid = await refused(
        domain.run({"type": "get_relation", "relation": "00000000-0000-4000-8000-000000000000"})
    )

    assert by_id.code == by_uuid.code == "RelationNotFound"


async def test_list_relations_gives_every_relation_of_the_model_by_id(
    domain: Domain, model: dict[str, Any]
) -> None:
    relations = await domain.run({"type": "list_relations"})

    assert [(r["id"], r["key"]) for r in relations] == [
        (0, "wordpress:loadbalancer"),
        (1, "mysql:cluster"),
        (2, "wordpress:db mysql:db"),
        (3, "telegraf:juju-info wordpress:juju-info"),
    ]
    assert relations[2] == await domain.run({"type": "get_relation", "relation": 2})


async def test_list_relations_of_one_application(domain: Domain, model: dict[str, Any]) -> None:
    wordpress = await domain.run({"type": "list_relations", "application": "wordpress"})
    telegraf = await domain.run({"type": "list_relations", "application": "telegraf"})

    assert [r["id"] for r in wordpress] == [0, 2, 3]
    assert [r["id"] for r in telegraf] == [3]
    assert wordpress[2]["units_in_scope"] == ["wordpress/0"]


async def test_list_relations_of_an_application_without_relations_is_empty(domain: Domain) -> None:
    await domain.deploy("telegraf")

    assert await domain.run({"type": "list_relations", "application": "telegraf"}) == []


async def test_list_relations_of_an_unknown_application_is_refused(
    domain: Domain, model: dict[str, Any]
) -> None:
    err = await refused(domain.run({"type": "list_relations", "application": "ghost"}))

    assert err.code == "ApplicationNotFound"


async def test_relation_ids_of_an_endpoint(domain: Domain, model: dict[str, Any]) -> None:
    await domain.deploy("blog", "wordpress")
    other = await domain.integrate("blog", "mysql")

    assert await domain.run({"type": "relation_ids", "endpoint": "mysql:db"}) == [2, other["id"]]
    assert await domain.run({"type": "relation_ids", "endpoint": "wordpress:db"}) == [2]
    assert await domain.run({"type": "relation_ids", "endpoint": "wordpress:loadbalancer"}) == [0]
    assert await domain.run({"type": "relation_ids", "endpoint": "wordpress:juju-info"}) == [3]
    assert await domain.run({"type": "relation_ids", "endpoint": "wordpress:cache"}) == []


async def test_relation_ids_of_an_application_without_endpoint_lists_all(
    domain: Domain, model: dict[str, Any]
) -> None:
    assert await domain.run({"type": "relation_ids", "endpoint": "wordpress"}) == [0, 2, 3]


async def test_relation_ids_of_an_unknown_endpoint_or_application_are_refused(
    domain: Domain, model: dict[str, Any]
) -> None:
    no_endpoint = await refused(domain.run({"type": "relation_ids", "endpoint": "wordpress:nosuch"}))
    no_app = await refused(domain.run({"type": "relation_ids", "endpoint": "ghost:db"}))

    assert no_endpoint.code == "RelationEndpointNotFound"
    assert no_app.code == "ApplicationNotFound"


async def test_relation_units_lists_the_units_in_scope(domain: Domain, model: dict[str, Any]) -> None:
    db = model["db"]["id"]

    everyone = await domain.run({"type": "relation_units", "relation": db})
    mysql = await domain.run({"type": "relation_units", "relation": db, "application": "mysql"})
    wordpress = await domain.run({"type": "relation_units", "relation": db, "application": "wordpress"})

    assert everyone == ["wordpress/1", "mysql/0"]
    assert mysql == ["mysql/0"]
    assert wordpress == ["wordpress/1"]


async def test_relation_units_of_an_application_outside_the_relation_is_refused(
    domain: Domain, model: dict[str, Any]
) -> None:
    err = await refused(
        domain.run({"type": "relation_units", "relation": model["db"]["id"], "application": "telegraf"})
    )
    missing = await refused(domain.run({"type": "relation_units", "relation": 17}))

    assert err.code == "ApplicationNotFoundForRelation"
    assert missing.code == "RelationNotFound"


async def test_relation_endpoint_uuid_of_each_side(domain: Domain, model: dict[str, Any]) -> None:
    rel = await domain.run({"type": "get_relation", "relation": model["db"]["id"]})
    expected = {e["application"]: e["relation_endpoint_uuid"] for e in rel["endpoints"]}

    for app in ("wordpress", "mysql"):
        got = await domain.run(
            {"type": "relation_endpoint_uuid", "relation": model["db"]["uuid"], "application": app}
        )
        assert got == expected[app]
    assert expected["wordpress"] != expected["mysql"]


async def test_relation_endpoint_uuid_refusals(domain: Domain, model: dict[str, Any]) -> None:
    db = model["db"]["id"]

    not_in_relation = await refused(
        domain.run({"type": "relation_endpoint_uuid", "relation": db, "application": "telegraf"})
    )
    no_app = await refused(
        domain.run({"type": "relation_endpoint_uuid", "relation": db, "application": "ghost"})
    )
    no_relation = await refused(
        domain.run({"type": "relation_endpoint_uuid", "relation": 99, "application": "mysql"})
    )

    assert not_in_relation.code == "RelationEndpointNotFound"
    assert no_app.code == "ApplicationNotFound"
    assert no_relation.code == "RelationNotFound"


async def test_unit_relations_gives_scope_and_suspension_per_relation(
    domain: Domain, model: dict[str, Any]
) -> None:
    await domain.run(
        {
            "type": "set_relation_status",
            "relation": model["db"]["id"],
            "unit": "mysql/0",
            "status": "suspended",
        }
    )

    wordpress0 = await domain.run({"type": "unit_relations", "unit": "wordpress/0"})
    wordpress1 = await domain.run({"type": "unit_relations", "unit": "wordpress/1"})

    def rows(result: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["id"], r["key"], r["endpoint"], r["in_scope"], r["suspended"], r["life"]) for r in result]

    assert rows(wordpress0) == [
        (0, "wordpress:loadbalancer", "loadbalancer", False, False, "alive"),
        (2, "wordpress:db mysql:db", "db", False, True, "alive"),
        (3, "telegraf:juju-info wordpress:juju-info", "juju-info", True, False, "alive"),
    ]
    assert rows(wordpress1) == [
        (0, "wordpress:loadbalancer", "loadbalancer", False, False, "alive"),
        (2, "wordpress:db mysql:db", "db", True, True, "alive"),
        (3, "telegraf:juju-info wordpress:juju-info", "juju-info", False, False, "alive"),
    ]
    assert wordpress0[1]["uuid"] == model["db"]["uuid"]


async def test_unit_relations_of_a_subordinate_unit(domain: Domain, model: dict[str, Any]) -> None:
    await domain.run({"type": "enter_scope", "relation": model["info"]["id"], "unit": "telegraf/0"})

    result = await domain.run({"type": "unit_relations", "unit": "telegraf/0"})

    assert [(r["id"], r["endpoint"], r["in_scope"]) for r in result] == [(3, "juju-info", True)]


async def test_unit_relations_of_an_unknown_unit_is_refused(domain: Domain, model: dict[str, Any]) -> None:
    err = await refused(domain.run({"type": "unit_relations", "unit": "wordpress/9"}))

    assert err.code == "UnitNotFound"


async def test_unit_relations_shows_a_dying_relation(domain: Domain, model: dict[str, Any]) -> None:
    await domain.run({"type": "remove_relation", "relation": model["db"]["id"]})

    result = {r["id"]: r for r in await domain.run({"type": "unit_relations", "unit": "mysql/0"})}

    assert result[2]["life"] == "dying"
    assert result[2]["in_scope"] is True
