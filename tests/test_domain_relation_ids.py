"""Relation ids: 0, 1, 2... from each model's own sequence, in creation order, never reused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain import CommandFailed, Domain

CLIENT = {"name": "client", "requires": {"certificates": "tls-certificates"}}


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


async def relation_ids(domain: Domain) -> list[int]:
    return [r["id"] for r in await domain.run({"type": "list_relations"})]


async def test_relation_ids_start_at_zero_in_creation_order(domain: Domain) -> None:
    await domain.deploy("client", metadata=CLIENT)
    for ca in ("ca-one", "ca-two", "ca-three"):
        await domain.deploy(ca, "self-signed-certificates")

    created = [(await domain.integrate("client", ca))["id"] for ca in ("ca-one", "ca-two", "ca-three")]

    assert created == [0, 1, 2]
    assert await relation_ids(domain) == [0, 1, 2]


async def test_peer_relations_from_deploy_take_ids_too(domain: Domain) -> None:
    mysql = await domain.deploy("mysql")
    wordpress = await domain.deploy("wordpress")

    rel = await domain.integrate("wordpress", "mysql")

    assert mysql["peer_relations"] == [{"id": 0, "key": "mysql:cluster"}]
    assert wordpress["peer_relations"] == [{"id": 1, "key": "wordpress:loadbalancer"}]
    assert rel["id"] == 2


async def test_a_removed_relation_id_is_never_handed_out_again(domain: Domain) -> None:
    await domain.deploy("client", metadata=CLIENT)
    await domain.deploy("ca-one", "self-signed-certificates")
    await domain.deploy("ca-two", "self-signed-certificates")
    first = await domain.integrate("client", "ca-one")
    await domain.run({"type": "remove_relation", "relation": first["id"]})

    again = await domain.integrate("client", "ca-one")
    other = await domain.integrate("client", "ca-two")

    assert (first["id"], again["id"], other["id"]) == (0, 1, 2)
    assert await relation_ids(domain) == [1, 2]


async def test_peer_relation_ids_of_a_removed_application_are_not_reused(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.run({"type": "remove_application", "application": "wordpress"})

    redeployed = await domain.deploy("wordpress")

    assert redeployed["peer_relations"] == [{"id": 1, "key": "wordpress:loadbalancer"}]


async def test_each_model_has_its_own_relation_sequence(domain: Domain, pool: Any) -> None:
    other = Domain(pool)
    await other.new_model()
    await domain.deploy("mysql")
    await domain.deploy("wordpress")
    await domain.integrate("wordpress", "mysql")

    first_in_other = await other.deploy("postgresql")
    next_in_domain = await domain.deploy("postgresql")

    assert [p["id"] for p in first_in_other["peer_relations"]] == [0, 1, 2]
    assert [p["id"] for p in next_in_domain["peer_relations"]] == [3, 4, 5]


async def test_a_refused_integrate_hands_out_no_id(domain: Domain) -> None:
    await domain.deploy("client", metadata=CLIENT)
    await domain.deploy("ca-one", "self-signed-certificates")
    await domain.integrate("client", "ca-one")

    err = await refused(domain.integrate("client", "ca-one"))
    await domain.deploy("ca-two", "self-signed-certificates")
    rel = await domain.integrate("client", "ca-two")

    assert err.code == "RelationAlreadyExists"
    assert rel["id"] == 1


async def test_relation_ids_are_addressable_by_uuid_and_back(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("wordpress")
    rel = await domain.integrate("wordpress", "mysql")

    by_uuid = await domain.run({"type": "get_relation", "relation": rel["uuid"]})
    by_id = await domain.run({"type": "get_relation", "relation": rel["id"]})

    assert by_uuid["id"] == rel["id"] == 2
    assert by_id["uuid"] == rel["uuid"]
