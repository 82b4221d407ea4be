"""Life: alive -> dying -> dead and removed, once nothing depends on a thing any more.

A dying relation is removed when no unit is in its scope; a dying unit when it is in no scope and
has no subordinates; a dying application when it has no units and no relations. Removing one thing
can free another, so :func:`reap` repeats until nothing more can go.
"""

from __future__ import annotations

from handlers import changes
from handlers.db import Connection
from handlers.outcome import Change
from handlers.rows import RelationKey
from handlers.values import Life, RelationStatusId

_RELATION_DYING = f"""
UPDATE relation SET life_id = {Life.dying:d}
WHERE model_uuid = $1 AND uuid = $2 AND life_id = {Life.alive:d}
RETURNING uuid, relation_id, key
"""
_STATUS_BROKEN = f"""
UPDATE relation_status SET status_type_id = {RelationStatusId.broken:d}, message = $3, updated_at = now()
WHERE model_uuid = $1 AND relation_uuid = $2 AND status_type_id <> {RelationStatusId.broken:d}
"""
# In relation id order, not uuid order: the change events of removing an application then come
# out in the same order however often the same commands are applied (uuids are random).
_RELATIONS_OF_APPLICATION = f"""
SELECT DISTINCT r.uuid, r.relation_id FROM relation r
JOIN relation_endpoint re ON re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid
WHERE r.model_uuid = $1 AND re.application_uuid = $2 AND r.life_id = {Life.alive:d}
ORDER BY r.relation_id
"""
_UNIT_DYING = f"""
UPDATE unit SET life_id = {Life.dying:d}
WHERE model_uuid = $1 AND uuid = $2 AND life_id = {Life.alive:d} RETURNING name
"""
_SUBORDINATES_DYING = f"""
UPDATE unit SET life_id = {Life.dying:d}
WHERE model_uuid = $1 AND principal_uuid = $2 AND life_id = {Life.alive:d}
RETURNING name
"""
_REAPABLE_RELATIONS = f"""
SELECT r.uuid, r.relation_id, r.key FROM relation r
WHERE r.model_uuid = $1 AND r.life_id = {Life.dying:d}
  AND NOT EXISTS (
    SELECT 1 FROM relation_unit ru
    JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
    WHERE re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid)
ORDER BY r.relation_id
"""
_RELATION_DEAD = f"UPDATE relation SET life_id = {Life.dead:d} WHERE model_uuid = $1 AND uuid = $2"
_DELETE_RELATION = "DELETE FROM relation WHERE model_uuid = $1 AND uuid = $2"
_REAPABLE_UNITS = f"""
SELECT u.uuid, u.name, u.application_uuid,
       EXISTS (SELECT 1 FROM application_leader l
               WHERE l.model_uuid = u.model_uuid AND l.unit_uuid = u.uuid) AS was_leader
FROM unit u
WHERE u.model_uuid = $1 AND u.life_id = {Life.dying:d}
  AND NOT EXISTS (SELECT 1 FROM relation_unit ru
                  WHERE ru.model_uuid = u.model_uuid AND ru.unit_uuid = u.uuid)
  AND NOT EXISTS (SELECT 1 FROM unit s
                  WHERE s.model_uuid = u.model_uuid AND s.principal_uuid = u.uuid)
ORDER BY u.name
"""
_UNIT_DEAD = f"UPDATE unit SET life_id = {Life.dead:d} WHERE model_uuid = $1 AND uuid = $2"
_DELETE_UNIT = "DELETE FROM unit WHERE model_uuid = $1 AND uuid = $2"
_NEXT_LEADER = f"""
INSERT INTO application_leader (model_uuid, application_uuid, unit_uuid)
SELECT model_uuid, application_uuid, uuid FROM unit
WHERE model_uuid = $1 AND application_uuid = $2 AND life_id = {Life.alive:d}
ORDER BY number LIMIT 1
ON CONFLICT (model_uuid, application_uuid) DO NOTHING
RETURNING (SELECT name FROM unit WHERE model_uuid = $1 AND uuid = unit_uuid)
"""
_APPLICATION_NAME = "SELECT name FROM application WHERE model_uuid = $1 AND uuid = $2"
_REAPABLE_APPLICATIONS = f"""
SELECT a.uuid, a.name, a.charm_uuid FROM application a
WHERE a.model_uuid = $1 AND a.life_id = {Life.dying:d}
  AND NOT EXISTS (SELECT 1 FROM unit u
                  WHERE u.model_uuid = a.model_uuid AND u.application_uuid = a.uuid)
  AND NOT EXISTS (SELECT 1 FROM relation_endpoint re
                  WHERE re.model_uuid = a.model_uuid AND re.application_uuid = a.uuid)
ORDER BY a.name
"""
_APPLICATION_DEAD = f"UPDATE application SET life_id = {Life.dead:d} WHERE model_uuid = $1 AND uuid = $2"
_DELETE_APPLICATION = "DELETE FROM application WHERE model_uuid = $1 AND uuid = $2"
_DELETE_CHARM = "DELETE FROM charm WHERE model_uuid = $1 AND uuid = $2"


async def relation_dying(conn: Connection, model_uuid: str, relation_uuid: str, reason: str) -> list[Change]:
    """Make an alive relation dying and its status broken; nothing if it is already dying."""
    row = await conn.fetchrow(_RELATION_DYING, model_uuid, relation_uuid)
    if row is None:
        return []
    rel = RelationKey.from_record(row)
    await conn.execute(_STATUS_BROKEN, model_uuid, relation_uuid, reason)
    return [
        changes.relation(model_uuid, rel, "life", life="dying"),
        changes.relation_status(model_uuid, rel, "broken", reason),
    ]


async def application_relations_dying(
    conn: Connection, model_uuid: str, application_uuid: str, reason: str
) -> list[Change]:
    out: list[Change] = []
    for row in await conn.fetch(_RELATIONS_OF_APPLICATION, model_uuid, application_uuid):
        out += await relation_dying(conn, model_uuid, row["uuid"], reason)
    return out


async def unit_dying(conn: Connection, model_uuid: str, unit_uuid: str) -> list[Change]:
    """Make a unit and its subordinates dying."""
    out: list[Change] = []
    name = await conn.fetchval(_UNIT_DYING, model_uuid, unit_uuid)
    if name is not None:
        out.append(changes.unit(model_uuid, name, "life", life="dying"))
    for row in await conn.fetch(_SUBORDINATES_DYING, model_uuid, unit_uuid):
        out.append(changes.unit(model_uuid, row["name"], "life", life="dying"))
    return out


async def reap(conn: Connection, model_uuid: str) -> list[Change]:
    """Remove every dying thing that nothing depends on any more, until none is left."""
    out: list[Change] = []
    progressed = True
    while progressed:
        progressed = False
        for rel in map(RelationKey.from_record, await conn.fetch(_REAPABLE_RELATIONS, model_uuid)):
            await conn.execute(_RELATION_DEAD, model_uuid, rel.uuid)
            await conn.execute(_DELETE_RELATION, model_uuid, rel.uuid)
            out.append(changes.relation(model_uuid, rel, "removed", life="dead"))
            progressed = True
        for u in await conn.fetch(_REAPABLE_UNITS, model_uuid):
            await conn.execute(_UNIT_DEAD, model_uuid, u["uuid"])
            await conn.execute(_DELETE_UNIT, model_uuid, u["uuid"])
            out.append(changes.unit(model_uuid, u["name"], "removed", life="dead"))
            if u["was_leader"]:
                out += await elect_leader(conn, model_uuid, u["application_uuid"], announce_vacancy=True)
            progressed = True
        for app in await conn.fetch(_REAPABLE_APPLICATIONS, model_uuid):
            await conn.execute(_APPLICATION_DEAD, model_uuid, app["uuid"])
            await conn.execute(_DELETE_APPLICATION, model_uuid, app["uuid"])
            await conn.execute(_DELETE_CHARM, model_uuid, app["charm_uuid"])
            out.append(changes.application_endpoints(model_uuid, app["name"], "removed"))
            out.append(changes.application(model_uuid, app["name"], "removed", life="dead"))
            progressed = True
    return out


async def elect_leader(
    conn: Connection, model_uuid: str, application_uuid: str, *, announce_vacancy: bool = False
) -> list[Change]:
    """Give a leaderless application its lowest-numbered alive unit as leader, if it has one.

    Juju elects a leader by itself; so does relationd, until ``set_leader`` says otherwise.
    """
    leader = await conn.fetchval(_NEXT_LEADER, model_uuid, application_uuid)
    if leader is None and not announce_vacancy:
        return []
    name = await conn.fetchval(_APPLICATION_NAME, model_uuid, application_uuid)
    if name is None:
        return []
    return [changes.application(model_uuid, name, "leader", leader=leader)]
