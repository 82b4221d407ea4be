"""Finding the things commands name, raising the error that names what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from asyncpg import Record

from contracts import errors
from contracts.names import is_uuid, unit_application
from handlers.db import Connection
from handlers.rows import Application, Model, Relation, RelationEndpoint, RelationKey, Unit

_MODEL_BY_UUID = "SELECT uuid, name FROM model WHERE uuid = $1::uuid"
_MODEL_BY_NAME = "SELECT uuid, name FROM model WHERE name = $1"
# The model ($1, name or UUID) and user $2's level on it (NULL: no access), for the access check:
# always one row, whose uuid is NULL when there is no such model. The daemon puts its claim of
# the command id before it (``before``, ``columns``), to open a write in one round trip.
_MODEL_ACCESS = """
WITH {before}m AS (
    SELECT uuid, name FROM model WHERE {matches}{lock}
)
SELECT {columns}m.uuid, m.name, a.level_id
FROM (SELECT) AS one
LEFT JOIN m ON true
LEFT JOIN model_access a ON a.model_uuid = m.uuid AND a.user_name = $2
"""


def model_access_sql(*, by_uuid: bool, lock: bool, before: str = "", columns: str = "") -> str:
    """The model-and-access query; ``before``: CTEs ending in a comma, ``columns``: more columns
    ending in a comma."""
    return _MODEL_ACCESS.format(
        before=before,
        matches="uuid = $1::uuid" if by_uuid else "name = $1",
        lock=" FOR NO KEY UPDATE" if lock else "",
        columns=columns,
    )


_MODEL_ACCESS_SQL = {
    (u, k): model_access_sql(by_uuid=u, lock=k) for u in (False, True) for k in (False, True)
}

_APPLICATION = """
SELECT a.uuid, a.name, a.life_id, c.subordinate
FROM application a
JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
WHERE a.model_uuid = $1 AND a.name = $2
"""

_UNIT = """
SELECT u.uuid, u.name, u.life_id, u.application_uuid, u.principal_uuid,
       a.name AS application_name, a.life_id AS application_life_id, c.subordinate
FROM unit u
JOIN application a ON a.model_uuid = u.model_uuid AND a.uuid = u.application_uuid
JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
WHERE u.model_uuid = $1 AND u.name = $2
"""

# A relation with its scope and status, as Relation.from_record reads it; add the WHERE.
RELATION_COLUMNS = """
SELECT r.uuid, r.relation_id, r.key, r.is_peer, r.life_id, r.created_at,
       crs.name AS scope, rst.name AS status, rs.message
FROM relation r
JOIN charm_relation_scope crs ON crs.id = r.scope_id
JOIN relation_status rs ON rs.model_uuid = r.model_uuid AND rs.relation_uuid = r.uuid
JOIN relation_status_type rst ON rst.id = rs.status_type_id
"""
_RELATION_BY_ID = RELATION_COLUMNS + "WHERE r.model_uuid = $1 AND r.relation_id = $2"
_RELATION_BY_UUID = RELATION_COLUMNS + "WHERE r.model_uuid = $1 AND r.uuid = $2::uuid"

_LEADER_OF = """
SELECT u.name FROM application_leader l
JOIN unit u ON u.model_uuid = l.model_uuid AND u.uuid = l.unit_uuid
WHERE l.model_uuid = $1 AND l.application_uuid = $2
"""
_RELATION_ENDPOINTS = """
SELECT relation_endpoint_uuid, endpoint_uuid, application_uuid, application_name, subordinate,
       endpoint_name, role, interface, scope, capacity, optional, position
FROM v_relation_endpoint
WHERE model_uuid = $1 AND relation_uuid = $2
ORDER BY position
"""


def model_not_found(ref: str) -> errors.RelationdError:
    return errors.ModelNotFound(f"model {ref!r} not found", model=ref)


async def model(conn: Connection, ref: str, *, lock: bool) -> Model:
    """The model named by name or UUID; with ``lock``, serialise this model's writers on it.

    Raises ModelNotFound.
    """
    query = _MODEL_BY_UUID if is_uuid(ref) else _MODEL_BY_NAME
    if lock:
        query += " FOR NO KEY UPDATE"
    row = await conn.fetchrow(query, ref)
    if row is None:
        raise model_not_found(ref)
    return Model.from_record(row)


async def model_and_level(
    conn: Connection, ref: str, user: str | None, *, lock: bool
) -> tuple[Record, int | None]:
    """The model (locked with ``lock``) and ``user``'s access level id on it, in one round trip.

    Raises ModelNotFound.
    """
    row = await conn.fetchrow(_MODEL_ACCESS_SQL[is_uuid(ref), lock], ref, user)
    if row["uuid"] is None:
        raise model_not_found(ref)
    level: int | None = row["level_id"]
    return row, level


async def application(conn: Connection, model_uuid: str, name: str) -> Application:
    """Raises ApplicationNotFound."""
    row = await conn.fetchrow(_APPLICATION, model_uuid, name)
    if row is None:
        raise errors.ApplicationNotFound(f"application {name!r} not found", application=name)
    return Application.from_record(row)


async def unit(conn: Connection, model_uuid: str, name: str) -> Unit:
    """Raises UnitNotFound."""
    row = await conn.fetchrow(_UNIT, model_uuid, name)
    if row is None:
        raise unit_not_found(name)
    return Unit.from_record(row)


def unit_not_found(name: str) -> errors.RelationdError:
    return errors.UnitNotFound(f"unit {name!r} not found", unit=name)


async def relation(conn: Connection, model_uuid: str, ref: int | str) -> Relation:
    """The relation named by id or UUID. Raises RelationNotFound."""
    if isinstance(ref, int):
        row = await conn.fetchrow(_RELATION_BY_ID, model_uuid, ref)
    else:
        row = await conn.fetchrow(_RELATION_BY_UUID, model_uuid, ref)
    if row is None:
        raise relation_not_found(ref)
    return Relation.from_record(row)


def relation_not_found(ref: int | str) -> errors.RelationdError:
    return errors.RelationNotFound(f"relation {ref} not found", relation=ref)


async def relation_endpoints(conn: Connection, model_uuid: str, relation_uuid: str) -> list[RelationEndpoint]:
    """The relation's endpoints, requirer side first."""
    rows = await conn.fetch(_RELATION_ENDPOINTS, model_uuid, relation_uuid)
    return [RelationEndpoint.from_record(r) for r in rows]


E = TypeVar("E", bound=RelationEndpoint)


def endpoint_of(endpoints: Sequence[E], application_name: str) -> E | None:
    """The relation endpoint of an application, if it takes part in the relation."""
    return next((e for e in endpoints if e.application_name == application_name), None)


def endpoint_for_unit(endpoints: Sequence[E], rel: RelationKey, unit_name: str) -> E:
    """The endpoint the unit's application has in the relation. Raises UnitNotInRelation."""
    ep = endpoint_of(endpoints, unit_application(unit_name))
    if ep is None:
        raise errors.UnitNotInRelation(
            f"unit {unit_name!r} is not in relation {rel.relation_id} ({rel.key})",
            unit=unit_name,
            relation_id=rel.relation_id,
        )
    return ep


async def leader_of(conn: Connection, model_uuid: str, application_uuid: str) -> str | None:
    name: str | None = await conn.fetchval(_LEADER_OF, model_uuid, application_uuid)
    return name


async def require_leader(conn: Connection, model_uuid: str, unit: Unit, action: str) -> None:
    """Raises NotLeader unless the unit leads its application."""
    check_leader(unit, await leader_of(conn, model_uuid, unit.application_uuid), action)


def check_leader(unit: Unit, leader: str | None, action: str) -> None:
    """Raises NotLeader unless the unit is ``leader``, its application's leader (None: none)."""
    if leader != unit.name:
        raise errors.NotLeader(
            f"unit {unit.name!r} cannot {action}: it is not the leader of "
            f"{unit.application_name!r} (leader: {leader or 'none'})",
            unit=unit.name,
            application=unit.application_name,
        )
