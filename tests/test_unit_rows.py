"""The typed rows handlers share (handlers/rows.py): what from_record reads and makes of it."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from contracts.charm import Role, Scope
from contracts.commands import RelationStatus
from handlers import containers
from handlers.db import Connection
from handlers.rows import ActingUnit, Relation, RelationEndpoint, ScopedEndpoint, Unit
from handlers.values import Life

RELATION = {
    "uuid": "r-1",
    "relation_id": 3,
    "key": "app:db db:db",
    "is_peer": False,
    "life_id": 1,
    "created_at": None,
    "scope": "container",
    "status": "joined",
    "message": "",
}
UNIT = {
    "uuid": "u-1",
    "name": "logging/0",
    "life_id": 0,
    "application_uuid": "a-1",
    "principal_uuid": "u-0",
    "application_name": "logging",
    "application_life_id": 2,
    "subordinate": True,
}
ENDPOINT = {
    "relation_endpoint_uuid": "re-1",
    "endpoint_uuid": "e-1",
    "application_uuid": "a-1",
    "application_name": "logging",
    "subordinate": True,
    "endpoint_name": "juju-info",
    "role": "requirer",
    "interface": "juju-info",
    "scope": "container",
    "capacity": None,
    "optional": False,
    "position": 0,
}


def test_relation_reads_its_named_values_as_enums() -> None:
    rel = Relation.from_record(RELATION)
    assert (rel.life, rel.scope, rel.status) == (Life.dying, Scope.container, RelationStatus.joined)
    assert (rel.uuid, rel.relation_id, rel.key) == ("r-1", 3, "app:db db:db")
    assert containers.per_container(rel)
    assert not containers.per_container(Relation.from_record(RELATION | {"is_peer": True}))


def test_a_value_the_enums_do_not_know_is_refused_at_the_boundary() -> None:
    with pytest.raises(ValueError, match="suspendedish"):
        Relation.from_record(RELATION | {"status": "suspendedish"})


def test_prefixed_columns_as_one_query_returns_them_side_by_side() -> None:
    row = {f"unit_{k}": v for k, v in UNIT.items()} | {
        "unit_principal_application": "wordpress",
        "unit_leader": None,
    }
    row |= {f"ep_{k}": v for k, v in ENDPOINT.items()} | {"ep_relation_unit_uuid": None}
    unit = ActingUnit.from_record(row, prefix="unit_")
    assert unit.principal_application == "wordpress" and unit.leader is None
    assert (unit.life, unit.application_life) == (Life.alive, Life.dead)
    assert containers.of_unit(unit) == "u-0"
    ep = ScopedEndpoint.from_record(row, prefix="ep_")
    assert ep.relation_unit_uuid is None and ep.role is Role.requirer
    assert RelationEndpoint.from_record(ENDPOINT) == RelationEndpoint(
        **{f.name: getattr(ep, f.name) for f in dataclasses.fields(RelationEndpoint)}
    )


def test_a_principal_unit_is_its_own_container_and_rows_are_frozen() -> None:
    unit = Unit.from_record(UNIT | {"principal_uuid": None})
    assert containers.of_unit(unit) == "u-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        unit.name = "other/0"  # type: ignore[misc]


async def test_a_pooled_connection_offers_what_the_connection_protocol_promises(pool: Any) -> None:
    """handlers.db.Connection is checked by mypy against the handlers only (asyncpg ships no types):
    this holds it to what a pooled asyncpg connection (a proxy) really accepts."""
    async with pool.acquire() as conn:
        for name, promised in inspect.getmembers(Connection, inspect.isfunction):
            if name.startswith("_"):
                continue
            offered = inspect.signature(getattr(conn, name)).parameters
            for param in list(inspect.signature(promised).parameters.values())[1:]:
                if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
                    assert param.name in offered, f"{name}: asyncpg takes no {param.name!r}"
        assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
