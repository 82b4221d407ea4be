"""A container-scoped relation is seen per container (Juju 3.x TestContainerSettings,
TestContainerWatchScope): read as a unit, only the units of its own container (a principal and
the subordinates created for it) are in scope; the operator, reading as no unit, sees all."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import Domain, enter, refused


async def listed(domain: Domain, relation: int, as_unit: str | None = None, app: str | None = None) -> Any:
    body: dict[str, Any] = {"type": "relation_units", "relation": relation}
    if as_unit is not None:
        body["as_unit"] = as_unit
    if app is not None:
        body["application"] = app
    return await domain.run(body)


async def read(domain: Domain, relation: int, unit: str, as_unit: str | None = None) -> Any:
    body: dict[str, Any] = {"type": "get_unit_settings", "relation": relation, "unit": unit}
    if as_unit is not None:
        body["as_unit"] = as_unit
    return await domain.run(body)


@pytest.fixture
async def sub(domain: Domain) -> int:
    """telegraf:juju-info wordpress:juju-info with two containers, every unit in scope with a
    bag naming it: wordpress/0 + telegraf/0, wordpress/1 + telegraf/1."""
    await domain.deploy("wordpress", units=2)
    await domain.deploy("telegraf")
    rel = int((await domain.integrate("telegraf", "wordpress"))["id"])
    for n in (0, 1):
        await enter(domain, rel, f"wordpress/{n}", {"me": f"wordpress/{n}"})
        await enter(domain, rel, f"telegraf/{n}", {"me": f"telegraf/{n}"})
    return rel


async def test_a_unit_lists_only_its_own_container(domain: Domain, sub: int) -> None:
    seq = await domain.last_seq()

    assert await listed(domain, sub, as_unit="wordpress/0") == ["telegraf/0", "wordpress/0"]
    assert await listed(domain, sub, as_unit="telegraf/1") == ["telegraf/1", "wordpress/1"]
    assert await listed(domain, sub, as_unit="wordpress/1", app="telegraf") == ["telegraf/1"]
    assert await domain.events_since(seq) == []


async def test_the_operator_lists_every_container(domain: Domain, sub: int) -> None:
    everyone = ["telegraf/0", "telegraf/1", "wordpress/0", "wordpress/1"]

    assert await listed(domain, sub) == everyone
    assert (await domain.run({"type": "get_relation", "relation": sub}))["units_in_scope"] == everyone


async def test_a_unit_reads_settings_only_in_its_own_container(domain: Domain, sub: int) -> None:
    assert await read(domain, sub, "telegraf/0", as_unit="wordpress/0") == {"me": "telegraf/0"}
    assert await read(domain, sub, "wordpress/1", as_unit="telegraf/1") == {"me": "wordpress/1"}
    assert await read(domain, sub, "wordpress/0", as_unit="wordpress/0") == {"me": "wordpress/0"}

    other_sub = await refused(read(domain, sub, "telegraf/1", as_unit="wordpress/0"))
    other_principal = await refused(read(domain, sub, "wordpress/0", as_unit="telegraf/1"))

    # Refused as a unit not in the relation's scope is (Juju: "settings not found").
    assert other_sub.code == other_principal.code == "RelationUnitNotFound"
    assert "telegraf/1" in other_sub.message and "another container" in other_sub.message


async def test_the_operator_reads_every_containers_settings(domain: Domain, sub: int) -> None:
    assert await read(domain, sub, "telegraf/1") == {"me": "telegraf/1"}
    assert await read(domain, sub, "wordpress/0") == {"me": "wordpress/0"}


async def test_a_departed_unit_is_read_only_from_its_own_container(domain: Domain, sub: int) -> None:
    await domain.run({"type": "leave_scope", "relation": sub, "unit": "telegraf/1"})

    assert await read(domain, sub, "telegraf/1", as_unit="wordpress/1") == {"me": "telegraf/1"}
    assert (
        await refused(read(domain, sub, "telegraf/1", as_unit="wordpress/0"))
    ).code == "RelationUnitNotFound"
    assert await listed(domain, sub, as_unit="wordpress/1") == ["wordpress/1"]


async def test_the_acting_unit_must_exist_and_be_in_the_relation(domain: Domain, sub: int) -> None:
    await domain.deploy("mysql", units=1)

    unknown = await refused(listed(domain, sub, as_unit="wordpress/9"))
    outsider = await refused(listed(domain, sub, as_unit="mysql/0"))
    outsider_read = await refused(read(domain, sub, "telegraf/0", as_unit="mysql/0"))

    assert unknown.code == "UnitNotFound"
    assert outsider.code == outsider_read.code == "UnitNotInRelation"


async def test_two_subordinates_of_one_principal_share_its_container(domain: Domain, sub: int) -> None:
    """telegraf/N and nrpe/N, both created for wordpress/N, see each other across their own
    container-scoped relation, and not the other principal's."""
    await domain.deploy("nrpe")
    nrpe_wp = int((await domain.integrate("nrpe:general-info", "wordpress"))["id"])
    for n in (0, 1):
        await enter(domain, nrpe_wp, f"wordpress/{n}")
    subs = int((await domain.integrate("telegraf", "nrpe"))["id"])
    for unit in ("telegraf/0", "telegraf/1", "nrpe/0", "nrpe/1"):
        await enter(domain, subs, unit, {"me": unit})

    assert await listed(domain, subs, as_unit="nrpe/0") == ["telegraf/0", "nrpe/0"]
    assert await read(domain, subs, "telegraf/0", as_unit="nrpe/0") == {"me": "telegraf/0"}
    assert (await refused(read(domain, subs, "telegraf/1", as_unit="nrpe/0"))).code == "RelationUnitNotFound"


async def test_a_global_relation_is_seen_whole_by_every_unit(domain: Domain) -> None:
    await domain.deploy("wordpress", units=2)
    await domain.deploy("mysql", units=1)
    rel = int((await domain.integrate("wordpress", "mysql"))["id"])
    for unit in ("wordpress/0", "wordpress/1", "mysql/0"):
        await enter(domain, rel, unit, {"me": unit})

    assert await listed(domain, rel, as_unit="wordpress/0") == ["wordpress/0", "wordpress/1", "mysql/0"]
    assert await read(domain, rel, "wordpress/1", as_unit="mysql/0") == {"me": "wordpress/1"}
