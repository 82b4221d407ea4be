"""Removing a relation, and the reads about relations."""

from __future__ import annotations

from contracts import errors
from contracts.commands import (
    GetRelation,
    ListRelations,
    RelationEndpointUuid,
    RelationIds,
    RemoveRelation,
    UnitRelations,
)
from contracts.names import split_endpoint
from contracts.replies import RelationLifeResult, UnitRelationInfo
from handlers import lifecycle, lookup
from handlers.context import Context
from handlers.db import Connection
from handlers.outcome import Outcome
from handlers.registry import handles
from handlers.relation_rows import relation_info
from handlers.values import Life, RelationStatusId

_RELATION_BY_ENDPOINTS = """
SELECT r.relation_id FROM relation r
WHERE r.model_uuid = $1 AND NOT r.is_peer
  AND (SELECT array_agg(v.application_name || ':' || v.endpoint_name ORDER BY 1)
       FROM v_relation_endpoint v
       WHERE v.model_uuid = r.model_uuid AND v.relation_uuid = r.uuid)
      = (SELECT array_agg(x ORDER BY x) FROM unnest($2::text[]) AS x)
"""
_RELATIONS_OF_APPLICATIONS = """
SELECT DISTINCT r.relation_id FROM relation r
JOIN relation_endpoint a ON a.model_uuid = r.model_uuid AND a.relation_uuid = r.uuid
JOIN application aa ON aa.model_uuid = a.model_uuid AND aa.uuid = a.application_uuid
JOIN relation_endpoint b ON b.model_uuid = r.model_uuid AND b.relation_uuid = r.uuid
JOIN application ab ON ab.model_uuid = b.model_uuid AND ab.uuid = b.application_uuid
WHERE r.model_uuid = $1 AND aa.name = $2 AND ab.name = $3 AND NOT r.is_peer
  AND ($4::text IS NULL OR EXISTS (
        SELECT 1 FROM v_relation_endpoint v WHERE v.model_uuid = r.model_uuid
        AND v.relation_uuid = r.uuid AND v.application_name = $2 AND v.endpoint_name = $4))
  AND ($5::text IS NULL OR EXISTS (
        SELECT 1 FROM v_relation_endpoint v WHERE v.model_uuid = r.model_uuid
        AND v.relation_uuid = r.uuid AND v.application_name = $3 AND v.endpoint_name = $5))
ORDER BY r.relation_id
"""
_RELATION_IDS_OF_MODEL = """
SELECT r.relation_id FROM relation r WHERE r.model_uuid = $1 ORDER BY r.relation_id
"""
_RELATION_IDS_OF_APPLICATION = """
SELECT DISTINCT re.relation_id FROM v_relation_endpoint re
WHERE re.model_uuid = $1 AND re.application_uuid = $2 ORDER BY re.relation_id
"""
_RELATION_IDS_OF_ENDPOINT = """
SELECT re.relation_id FROM v_relation_endpoint re
WHERE re.model_uuid = $1 AND re.application_uuid = $2 AND re.endpoint_name = $3
ORDER BY re.relation_id
"""
_ENDPOINT_EXISTS = """
SELECT 1 FROM v_application_endpoint
WHERE model_uuid = $1 AND application_uuid = $2 AND endpoint_name = $3
"""
_UNIT_RELATIONS = f"""
SELECT re.relation_id, re.relation_uuid, r.key, re.endpoint_name, r.life_id,
       rs.status_type_id = {RelationStatusId.suspended:d} AS suspended,
       EXISTS (SELECT 1 FROM relation_unit ru
               WHERE ru.model_uuid = re.model_uuid AND ru.relation_endpoint_uuid = re.relation_endpoint_uuid
                 AND ru.unit_uuid = $3) AS in_scope
FROM v_relation_endpoint re
JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
JOIN relation_status rs ON rs.model_uuid = r.model_uuid AND rs.relation_uuid = r.uuid
WHERE re.model_uuid = $1 AND re.application_uuid = $2
ORDER BY re.relation_id
"""


@handles(RemoveRelation)
async def remove_relation(ctx: Context, cmd: RemoveRelation) -> Outcome:
    """Make a relation dying, status broken; removed at once if no unit is in scope. Idempotent."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    ref = await _relation_ref(conn, m, cmd)
    rel = await lookup.relation(conn, m, ref)
    if rel.is_peer:
        raise errors.CannotRemovePeerRelation(
            f"relation {rel.relation_id} ({rel.key}) is a peer relation; it goes with its application",
            relation_id=rel.relation_id,
        )
    out = await lifecycle.relation_dying(conn, m, rel.uuid, "relation removed")
    out += await lifecycle.reap(conn, m)
    gone = any(c.kind == "removed" and c.relation_id == rel.relation_id for c in out)
    return Outcome(RelationLifeResult(id=rel.relation_id, life="dead" if gone else "dying"), out)


async def _relation_ref(conn: Connection, model_uuid: str, cmd: RemoveRelation) -> int | str:
    if (cmd.relation is None) == (cmd.endpoints is None):
        raise errors.InvalidCommand(
            "remove_relation takes either 'relation' or 'endpoints', not both or neither",
            field="relation",
        )
    if cmd.relation is not None:
        return cmd.relation
    assert cmd.endpoints is not None
    (app1, ep1), (app2, ep2) = (split_endpoint(e) for e in cmd.endpoints)
    for app in (app1, app2):
        await lookup.application(conn, model_uuid, app)
    ids = [
        r["relation_id"]
        for r in await conn.fetch(_RELATIONS_OF_APPLICATIONS, model_uuid, app1, app2, ep1, ep2)
    ]
    if not ids:
        raise errors.RelationNotFound(
            f"no relation between {cmd.endpoints[0]!r} and {cmd.endpoints[1]!r}",
            endpoints=list(cmd.endpoints),
        )
    if len(ids) > 1:
        raise errors.AmbiguousRelation(
            f"{cmd.endpoints[0]!r} and {cmd.endpoints[1]!r} are related more than once "
            f"(ids {', '.join(map(str, ids))}); name the endpoints or the id",
            candidates=ids,
        )
    return int(ids[0])


@handles(GetRelation)
async def get_relation(ctx: Context, cmd: GetRelation) -> Outcome:
    """One relation, by id or UUID, with its endpoints and units in scope."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    rel = await lookup.relation(conn, model.uuid, cmd.relation)
    return Outcome(await relation_info(conn, model.uuid, rel))


@handles(ListRelations)
async def list_relations(ctx: Context, cmd: ListRelations) -> Outcome:
    """All relations of the model, or of one application."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    if cmd.application is None:
        ids = await conn.fetch(_RELATION_IDS_OF_MODEL, m)
    else:
        app = await lookup.application(conn, m, cmd.application)
        ids = await conn.fetch(_RELATION_IDS_OF_APPLICATION, m, app.uuid)
    infos = []
    for row in ids:
        rel = await lookup.relation(conn, m, row["relation_id"])
        infos.append(await relation_info(conn, m, rel))
    return Outcome(infos)


@handles(RelationIds)
async def relation_ids(ctx: Context, cmd: RelationIds) -> Outcome:
    """Ids of the relations on ``app:endpoint`` (or on every endpoint of ``app``)."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    app_name, endpoint = split_endpoint(cmd.endpoint)
    app = await lookup.application(conn, m, app_name)
    if endpoint is None:
        rows = await conn.fetch(_RELATION_IDS_OF_APPLICATION, m, app.uuid)
    else:
        if await conn.fetchval(_ENDPOINT_EXISTS, m, app.uuid, endpoint) is None:
            raise errors.RelationEndpointNotFound(
                f"application {app_name!r} has no endpoint {endpoint!r}", endpoint=cmd.endpoint
            )
        rows = await conn.fetch(_RELATION_IDS_OF_ENDPOINT, m, app.uuid, endpoint)
    return Outcome([r["relation_id"] for r in rows])


@handles(RelationEndpointUuid)
async def relation_endpoint_uuid(ctx: Context, cmd: RelationEndpointUuid) -> Outcome:
    """The UUID of an application's endpoint in a relation."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    await lookup.application(conn, m, cmd.application)
    rel = await lookup.relation(conn, m, cmd.relation)
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid)
    ep = lookup.endpoint_of(endpoints, cmd.application)
    if ep is None:
        raise errors.RelationEndpointNotFound(
            f"application {cmd.application!r} has no endpoint in relation {rel.relation_id} ({rel.key})",
            application=cmd.application,
            relation_id=rel.relation_id,
        )
    return Outcome(ep.relation_endpoint_uuid)


@handles(UnitRelations)
async def unit_relations(ctx: Context, cmd: UnitRelations) -> Outcome:
    """The relations of the unit's application, with whether the unit is in scope and whether
    the relation is suspended."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    unit = await lookup.unit(conn, m, cmd.unit)
    rows = await conn.fetch(_UNIT_RELATIONS, m, unit.application_uuid, unit.uuid)
    return Outcome(
        [
            UnitRelationInfo(
                id=r["relation_id"],
                uuid=r["relation_uuid"],
                key=r["key"],
                endpoint=r["endpoint_name"],
                in_scope=r["in_scope"],
                suspended=r["suspended"],
                life=Life(r["life_id"]).label,
            )
            for r in rows
        ]
    )
