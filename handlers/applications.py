"""Applications and units: deploy, add units, leadership, removal, and their reads."""

from __future__ import annotations

import uuid

from asyncpg import Record

from contracts import errors
from contracts.charm import Role, Scope
from contracts.commands import (
    AddUnits,
    ApplicationEndpoints,
    Deploy,
    ListApplications,
    RemoveApplication,
    RemoveUnit,
    SetLeader,
)
from contracts.replies import (
    ApplicationInfo,
    DeployResult,
    EndpointInfo,
    LeaderResult,
    LifeResult,
    PeerRelationInfo,
    UnitsResult,
)
from handlers import changes, lifecycle, lookup
from handlers.context import Context
from handlers.db import Connection
from handlers.outcome import Change, Outcome
from handlers.registry import handles
from handlers.relation_rows import create_relation
from handlers.rows import RelationKey
from handlers.values import Life, RoleId, ScopeId

_INSERT_CHARM = "INSERT INTO charm (model_uuid, uuid, name, subordinate) VALUES ($1, $2, $3, $4)"
_INSERT_CHARM_RELATIONS = """
INSERT INTO charm_relation
    (model_uuid, uuid, charm_uuid, name, role_id, interface, capacity, optional, scope_id)
SELECT $1, u, $2, n, r, i, c, o, s
FROM unnest($3::uuid[], $4::text[], $5::smallint[], $6::text[], $7::int[], $8::bool[],
            $9::smallint[]) AS t(u, n, r, i, c, o, s)
"""
_INSERT_APPLICATION = """
INSERT INTO application (model_uuid, uuid, name, charm_uuid) VALUES ($1, $2, $3, $4)
ON CONFLICT (model_uuid, name) DO NOTHING
RETURNING uuid
"""
_INSERT_APPLICATION_ENDPOINTS = """
INSERT INTO application_endpoint (model_uuid, uuid, application_uuid, charm_relation_uuid, space_uuid)
SELECT $1, gen_random_uuid(), $2, cr.uuid, (SELECT uuid FROM space WHERE model_uuid = $1 AND name = 'alpha')
FROM charm_relation cr WHERE cr.model_uuid = $1 AND cr.charm_uuid = $3
"""
_PEER_ENDPOINTS = """
SELECT endpoint_uuid, endpoint_name, scope FROM v_application_endpoint
WHERE model_uuid = $1 AND application_uuid = $2 AND role = 'peer'
ORDER BY endpoint_name
"""
_NEXT_UNIT_NUMBERS = """
UPDATE application SET unit_sequence = unit_sequence + $3
WHERE model_uuid = $1 AND uuid = $2
RETURNING unit_sequence - $3
"""
_INSERT_UNIT = """
INSERT INTO unit (model_uuid, uuid, application_uuid, name, number, principal_uuid)
VALUES ($1, $2, $3, $4, $5, $6)
"""
_UNIT_NAME = "SELECT name FROM unit WHERE model_uuid = $1 AND uuid = $2"
_SET_LEADER = """
INSERT INTO application_leader (model_uuid, application_uuid, unit_uuid) VALUES ($1, $2, $3)
ON CONFLICT (model_uuid, application_uuid) DO UPDATE SET unit_uuid = EXCLUDED.unit_uuid
WHERE application_leader.unit_uuid IS DISTINCT FROM EXCLUDED.unit_uuid
RETURNING unit_uuid
"""
_APPLICATION_DYING = f"""
UPDATE application SET life_id = {Life.dying:d}
WHERE model_uuid = $1 AND uuid = $2 AND life_id = {Life.alive:d}
RETURNING uuid
"""
_UNITS_OF_APPLICATION = """
SELECT uuid FROM unit WHERE model_uuid = $1 AND application_uuid = $2 ORDER BY number
"""
_LIST_APPLICATIONS = """
SELECT a.name, a.life_id, c.subordinate,
       (SELECT u.name FROM application_leader l
        JOIN unit u ON u.model_uuid = l.model_uuid AND u.uuid = l.unit_uuid
        WHERE l.model_uuid = a.model_uuid AND l.application_uuid = a.uuid) AS leader,
       COALESCE((SELECT array_agg(u.name ORDER BY u.number) FROM unit u
                 WHERE u.model_uuid = a.model_uuid AND u.application_uuid = a.uuid), '{}') AS units
FROM application a
JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
WHERE a.model_uuid = $1
ORDER BY a.name
"""
_APPLICATION_ENDPOINTS = """
SELECT endpoint_name, role, interface, scope, capacity, optional FROM v_application_endpoint
WHERE model_uuid = $1 AND application_uuid = $2
ORDER BY role, endpoint_name
"""


def endpoint_info(row: Record) -> EndpointInfo:
    return EndpointInfo(
        name=row["endpoint_name"],
        role=Role(row["role"]),
        interface=row["interface"],
        scope=Scope(row["scope"]),
        limit=row["capacity"],
        optional=row["optional"],
    )


@handles(Deploy)
async def deploy(ctx: Context, cmd: Deploy) -> Outcome:
    """Deploy an application: its charm's endpoints, ``juju-info``, peer relations and units."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    if cmd.charm.subordinate and cmd.units:
        raise errors.SubordinateUnitsNotAddable(
            f"cannot deploy subordinate application {cmd.application!r} with units: its units are "
            "created when a principal unit enters a container-scoped relation",
            application=cmd.application,
        )
    charm_uuid = str(uuid.uuid4())
    await conn.execute(_INSERT_CHARM, m, charm_uuid, cmd.charm.name, cmd.charm.subordinate)
    defs = cmd.charm.endpoints()
    await conn.execute(
        _INSERT_CHARM_RELATIONS,
        m,
        charm_uuid,
        [str(uuid.uuid4()) for _ in defs],
        [name for name, _, _ in defs],
        [RoleId.of(role) for _, role, _ in defs],
        [meta.interface for _, _, meta in defs],
        [meta.limit for _, _, meta in defs],
        [meta.optional for _, _, meta in defs],
        [ScopeId.of(meta.scope) for _, _, meta in defs],
    )
    app_uuid = await conn.fetchval(_INSERT_APPLICATION, m, str(uuid.uuid4()), cmd.application, charm_uuid)
    if app_uuid is None:
        raise errors.ApplicationAlreadyExists(
            f"application {cmd.application!r} already exists", application=cmd.application
        )
    await conn.execute(_INSERT_APPLICATION_ENDPOINTS, m, app_uuid, charm_uuid)
    endpoints = [endpoint_info(r) for r in await conn.fetch(_APPLICATION_ENDPOINTS, m, app_uuid)]
    out: list[Change] = [
        changes.application(m, cmd.application, "deployed", subordinate=cmd.charm.subordinate),
        changes.application_endpoints(m, cmd.application, "created", endpoints=[e.name for e in endpoints]),
    ]
    peers: list[PeerRelationInfo] = []
    for row in await conn.fetch(_PEER_ENDPOINTS, m, app_uuid):
        key = f"{cmd.application}:{row['endpoint_name']}"
        rel_uuid = str(uuid.uuid4())
        relation_id, taken = await create_relation(
            conn,
            m,
            relation_uuid=rel_uuid,
            key=key,
            is_peer=True,
            container=row["scope"] == Scope.container.value,
            endpoints=[(str(uuid.uuid4()), row["endpoint_uuid"], app_uuid)],
        )
        if relation_id is None:  # the application is new, so its peer keys are too
            raise RuntimeError(f"peer relation key {key!r} is taken by relation {taken}")
        rel = RelationKey(rel_uuid, relation_id, key)
        peers.append(PeerRelationInfo(id=relation_id, key=key))
        scope = row["scope"]
        out.append(changes.relation(m, rel, "created", life="alive", status="joining", scope=scope))
    units: list[str] = []
    if cmd.units:
        units, unit_changes = await _add_units(conn, m, app_uuid, cmd.application, cmd.units)
        out += unit_changes
    result = DeployResult(
        application=cmd.application,
        subordinate=cmd.charm.subordinate,
        units=units,
        endpoints=endpoints,
        peer_relations=peers,
    )
    return Outcome(result, out)


async def _add_units(
    conn: Connection,
    model_uuid: str,
    app_uuid: str,
    app_name: str,
    count: int,
    principal_uuid: str | None = None,
) -> tuple[list[str], list[Change]]:
    first = await conn.fetchval(_NEXT_UNIT_NUMBERS, model_uuid, app_uuid, count)
    names = [f"{app_name}/{n}" for n in range(first, first + count)]
    await conn.executemany(
        _INSERT_UNIT,
        [
            (model_uuid, str(uuid.uuid4()), app_uuid, name, first + i, principal_uuid)
            for i, name in enumerate(names)
        ],
    )
    principal = None
    if principal_uuid is not None:
        principal = await conn.fetchval(_UNIT_NAME, model_uuid, principal_uuid)
    out = [changes.unit(model_uuid, name, "added", principal=principal) for name in names]
    out += await lifecycle.elect_leader(conn, model_uuid, app_uuid)
    return names, out


async def add_subordinate_unit(
    conn: Connection, model_uuid: str, app_uuid: str, app_name: str, principal_uuid: str
) -> tuple[str, list[Change]]:
    """Create the subordinate unit of ``app`` for a principal unit (used by enter scope)."""
    names, out = await _add_units(conn, model_uuid, app_uuid, app_name, 1, principal_uuid)
    return names[0], out


@handles(AddUnits)
async def add_units(ctx: Context, cmd: AddUnits) -> Outcome:
    """Add units; the first unit of a leaderless application becomes its leader."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    app = await lookup.application(conn, model.uuid, cmd.application)
    if app.life != Life.alive:
        raise errors.ApplicationNotAlive(
            f"cannot add units to application {cmd.application!r}: it is {app.life.label}",
            application=cmd.application,
        )
    if app.subordinate:
        raise errors.SubordinateUnitsNotAddable(
            f"cannot add units to subordinate application {cmd.application!r}: its units are "
            "created when a principal unit enters a container-scoped relation",
            application=cmd.application,
        )
    names, out = await _add_units(conn, model.uuid, app.uuid, cmd.application, cmd.count)
    return Outcome(UnitsResult(units=names), out)


@handles(SetLeader)
async def set_leader(ctx: Context, cmd: SetLeader) -> Outcome:
    """Make a unit its application's leader."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    unit = await lookup.unit(conn, model.uuid, cmd.unit)
    changed = await conn.fetchval(_SET_LEADER, model.uuid, unit.application_uuid, unit.uuid)
    out = []
    if changed is not None:
        out.append(changes.application(model.uuid, unit.application_name, "leader", leader=cmd.unit))
    return Outcome(LeaderResult(leader=cmd.unit), out)


@handles(RemoveUnit)
async def remove_unit(ctx: Context, cmd: RemoveUnit) -> Outcome:
    """Make a unit (and its subordinates) dying; removed once in no scope and without subordinates.

    Idempotent.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    unit = await lookup.unit(conn, model.uuid, cmd.unit)
    out = await lifecycle.unit_dying(conn, model.uuid, unit.uuid)
    out += await lifecycle.reap(conn, model.uuid)
    gone = any(c.kind == "removed" and c.key.get("unit") == cmd.unit for c in out)
    return Outcome(LifeResult(name=cmd.unit, life="dead" if gone else "dying"), out)


@handles(RemoveApplication)
async def remove_application(ctx: Context, cmd: RemoveApplication) -> Outcome:
    """Make an application, its units and its relations dying; remove what nothing holds.

    Idempotent.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    app = await lookup.application(conn, m, cmd.application)
    out: list[Change] = []
    if await conn.fetchval(_APPLICATION_DYING, m, app.uuid) is not None:
        out.append(changes.application(m, cmd.application, "life", life="dying"))
    out += await lifecycle.application_relations_dying(
        conn, m, app.uuid, f"application {cmd.application} is being removed"
    )
    for row in await conn.fetch(_UNITS_OF_APPLICATION, m, app.uuid):
        out += await lifecycle.unit_dying(conn, m, row["uuid"])
    out += await lifecycle.reap(conn, m)
    gone = any(
        c.kind == "removed" and c.key == {"application": cmd.application} and c.namespace == "application"
        for c in out
    )
    return Outcome(LifeResult(name=cmd.application, life="dead" if gone else "dying"), out)


@handles(ListApplications)
async def list_applications(ctx: Context, cmd: ListApplications) -> Outcome:
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    rows = await conn.fetch(_LIST_APPLICATIONS, model.uuid)
    return Outcome(
        [
            ApplicationInfo(
                name=r["name"],
                life=Life(r["life_id"]).label,
                subordinate=r["subordinate"],
                leader=r["leader"],
                units=list(r["units"]),
            )
            for r in rows
        ]
    )


@handles(ApplicationEndpoints)
async def application_endpoints(ctx: Context, cmd: ApplicationEndpoints) -> Outcome:
    """An application's endpoints."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    app = await lookup.application(conn, model.uuid, cmd.application)
    rows = await conn.fetch(_APPLICATION_ENDPOINTS, model.uuid, app.uuid)
    return Outcome([endpoint_info(r) for r in rows])
