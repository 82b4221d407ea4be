"""The snapshot read: what a unit or a model's watcher needs now, at the log position it matches."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.settings_bag import bag_hash
from tests.domain import CommandFailed, Domain


async def _db_and_sub(d: Domain) -> tuple[Any, Any]:
    await d.deploy("mysql", units=2)
    await d.deploy("wordpress", units=2)
    await d.deploy("telegraf")
    db = await d.integrate("wordpress", "mysql")
    sub = await d.integrate("telegraf:juju-info", "wordpress")
    for unit in ("wordpress/0", "wordpress/1"):
        await d.run({"type": "enter_scope", "relation": sub["id"], "unit": unit})
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "mysql/0", "settings": {"host": "db0"}})
    await d.run({"type": "enter_scope", "relation": db["id"], "unit": "wordpress/0"})
    await d.run(
        {"type": "set_application_settings", "relation": db["id"], "unit": "mysql/0", "settings": {"p": "s"}}
    )
    return db, sub


def _by_id(snap: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in snap["relations"]}


async def test_unit_snapshot_shows_its_relations_remote_units_and_hashes_at_the_last_seq(
    domain: Domain,
) -> None:
    db, sub = await _db_and_sub(domain)
    snap = await domain.run({"type": "snapshot", "unit": "wordpress/0"})
    assert snap["seq"] == await domain.last_seq()
    assert snap["unit"] == "wordpress/0" and snap["principal"] is None
    assert snap["container"] == ["telegraf/0", "wordpress/0"]
    rels = _by_id(snap)
    assert sorted(rels) == sorted([db["id"], sub["id"], 1])  # with its peer relation (id 1)
    dbrel = rels[db["id"]]
    assert dbrel["in_scope"] is True and dbrel["key"] == "wordpress:db mysql:db"
    assert dbrel["life"] == "alive" and dbrel["status"] == "joined" and dbrel["scope"] == "global"
    assert dbrel["units"] == [{"name": "mysql/0", "settings_hash": bag_hash({"host": "db0"})}]
    bags = {b["application"]: b["settings_hash"] for b in dbrel["application_settings"]}
    assert bags == {"wordpress": None, "mysql": bag_hash({"p": "s"})}


async def test_container_relation_shows_only_the_units_own_container(domain: Domain) -> None:
    _, sub = await _db_and_sub(domain)
    for unit in ("telegraf/0", "telegraf/1"):
        await domain.run({"type": "enter_scope", "relation": sub["id"], "unit": unit})
    t1 = _by_id(await domain.run({"type": "snapshot", "unit": "telegraf/1"}))[sub["id"]]
    assert [u["name"] for u in t1["units"]] == ["wordpress/1"]
    w0 = _by_id(await domain.run({"type": "snapshot", "unit": "wordpress/0"}))[sub["id"]]
    assert [u["name"] for u in w0["units"]] == ["telegraf/0"]
    snap = await domain.run({"type": "snapshot", "unit": "telegraf/1"})
    assert snap["principal"] == "wordpress/1" and snap["container"] == ["telegraf/1", "wordpress/1"]


async def test_model_snapshot_shows_every_relation_and_every_unit_in_scope(domain: Domain) -> None:
    db, sub = await _db_and_sub(domain)
    snap = await domain.run({"type": "snapshot"})
    assert snap["unit"] is None and snap["seq"] == await domain.last_seq()
    rels = _by_id(snap)
    assert [u["name"] for u in rels[sub["id"]]["units"]] == ["wordpress/0", "wordpress/1"]
    assert [u["name"] for u in rels[db["id"]]["units"]] == ["wordpress/0", "mysql/0"]
    assert rels[db["id"]]["in_scope"] is None


async def test_snapshot_of_an_unknown_unit_is_refused(domain: Domain) -> None:
    with pytest.raises(CommandFailed) as info:
        await domain.run({"type": "snapshot", "unit": "ghost/0"})
    assert info.value.code == "UnitNotFound" and "ghost/0" in info.value.message
