"""The snapshot read: a unit's (or a model's) relations, units in scope and settings hashes now,
with the log position they correspond to, so a consumer can resume without replaying the log.

The daemon runs every read in one repeatable-read transaction, and a command's changes and
events commit together under the model's lock, so the state read here is exactly the state after
the model's event ``seq``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from asyncpg import Record

from contracts.charm import Role
from contracts.commands import Snapshot
from contracts.names import unit_application
from contracts.snapshot import (
    ApplicationBag,
    ModelSnapshot,
    SnapshotEndpoint,
    SnapshotRelation,
    UnitInScope,
)
from handlers import containers, lookup
from handlers.context import Context
from handlers.outcome import Outcome
from handlers.registry import handles
from handlers.rows import Relation, Unit

_LAST_SEQ = "SELECT value FROM model_event_sequence WHERE model_uuid = $1"
# The relations of one application ($2), or of the whole model ($2 NULL).
_RELATIONS = (
    lookup.RELATION_COLUMNS
    + """WHERE r.model_uuid = $1
  AND ($2::uuid IS NULL OR EXISTS (
      SELECT FROM relation_endpoint re
      WHERE re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid AND re.application_uuid = $2))
ORDER BY r.relation_id
"""
)
# Endpoints and application settings hashes of the relations $2.
_ENDPOINTS = """
SELECT v.relation_uuid, v.application_name, v.endpoint_name, v.role, v.interface, h.sha256
FROM v_relation_endpoint v
LEFT JOIN relation_application_settings_hash h
    ON h.model_uuid = v.model_uuid AND h.relation_endpoint_uuid = v.relation_endpoint_uuid
WHERE v.model_uuid = $1 AND v.relation_uuid = ANY ($2::uuid[])
ORDER BY v.relation_uuid, v.position
"""
# Units in the scope of the relations $2, with their settings hash and container (the principal
# unit: a subordinate's principal, or the unit itself).
_UNITS = """
SELECT re.relation_uuid, u.name, u.uuid, COALESCE(u.principal_uuid, u.uuid) AS container,
       h.sha256
FROM relation_endpoint re
JOIN relation_unit ru ON ru.model_uuid = re.model_uuid AND ru.relation_endpoint_uuid = re.uuid
JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
LEFT JOIN relation_unit_settings_hash h
    ON h.model_uuid = ru.model_uuid AND h.relation_unit_uuid = ru.uuid
WHERE re.model_uuid = $1 AND re.relation_uuid = ANY ($2::uuid[])
ORDER BY re.relation_uuid, re.position, u.number
"""
# The units of one container (a principal, $2, and its subordinates), the principal marked.
_CONTAINER = """
SELECT name, uuid = $2 AS principal
FROM unit WHERE model_uuid = $1 AND (uuid = $2 OR principal_uuid = $2) ORDER BY name
"""


@handles(Snapshot)
async def snapshot(ctx: Context, cmd: Snapshot) -> Outcome:
    """The model's relations now, or those ``cmd.unit`` can see, with the position they are at.

    For a unit: the relations its application is in; in each, whether the unit is in scope, the
    other units in scope it can see (in a container-scoped relation, only its own container: its
    principal and the principal's subordinates) with their settings hashes, and every application
    bag's hash.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    unit = await lookup.unit(conn, m, cmd.unit) if cmd.unit is not None else None
    rels = [
        Relation.from_record(r)
        for r in await conn.fetch(_RELATIONS, m, unit.application_uuid if unit else None)
    ]
    uuids = [r.uuid for r in rels]
    endpoints: dict[Any, list[Record]] = defaultdict(list)
    for row in await conn.fetch(_ENDPOINTS, m, uuids):
        endpoints[row["relation_uuid"]].append(row)
    units: dict[Any, list[Record]] = defaultdict(list)
    for row in await conn.fetch(_UNITS, m, uuids):
        units[row["relation_uuid"]].append(row)
    seq = await conn.fetchval(_LAST_SEQ, m) or 0
    relations = [_relation(r, endpoints[r.uuid], units[r.uuid], unit) for r in rels]
    if unit is None:
        return Outcome(ModelSnapshot(model_uuid=str(m), seq=seq, relations=relations))
    leads = await lookup.leader_of(conn, m, unit.application_uuid) == unit.name
    container = await conn.fetch(_CONTAINER, m, containers.of_unit(unit))
    principal = None
    if unit.principal_uuid is not None:
        principal = next(r["name"] for r in container if r["principal"])
    return Outcome(
        ModelSnapshot(
            model_uuid=str(m),
            seq=seq,
            unit=unit.name,
            leader=leads,
            principal=principal,
            container=[r["name"] for r in container],
            relations=relations,
        )
    )


def _relation(
    rel: Relation, endpoints: list[Record], in_scope: list[Record], unit: Unit | None
) -> SnapshotRelation:
    mine: bool | None = None
    seen = in_scope
    if unit is not None:
        mine = any(u["uuid"] == unit.uuid for u in in_scope)
        own = unit.application_name
        remote = {e["application_name"] for e in endpoints if e["application_name"] != own} or {own}
        seen = [u for u in in_scope if u["uuid"] != unit.uuid and unit_application(u["name"]) in remote]
        container = containers.seen_from(rel, unit)
        if container is not None:
            seen = [u for u in seen if u["container"] == container]
    return SnapshotRelation(
        id=rel.relation_id,
        uuid=str(rel.uuid),
        key=rel.key,
        life=rel.life.label,
        status=rel.status.value,
        message=rel.message,
        scope=rel.scope,
        peer=rel.is_peer,
        endpoints=[
            SnapshotEndpoint(
                application=e["application_name"],
                name=e["endpoint_name"],
                role=Role(e["role"]),
                interface=e["interface"],
            )
            for e in endpoints
        ],
        in_scope=mine,
        units=[UnitInScope(name=u["name"], settings_hash=u["sha256"]) for u in seen],
        application_settings=[
            ApplicationBag(application=e["application_name"], settings_hash=e["sha256"]) for e in endpoints
        ],
    )
