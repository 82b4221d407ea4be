"""Relation scope: entering and leaving, subordinate units, idempotency, who is in scope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import Domain, enter, leave, refused


async def unit_settings(domain: Domain, relation: int, unit: str) -> Any:
    return await domain.run({"type": "get_unit_settings", "relation": relation, "unit": unit})


async def in_scope(domain: Domain, relation: int) -> list[str]:
    result: list[str] = await domain.run({"type": "relation_units", "relation": relation})
    return result


async def units_of(domain: Domain, application: str) -> list[str]:
    apps = {a["name"]: a for a in await domain.run({"type": "list_applications"})}
    return list(apps[application]["units"])


@pytest.fixture
async def wordpress_mysql(domain: Domain) -> int:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    return int(rel["id"])


# ---- entering and leaving -------------------------------------------------------------------


async def test_the_first_unit_entering_moves_the_relation_to_joined(
    domain: Domain, wordpress_mysql: int
) -> None:
    seq = await domain.last_seq()

    result = await enter(domain, wordpress_mysql, "mysql/0")

    assert result == {"id": wordpress_mysql, "unit": "mysql/0", "in_scope": True, "created_units": []}
    assert await domain.events_since(seq) == [("relation_unit", "entered"), ("relation_status", "changed")]
    rel = await domain.run({"type": "get_relation", "relation": wordpress_mysql})
    assert rel["status"] == "joined"
    assert rel["units_in_scope"] == ["mysql/0"]


async def test_later_units_entering_only_emit_their_entry(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0")
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "wordpress/1")

    assert await domain.events_since(seq) == [("relation_unit", "entered")]
    events = await domain.events(seq)
    assert events[0]["key"]["unit"] == "wordpress/1"
    assert events[0]["key"]["relation_id"] == wordpress_mysql
    assert events[0]["payload"] == {"endpoint": "db"}


async def test_a_status_set_before_anyone_entered_is_not_overwritten_by_joined(
    domain: Domain, wordpress_mysql: int
) -> None:
    await domain.run(
        {"type": "set_relation_status", "relation": wordpress_mysql, "unit": "mysql/0", "status": "suspended"}
    )
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "wordpress/0")

    assert await domain.events_since(seq) == [("relation_unit", "entered")]
    assert (await domain.run({"type": "get_relation", "relation": wordpress_mysql}))["status"] == "suspended"


async def test_entering_with_settings_stores_them(domain: Domain, wordpress_mysql: int) -> None:
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5", "port": "3306"})

    assert await domain.events_since(seq) == [
        ("relation_unit", "entered"),
        ("relation_status", "changed"),
        ("relation_unit_setting", "changed"),
    ]
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {"host": "10.0.0.5", "port": "3306"}


async def test_entering_twice_replaces_the_settings(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5", "port": "3306"})
    seq = await domain.last_seq()

    result = await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.6"})

    assert result["in_scope"] is True
    assert await domain.events_since(seq) == [("relation_unit_setting", "changed")]
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {"host": "10.0.0.6"}
    assert await in_scope(domain, wordpress_mysql) == ["mysql/0"]


async def test_entering_twice_with_the_same_settings_changes_nothing(
    domain: Domain, wordpress_mysql: int
) -> None:
    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5"})

    assert await domain.events_since(seq) == []


async def test_entering_twice_without_settings_keeps_them(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "mysql/0")

    assert await domain.events_since(seq) == []
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {"host": "10.0.0.5"}


async def test_entering_twice_with_empty_settings_clears_them(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    await enter(domain, wordpress_mysql, "mysql/0", {})

    assert await domain.events_since(seq) == [("relation_unit_setting", "changed")]
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {}


async def test_leave_scope_takes_the_unit_out_and_entering_again_starts_a_new_bag(
    domain: Domain, wordpress_mysql: int
) -> None:
    await enter(domain, wordpress_mysql, "mysql/0", {"host": "10.0.0.5"})
    seq = await domain.last_seq()

    result = await leave(domain, wordpress_mysql, "mysql/0")

    assert result == {"id": wordpress_mysql, "unit": "mysql/0", "in_scope": False, "created_units": []}
    assert await domain.events_since(seq) == [("relation_unit", "left")]
    assert await in_scope(domain, wordpress_mysql) == []
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {"host": "10.0.0.5"}  # archived
    await enter(domain, wordpress_mysql, "mysql/0")
    assert await unit_settings(domain, wordpress_mysql, "mysql/0") == {}


async def test_leave_scope_twice_succeeds(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0")
    await leave(domain, wordpress_mysql, "mysql/0")
    seq = await domain.last_seq()

    again = await leave(domain, wordpress_mysql, "mysql/0")

    assert again["in_scope"] is False
    assert await domain.events_since(seq) == []


async def test_leaving_a_scope_never_entered_succeeds(domain: Domain, wordpress_mysql: int) -> None:
    result = await leave(domain, wordpress_mysql, "wordpress/1")

    assert result["in_scope"] is False


async def test_units_enter_their_peer_relation(domain: Domain) -> None:
    deployed = await domain.deploy("mysql", units=2)
    peer = deployed["peer_relations"][0]["id"]

    await enter(domain, peer, "mysql/0")
    await enter(domain, peer, "mysql/1")

    assert await in_scope(domain, peer) == ["mysql/0", "mysql/1"]


# ---- refusals -------------------------------------------------------------------------------


async def test_entering_an_unknown_relation_is_refused(domain: Domain, wordpress_mysql: int) -> None:
    err = await refused(enter(domain, 99, "mysql/0"))

    assert err.code == "RelationNotFound"


async def test_entering_with_an_unknown_unit_is_refused(domain: Domain, wordpress_mysql: int) -> None:
    err = await refused(enter(domain, wordpress_mysql, "mysql/9"))

    assert err.code == "UnitNotFound"


async def test_a_unit_of_a_third_application_is_not_in_the_relation(
    domain: Domain, wordpress_mysql: int
) -> None:
    await domain.deploy("postgresql", units=1)

    entering = await refused(enter(domain, wordpress_mysql, "postgresql/0"))
    leaving = await refused(leave(domain, wordpress_mysql, "postgresql/0"))

    assert entering.code == leaving.code == "UnitNotInRelation"
    assert "postgresql/0" in entering.message


async def test_a_dying_relation_cannot_be_entered(domain: Domain, wordpress_mysql: int) -> None:
    await enter(domain, wordpress_mysql, "mysql/0")
    await domain.run({"type": "remove_relation", "relation": wordpress_mysql})

    err = await refused(enter(domain, wordpress_mysql, "wordpress/0"))

    assert err.code == "CannotEnterScopeNotAlive"
    assert "relation is dying" in err.message


async def test_a_dying_unit_cannot_enter(domain: Domain, wordpress_mysql: int) -> None:
    deployed_peer = (await domain.run({"type": "list_relations", "application": "wordpress"}))[0]["id"]
    await enter(domain, deployed_peer, "wordpress/0")
    await domain.run({"type": "remove_unit", "unit": "wordpress/0"})

    err = await refused(enter(domain, wordpress_mysql, "wordpress/0"))

    assert err.code == "CannotEnterScopeNotAlive"
    assert "unit is dying" in err.message


# ---- subordinates ---------------------------------------------------------------------------


@pytest.fixture
async def telegraf_wordpress(domain: Domain) -> int:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("telegraf")
    rel = await domain.integrate("telegraf", "wordpress")
    return int(rel["id"])


async def test_a_principal_entering_a_container_relation_creates_its_subordinate_unit(
    domain: Domain, telegraf_wordpress: int
) -> None:
    seq = await domain.last_seq()

    result = await enter(domain, telegraf_wordpress, "wordpress/0")

    assert result["created_units"] == ["telegraf/0"]
    assert await domain.events_since(seq) == [
        ("unit", "added"),
        ("application", "leader"),
        ("relation_unit", "entered"),
        ("relation_status", "changed"),
    ]
    assert await units_of(domain, "telegraf") == ["telegraf/0"]
    assert await in_scope(domain, telegraf_wordpress) == ["wordpress/0"]


async def test_a_principal_entering_twice_creates_no_more_subordinates(
    domain: Domain, telegraf_wordpress: int
) -> None:
    await enter(domain, telegraf_wordpress, "wordpress/0")
    seq = await domain.last_seq()

    again = await enter(domain, telegraf_wordpress, "wordpress/0")

    assert again["created_units"] == []
    assert await domain.events_since(seq) == []
    assert await units_of(domain, "telegraf") == ["telegraf/0"]


async def test_each_principal_unit_gets_its_own_subordinate(domain: Domain, telegraf_wordpress: int) -> None:
    await enter(domain, telegraf_wordpress, "wordpress/0")

    second = await enter(domain, telegraf_wordpress, "wordpress/1")

    assert second["created_units"] == ["telegraf/1"]
    assert await units_of(domain, "telegraf") == ["telegraf/0", "telegraf/1"]


async def test_the_subordinate_unit_enters_beside_its_principal(
    domain: Domain, telegraf_wordpress: int
) -> None:
    await enter(domain, telegraf_wordpress, "wordpress/0")

    result = await enter(domain, telegraf_wordpress, "telegraf/0")

    assert result["created_units"] == []
    assert await in_scope(domain, telegraf_wordpress) == ["telegraf/0", "wordpress/0"]
    assert await domain.run(
        {"type": "relation_units", "relation": telegraf_wordpress, "application": "telegraf"}
    ) == ["telegraf/0"]


async def test_a_subordinate_unit_cannot_enter_beside_another_principal_application(
    domain: Domain, telegraf_wordpress: int
) -> None:
    await domain.deploy("mysql", units=1)
    other = await domain.integrate("telegraf:juju-info", "mysql")
    await enter(domain, telegraf_wordpress, "wordpress/0")

    err = await refused(enter(domain, other["id"], "telegraf/0"))

    assert err.code == "PotentialRelationUnitNotValid"
    assert "telegraf/0" in err.message
    assert await in_scope(domain, other["id"]) == []


async def test_a_subordinate_unit_may_enter_a_global_relation(
    domain: Domain, telegraf_wordpress: int
) -> None:
    await domain.deploy("mysql", units=1)
    global_rel = await domain.integrate("telegraf", "mysql")
    await enter(domain, telegraf_wordpress, "wordpress/0")

    await enter(domain, global_rel["id"], "telegraf/0")

    assert global_rel["scope"] == "global"
    assert await in_scope(domain, global_rel["id"]) == ["telegraf/0"]


async def test_a_second_container_relation_with_the_same_subordinate_reuses_its_unit(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("nrpe")
    monitors = await domain.integrate("nrpe", "mysql")
    info = await domain.integrate("nrpe:general-info", "mysql")
    first = await enter(domain, monitors["id"], "mysql/0")

    second = await enter(domain, info["id"], "mysql/0")

    assert first["created_units"] == ["nrpe/0"]
    assert second["created_units"] == []
    assert await units_of(domain, "nrpe") == ["nrpe/0"]


async def test_a_principal_cannot_enter_when_its_subordinate_is_dying(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("nrpe")
    monitors = await domain.integrate("nrpe", "mysql")
    info = await domain.integrate("nrpe:general-info", "mysql")
    await enter(domain, monitors["id"], "mysql/0")
    await enter(domain, monitors["id"], "nrpe/0")
    await domain.run({"type": "remove_unit", "unit": "nrpe/0"})
    seq = await domain.last_seq()

    err = await refused(enter(domain, info["id"], "mysql/0"))

    assert err.code == "CannotEnterScopeSubordinateNotAlive"
    assert "nrpe/0" in err.message
    assert await domain.events_since(seq) == []
    assert await in_scope(domain, info["id"]) == []


async def test_a_removed_subordinate_is_replaced_when_its_principal_enters_again(
    domain: Domain, telegraf_wordpress: int
) -> None:
    await enter(domain, telegraf_wordpress, "wordpress/0")
    await domain.run({"type": "remove_unit", "unit": "telegraf/0"})
    await leave(domain, telegraf_wordpress, "wordpress/0")

    again = await enter(domain, telegraf_wordpress, "wordpress/0")

    assert again["created_units"] == ["telegraf/1"]
    assert await units_of(domain, "telegraf") == ["telegraf/1"]
