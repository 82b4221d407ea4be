"""Creating a relation's rows and reading one back as a RelationInfo."""

from __future__ import annotations

from contracts.replies import RelationEndpointInfo, RelationInfo
from handlers import lookup
from handlers.db import Connection
from handlers.rows import Relation, RelationEndpoint
from handlers.values import RelationStatusId, ScopeId

# A relation in one round trip: the model's next id, the relation, its endpoints (requirer first)
# and status joining; nothing, and the holder's id, if the key is taken.
_CREATE_RELATION = f"""
WITH taken AS (
    SELECT relation_id FROM relation WHERE model_uuid = $1 AND key = $3
), next_id AS (
    UPDATE relation_sequence SET value = value + 1
    WHERE model_uuid = $1 AND NOT EXISTS (SELECT FROM taken)
    RETURNING value - 1 AS relation_id
), rel AS (
    INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer, scope_id)
    SELECT $1, $2, relation_id, $3, $8, $4 FROM next_id
    RETURNING uuid, relation_id
), endpoints AS (
    INSERT INTO relation_endpoint (model_uuid, uuid, relation_uuid, endpoint_uuid, application_uuid, position)
    SELECT $1, e.uuid, rel.uuid, e.endpoint_uuid, e.application_uuid, (e.ord - 1)::smallint
    FROM rel, unnest($5::uuid[], $6::uuid[], $7::uuid[]) WITH ORDINALITY
        AS e (uuid, endpoint_uuid, application_uuid, ord)
), status AS (
    INSERT INTO relation_status (model_uuid, relation_uuid, status_type_id)
    SELECT $1, uuid, {RelationStatusId.joining:d} FROM rel
)
SELECT (SELECT relation_id FROM rel) AS relation_id, (SELECT relation_id FROM taken) AS taken_id
"""
_UNITS_IN_SCOPE = """
SELECT u.name FROM relation_unit ru
JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
WHERE re.model_uuid = $1 AND re.relation_uuid = $2
  AND ($3::uuid IS NULL OR COALESCE(u.principal_uuid, u.uuid) = $3)
ORDER BY re.position, u.number
"""


async def create_relation(
    conn: Connection,
    model_uuid: str,
    *,
    relation_uuid: str,
    key: str,
    is_peer: bool,
    container: bool,
    endpoints: list[tuple[str, str, str]],
) -> tuple[int | None, int | None]:
    """A relation with the model's next id, its endpoints and status joining, unless ``key`` is
    taken.

    ``endpoints`` are (relation endpoint uuid, application endpoint uuid, application uuid), requirer
    first. Returns (the new relation id, None), or (None, the id of the relation that has ``key``).
    """
    row = await conn.fetchrow(
        _CREATE_RELATION,
        model_uuid,
        relation_uuid,
        key,
        ScopeId.container if container else ScopeId.global_,
        *(list(column) for column in zip(*endpoints, strict=True)),
        is_peer,
    )
    if row["relation_id"] is None and row["taken_id"] is None:
        raise RuntimeError(f"model {model_uuid} has no relation sequence")
    return row["relation_id"], row["taken_id"]


async def units_in_scope(
    conn: Connection, model_uuid: str, relation_uuid: str, *, container: str | None = None
) -> list[str]:
    """Names of the units in the relation's scope, requirer side first; with ``container`` (a
    principal unit's uuid), only that principal and its subordinates."""
    rows = await conn.fetch(_UNITS_IN_SCOPE, model_uuid, relation_uuid, container)
    return [r["name"] for r in rows]


def relation_endpoint_info(ep: RelationEndpoint) -> RelationEndpointInfo:
    return RelationEndpointInfo(
        application=ep.application_name,
        relation_endpoint_uuid=ep.relation_endpoint_uuid,
        name=ep.endpoint_name,
        role=ep.role,
        interface=ep.interface,
        scope=ep.scope,
        limit=ep.capacity,
        optional=ep.optional,
    )


async def relation_info(
    conn: Connection, model_uuid: str, rel: Relation, *, with_units: bool = True
) -> RelationInfo:
    endpoints = await lookup.relation_endpoints(conn, model_uuid, rel.uuid)
    return RelationInfo(
        id=rel.relation_id,
        uuid=rel.uuid,
        key=rel.key,
        life=rel.life.label,
        status=rel.status.value,
        message=rel.message,
        scope=rel.scope,
        interface=endpoints[0].interface,
        endpoints=[relation_endpoint_info(e) for e in endpoints],
        units_in_scope=await units_in_scope(conn, model_uuid, rel.uuid) if with_units else [],
    )
