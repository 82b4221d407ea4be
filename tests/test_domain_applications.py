"""Applications and units: deploy, add units, leadership, removal, and their reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import CommandFailed, Domain, charm


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def test_deploy_creates_endpoints_the_implicit_juju_info_and_peer_relations(domain: Domain) -> None:
    seq = await domain.last_seq()

    result = await domain.deploy("mysql", units=2)

    names = {e["name"]: (e["role"], e["interface"], e["scope"]) for e in result["endpoints"]}
    assert names["db"] == ("provider", "mysql", "global")
    assert names["ha"] == ("requirer", "hacluster", "container")
    assert names["cluster"] == ("peer", "mysql-ha", "global")
    assert names["juju-info"] == ("provider", "juju-info", "global")
    assert len(names) == len(charm("mysql")["provides"]) + len(charm("mysql")["requires"]) + 1 + 1
    assert result["peer_relations"] == [{"id": 0, "key": "mysql:cluster"}]
    assert result["units"] == ["mysql/0", "mysql/1"]
    assert result["subordinate"] is False
    assert await domain.events_since(seq) == [
        ("application", "deployed"),
        ("application_endpoint", "created"),
        ("relation", "created"),
        ("unit", "added"),
        ("unit", "added"),
        ("application", "leader"),
    ]


async def test_deploy_of_a_charmcraft_yaml_charm_creates_one_peer_relation_per_peer_endpoint(
    domain: Domain,
) -> None:
    result = await domain.deploy("postgresql", units=1)

    assert result["peer_relations"] == [
        {"id": 0, "key": "postgresql:database-peers"},
        {"id": 1, "key": "postgresql:restart"},
        {"id": 2, "key": "postgresql:upgrade"},
    ]
    limits = {e["name"]: e["limit"] for e in result["endpoints"]}
    assert limits["certificates"] == 1
    assert limits["database"] is None
    optional = {e["name"]: e["optional"] for e in result["endpoints"]}
    assert optional["tracing"] is True
    assert optional["certificates"] is False


async def test_deploy_of_a_subordinate_without_units(domain: Domain) -> None:
    seq = await domain.last_seq()

    result = await domain.deploy("telegraf")

    assert result["subordinate"] is True
    assert result["units"] == []
    assert result["peer_relations"] == []
    juju_info = [e for e in result["endpoints"] if e["name"] == "juju-info"]
    assert juju_info == [
        {
            "name": "juju-info",
            "role": "requirer",
            "interface": "juju-info",
            "scope": "container",
            "limit": None,
            "optional": False,
        }
    ]
    assert await domain.events_since(seq) == [
        ("application", "deployed"),
        ("application_endpoint", "created"),
    ]


async def test_a_subordinate_cannot_be_deployed_with_units(domain: Domain) -> None:
    seq = await domain.last_seq()

    err = await refused(domain.deploy("telegraf", units=1))

    assert err.code == "SubordinateUnitsNotAddable"
    assert await domain.run({"type": "list_applications"}) == []
    assert await domain.events_since(seq) == []


async def test_deploy_accepts_the_short_form_of_an_endpoint(domain: Domain) -> None:
    result = await domain.deploy("site", metadata={"name": "site", "provides": {"website": "http"}})

    assert {"name": "website", "role": "provider", "interface": "http", "scope": "global"}.items() <= next(
        e for e in result["endpoints"] if e["name"] == "website"
    ).items()


async def test_an_application_name_is_taken_only_once(domain: Domain) -> None:
    await domain.deploy("mysql")
    seq = await domain.last_seq()

    err = await refused(domain.deploy("mysql", "wordpress"))

    assert err.code == "ApplicationAlreadyExists"
    assert await domain.events_since(seq) == []
    endpoints = await domain.run({"type": "application_endpoints", "application": "mysql"})
    assert "db-admin" in {e["name"] for e in endpoints}


async def test_one_charm_deployed_twice_under_two_names(domain: Domain) -> None:
    await domain.deploy("ca-one", "self-signed-certificates")
    await domain.deploy("ca-two", "self-signed-certificates")

    apps = await domain.run({"type": "list_applications"})

    assert [a["name"] for a in apps] == ["ca-one", "ca-two"]


async def test_add_units_numbers_them_after_the_existing_ones(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    seq = await domain.last_seq()

    result = await domain.run({"type": "add_units", "application": "wordpress", "count": 2})

    assert result == {"units": ["wordpress/1", "wordpress/2"]}
    assert await domain.events_since(seq) == [("unit", "added"), ("unit", "added")]


async def test_the_first_unit_of_a_leaderless_application_becomes_leader(domain: Domain) -> None:
    await domain.deploy("wordpress")
    seq = await domain.last_seq()

    await domain.run({"type": "add_units", "application": "wordpress"})

    assert await domain.events_since(seq) == [("unit", "added"), ("application", "leader")]
    apps = await domain.run({"type": "list_applications"})
    assert apps[0]["leader"] == "wordpress/0"


async def test_unit_numbers_are_never_reused(domain: Domain) -> None:
    await domain.deploy("wordpress", units=2)
    await domain.run({"type": "remove_unit", "unit": "wordpress/1"})

    result = await domain.run({"type": "add_units", "application": "wordpress"})

    assert result["units"] == ["wordpress/2"]


async def test_units_cannot_be_added_to_a_subordinate(domain: Domain) -> None:
    await domain.deploy("telegraf")

    err = await refused(domain.run({"type": "add_units", "application": "telegraf"}))

    assert err.code == "SubordinateUnitsNotAddable"


async def test_units_cannot_be_added_to_an_unknown_application(domain: Domain) -> None:
    err = await refused(domain.run({"type": "add_units", "application": "ghost"}))

    assert err.code == "ApplicationNotFound"
    assert "ghost" in err.message


async def test_units_cannot_be_added_to_a_dying_application(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    relation = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": relation["id"], "unit": "wordpress/0"})
    await domain.run({"type": "remove_application", "application": "wordpress"})

    err = await refused(domain.run({"type": "add_units", "application": "wordpress"}))

    assert err.code == "ApplicationNotAlive"


async def test_set_leader_moves_leadership_and_emits_once(domain: Domain) -> None:
    await domain.deploy("mysql", units=2)
    seq = await domain.last_seq()

    result = await domain.run({"type": "set_leader", "unit": "mysql/1"})
    again = await domain.run({"type": "set_leader", "unit": "mysql/1"})

    assert result == again == {"leader": "mysql/1"}
    assert await domain.events_since(seq) == [("application", "leader")]
    apps = await domain.run({"type": "list_applications"})
    assert apps[0]["leader"] == "mysql/1"


async def test_set_leader_of_an_unknown_unit_is_refused(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)

    err = await refused(domain.run({"type": "set_leader", "unit": "mysql/7"}))

    assert err.code == "UnitNotFound"
    assert "mysql/7" in err.message


async def test_remove_unit_in_no_scope_removes_it_at_once(domain: Domain) -> None:
    await domain.deploy("mysql", units=2)
    seq = await domain.last_seq()

    result = await domain.run({"type": "remove_unit", "unit": "mysql/1"})

    assert result == {"name": "mysql/1", "life": "dead"}
    assert await domain.events_since(seq) == [("unit", "life"), ("unit", "removed")]
    apps = await domain.run({"type": "list_applications"})
    assert apps[0]["units"] == ["mysql/0"]


async def test_removing_the_leader_elects_the_next_alive_unit(domain: Domain) -> None:
    await domain.deploy("mysql", units=3)
    seq = await domain.last_seq()

    await domain.run({"type": "remove_unit", "unit": "mysql/0"})

    assert await domain.events_since(seq) == [
        ("unit", "life"),
        ("unit", "removed"),
        ("application", "leader"),
    ]
    apps = await domain.run({"type": "list_applications"})
    assert apps[0]["leader"] == "mysql/1"


async def test_remove_unit_in_scope_leaves_it_dying_until_it_leaves(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("wordpress", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})

    dying = await domain.run({"type": "remove_unit", "unit": "wordpress/0"})
    seq = await domain.last_seq()
    await domain.run({"type": "leave_scope", "relation": rel["id"], "unit": "wordpress/0"})

    assert dying == {"name": "wordpress/0", "life": "dying"}
    assert await domain.events_since(seq) == [
        ("relation_unit", "left"),
        ("unit", "removed"),
        ("application", "leader"),
    ]
    apps = {a["name"]: a for a in await domain.run({"type": "list_applications"})}
    assert apps["wordpress"]["units"] == []
    assert apps["wordpress"]["leader"] is None


async def test_remove_unit_is_idempotent(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("wordpress", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    await domain.run({"type": "remove_unit", "unit": "wordpress/0"})
    seq = await domain.last_seq()

    again = await domain.run({"type": "remove_unit", "unit": "wordpress/0"})

    assert again == {"name": "wordpress/0", "life": "dying"}
    assert await domain.events_since(seq) == []


async def test_remove_unit_of_an_unknown_unit_is_refused(domain: Domain) -> None:
    err = await refused(domain.run({"type": "remove_unit", "unit": "mysql/0"}))

    assert err.code == "UnitNotFound"


async def test_removing_a_principal_unit_removes_its_subordinate_first(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("telegraf")
    rel = await domain.integrate("telegraf", "wordpress")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    await domain.run({"type": "leave_scope", "relation": rel["id"], "unit": "wordpress/0"})
    seq = await domain.last_seq()

    result = await domain.run({"type": "remove_unit", "unit": "wordpress/0"})

    assert result["life"] == "dead"
    assert await domain.events_since(seq) == [
        ("unit", "life"),
        ("unit", "life"),
        ("unit", "removed"),
        ("application", "leader"),
        ("unit", "removed"),
        ("application", "leader"),
    ]
    events = await domain.events(seq)
    assert [e["key"]["unit"] for e in events if e["namespace"] == "unit"] == [
        "wordpress/0",
        "telegraf/0",
        "telegraf/0",
        "wordpress/0",
    ]


async def test_remove_application_with_nothing_in_scope_removes_it_and_its_peer_relation(
    domain: Domain,
) -> None:
    await domain.deploy("wordpress", units=1)
    seq = await domain.last_seq()

    result = await domain.run({"type": "remove_application", "application": "wordpress"})

    assert result == {"name": "wordpress", "life": "dead"}
    assert await domain.events_since(seq) == [
        ("application", "life"),
        ("relation", "life"),
        ("relation_status", "changed"),
        ("unit", "life"),
        ("relation", "removed"),
        ("unit", "removed"),
        ("application", "leader"),
        ("application_endpoint", "removed"),
        ("application", "removed"),
    ]
    assert await domain.run({"type": "list_applications"}) == []
    assert await domain.run({"type": "list_relations"}) == []


async def test_a_removed_application_name_can_be_deployed_again(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.run({"type": "remove_application", "application": "wordpress"})

    result = await domain.deploy("wordpress", units=1)

    assert result["units"] == ["wordpress/0"]
    assert result["peer_relations"] == [{"id": 1, "key": "wordpress:loadbalancer"}]


async def test_remove_application_is_idempotent_while_dying(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    first = await domain.run({"type": "remove_application", "application": "wordpress"})
    seq = await domain.last_seq()

    again = await domain.run({"type": "remove_application", "application": "wordpress"})

    assert first == again == {"name": "wordpress", "life": "dying"}
    assert await domain.events_since(seq) == []


async def test_remove_application_of_an_unknown_application_is_refused(domain: Domain) -> None:
    err = await refused(domain.run({"type": "remove_application", "application": "ghost"}))

    assert err.code == "ApplicationNotFound"


async def test_list_applications_shows_life_leader_units_and_subordinate(domain: Domain) -> None:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("telegraf")
    await domain.deploy("mysql", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})
    await domain.run({"type": "remove_application", "application": "mysql"})

    apps = await domain.run({"type": "list_applications"})

    assert apps == [
        {"name": "mysql", "life": "dying", "subordinate": False, "leader": "mysql/0", "units": ["mysql/0"]},
        {"name": "telegraf", "life": "alive", "subordinate": True, "leader": None, "units": []},
        {
            "name": "wordpress",
            "life": "alive",
            "subordinate": False,
            "leader": "wordpress/0",
            "units": ["wordpress/0", "wordpress/1"],
        },
    ]


async def test_application_endpoints_lists_every_endpoint_with_its_declaration(domain: Domain) -> None:
    await domain.deploy("postgresql")

    endpoints = await domain.run({"type": "application_endpoints", "application": "postgresql"})

    by_name = {e["name"]: e for e in endpoints}
    assert set(by_name) == {
        "database",
        "db",
        "db-admin",
        "cos-agent",
        "certificates",
        "s3-parameters",
        "tracing",
        "database-peers",
        "restart",
        "upgrade",
        "juju-info",
    }
    assert by_name["cos-agent"] == {
        "name": "cos-agent",
        "role": "provider",
        "interface": "cos_agent",
        "scope": "global",
        "limit": 1,
        "optional": False,
    }
    assert by_name["database-peers"]["role"] == "peer"


async def test_application_endpoints_of_an_unknown_application_is_refused(domain: Domain) -> None:
    err = await refused(domain.run({"type": "application_endpoints", "application": "ghost"}))

    assert err.code == "ApplicationNotFound"


async def test_reads_emit_no_events(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    seq = await domain.last_seq()

    await domain.run({"type": "list_applications"})
    await domain.run({"type": "application_endpoints", "application": "mysql"})
    await domain.run({"type": "list_relations"})
    await domain.run({"type": "get_relation", "relation": 0})

    assert await domain.events_since(seq) == []
