"""The rows handlers share, typed: what a model, a relation, an application, a unit and a
relation's endpoint are to the code that reads them, so a function's signature says what it takes.

Each is made at the lookup boundary by ``from_record`` from an asyncpg Record (or a mapping with
the same columns); ``prefix`` reads columns named ``<prefix><field>``, as one query returning
several projections side by side names them (handlers/unit_in_relation.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.charm import Role, Scope
from contracts.commands import RelationStatus
from handlers.values import Life

Row = Mapping[str, Any]  # an asyncpg Record, or a dict with its columns


@dataclass(frozen=True, slots=True)
class Model:
    """The model a command acts on."""

    uuid: str
    name: str

    @classmethod
    def from_record(cls, row: Row) -> Model:
        return cls(row["uuid"], row["name"])


@dataclass(frozen=True, slots=True)
class RelationKey:
    """What names a relation in change events (and in messages): its uuid, id and key."""

    uuid: str
    relation_id: int
    key: str

    @classmethod
    def from_record(cls, row: Row) -> RelationKey:
        return cls(row["uuid"], row["relation_id"], row["key"])


@dataclass(frozen=True, slots=True)
class Relation(RelationKey):
    """A relation with its life, scope and status (lookup.relation's columns)."""

    is_peer: bool
    life: Life
    scope: Scope
    status: RelationStatus
    message: str

    @classmethod
    def from_record(cls, row: Row) -> Relation:
        return cls(
            uuid=row["uuid"],
            relation_id=row["relation_id"],
            key=row["key"],
            is_peer=row["is_peer"],
            life=Life(row["life_id"]),
            scope=Scope(row["scope"]),
            status=RelationStatus(row["status"]),
            message=row["message"],
        )


@dataclass(frozen=True, slots=True)
class Application:
    """An application and whether its charm is subordinate."""

    uuid: str
    name: str
    life: Life
    subordinate: bool

    @classmethod
    def from_record(cls, row: Row) -> Application:
        return cls(row["uuid"], row["name"], Life(row["life_id"]), row["subordinate"])


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit with its application (name, life, whether subordinate) and its principal's uuid."""

    uuid: str
    name: str
    life: Life
    application_uuid: str
    application_name: str
    application_life: Life
    subordinate: bool
    principal_uuid: str | None

    @classmethod
    def from_record(cls, row: Row, prefix: str = "") -> Unit:
        return cls(**_unit_fields(row, prefix))


@dataclass(frozen=True, slots=True)
class ActingUnit(Unit):
    """A unit acting in a relation, with its principal's application and its application's
    leader (names, or None)."""

    principal_application: str | None
    leader: str | None

    @classmethod
    def from_record(cls, row: Row, prefix: str = "") -> ActingUnit:
        return cls(
            **_unit_fields(row, prefix),
            principal_application=row[f"{prefix}principal_application"],
            leader=row[f"{prefix}leader"],
        )


def _unit_fields(row: Row, prefix: str) -> dict[str, Any]:
    def col(name: str) -> Any:
        return row[prefix + name]

    return {
        "uuid": col("uuid"),
        "name": col("name"),
        "life": Life(col("life_id")),
        "application_uuid": col("application_uuid"),
        "application_name": col("application_name"),
        "application_life": Life(col("application_life_id")),
        "subordinate": col("subordinate"),
        "principal_uuid": col("principal_uuid"),
    }


@dataclass(frozen=True, slots=True)
class RelationEndpoint:
    """An application's endpoint in a relation (v_relation_endpoint's columns); ``scope`` is the
    relation's, ``position`` 0 for the requirer side."""

    relation_endpoint_uuid: str
    endpoint_uuid: str
    application_uuid: str
    application_name: str
    subordinate: bool
    endpoint_name: str
    role: Role
    interface: str
    scope: Scope
    capacity: int | None
    optional: bool
    position: int

    @classmethod
    def from_record(cls, row: Row, prefix: str = "") -> RelationEndpoint:
        return cls(**_endpoint_fields(row, prefix))


@dataclass(frozen=True, slots=True)
class ScopedEndpoint(RelationEndpoint):
    """A relation endpoint with the acting unit's scope row in it (None: not in scope there)."""

    relation_unit_uuid: str | None

    @classmethod
    def from_record(cls, row: Row, prefix: str = "") -> ScopedEndpoint:
        return cls(**_endpoint_fields(row, prefix), relation_unit_uuid=row[f"{prefix}relation_unit_uuid"])


def _endpoint_fields(row: Row, prefix: str) -> dict[str, Any]:
    def col(name: str) -> Any:
        return row[prefix + name]

    return {
        "relation_endpoint_uuid": col("relation_endpoint_uuid"),
        "endpoint_uuid": col("endpoint_uuid"),
        "application_uuid": col("application_uuid"),
        "application_name": col("application_name"),
        "subordinate": col("subordinate"),
        "endpoint_name": col("endpoint_name"),
        "role": Role(col("role")),
        "interface": col("interface"),
        "scope": Scope(col("scope")),
        "capacity": col("capacity"),
        "optional": col("optional"),
        "position": col("position"),
    }
