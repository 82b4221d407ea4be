"""Integrate: relate two applications through a pair of compatible endpoints."""

from __future__ import annotations

import uuid

from asyncpg import Record

from contracts import errors
from contracts.charm import Scope
from contracts.commands import Integrate
from contracts.names import split_endpoint
from contracts.replies import RelationInfo
from handlers import changes, settings_bag
from handlers.context import Context
from handlers.inference import Endpoint, infer, relation_key
from handlers.outcome import Change, Outcome
from handlers.registry import handles
from handlers.relation_rows import create_relation, relation_endpoint_info
from handlers.rows import RelationEndpoint, RelationKey
from handlers.values import Life

# The two named applications, each with its endpoints by name and, for an endpoint with a limit,
# how many relations that are not dead use it. An unknown application has no rows.
_APPLICATIONS = f"""
SELECT a.uuid AS application_uuid, a.name AS application_name, a.life_id, c.subordinate,
       e.endpoint_uuid, e.endpoint_name, e.role, e.interface, e.scope, e.capacity, e.optional,
       CASE WHEN e.capacity IS NOT NULL THEN (
           SELECT count(*) FROM relation_endpoint re
           JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
           WHERE re.model_uuid = e.model_uuid AND re.endpoint_uuid = e.endpoint_uuid
             AND r.life_id < {Life.dead:d}
       ) END AS used
FROM application a
JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
LEFT JOIN v_application_endpoint e ON e.model_uuid = a.model_uuid AND e.application_uuid = a.uuid
WHERE a.model_uuid = $1 AND a.name IN ($2, $3)
ORDER BY a.name, e.endpoint_name
"""
_RELATION_BY_KEY = "SELECT relation_id FROM relation WHERE model_uuid = $1 AND key = $2"


@handles(Integrate)
async def integrate(ctx: Context, cmd: Integrate) -> Outcome:
    """Create a relation between two applications' compatible endpoints, status joining."""
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    (app1_name, ep1_name), (app2_name, ep2_name) = (split_endpoint(e) for e in cmd.endpoints)
    rows = await conn.fetch(_APPLICATIONS, m, app1_name, app2_name)
    rows1, rows2 = ([r for r in rows if r["application_name"] == name] for name in (app1_name, app2_name))
    app1, app2 = _application(rows1, app1_name), _application(rows2, app2_name)
    if app1["application_uuid"] == app2["application_uuid"]:
        raise errors.CompatibleEndpointsNotFound(
            f"cannot relate application {app1_name!r} to itself; peer relations come from deploy",
            endpoints=list(cmd.endpoints),
        )
    for app in (app1, app2):
        if app["life_id"] != Life.alive:
            raise errors.ApplicationNotAlive(
                f"application {app['application_name']!r} is {Life(app['life_id']).label}",
                application=app["application_name"],
            )
    pair = infer(_endpoints(rows1), ep1_name, _endpoints(rows2), ep2_name)
    key = relation_key(pair)
    container = any(ep.scope == "container" for ep in pair)
    by_name = {(r["application_name"], r["endpoint_name"]): r for r in rows}
    requirer, provider = sorted(pair, key=lambda e: e.role != "requirer")
    ordered = [(e, by_name[(e.application, e.name)]) for e in (requirer, provider)]
    refusal = _refusal(cmd, key, container, (app1, app2), ordered)
    if refusal is not None:
        # An existing relation with this key outranks them; the insert below checks it itself.
        taken = await conn.fetchval(_RELATION_BY_KEY, m, key)
        raise refusal if taken is None else _already_exists(key, taken)
    rel_uuid = str(uuid.uuid4())
    scope = Scope.container if container else Scope.global_
    # In the relation each endpoint has the relation's scope (the charm's stays on the application).
    sides = [_side(r, position, scope) for position, (_, r) in enumerate(ordered)]
    relation_id, taken = await create_relation(
        conn,
        m,
        relation_uuid=rel_uuid,
        key=key,
        is_peer=False,
        container=container,
        endpoints=[(s.relation_endpoint_uuid, s.endpoint_uuid, s.application_uuid) for s in sides],
    )
    if relation_id is None:
        assert taken is not None
        raise _already_exists(key, taken)
    rel = RelationKey(rel_uuid, relation_id, key)
    out: list[Change] = [
        changes.relation(m, rel, "created", life="alive", status="joining", scope=scope.value)
    ]
    endpoint_uuid_of = {s.application_name: s.relation_endpoint_uuid for s in sides}
    for app_name, bag in sorted(cmd.settings.items()):
        # The endpoint is new in this transaction: its bag is empty, nothing to read.
        stored = await settings_bag.write(
            ctx,
            settings_bag.APPLICATION_BAG,
            m,
            endpoint_uuid_of[app_name],
            bag,
            new_owner=True,
            what="application settings",
        )
        if stored.changed:
            out.append(changes.application_settings(m, rel, app_name, stored.sha256))
    info = RelationInfo(
        id=relation_id,
        uuid=rel_uuid,
        key=key,
        life=Life.alive.label,
        status="joining",
        message="",
        scope=scope,
        interface=requirer.interface,
        endpoints=[relation_endpoint_info(s) for s in sides],
    )
    return Outcome(info, out)


def _application(rows: list[Record], name: str) -> Record:
    """The application's row (its first endpoint's). Raises ApplicationNotFound."""
    if not rows:
        raise errors.ApplicationNotFound(f"application {name!r} not found", application=name)
    return rows[0]


def _side(row: Record, position: int, scope: Scope) -> RelationEndpoint:
    """The new relation's endpoint on ``row``'s application endpoint, with the relation's scope."""
    return RelationEndpoint.from_record(
        dict(row, relation_endpoint_uuid=str(uuid.uuid4()), scope=scope, position=position)
    )


def _endpoints(rows: list[Record]) -> list[Endpoint]:
    return [
        Endpoint(r["application_name"], r["endpoint_name"], r["role"], r["interface"], r["scope"])
        for r in rows
        if r["endpoint_uuid"] is not None
    ]


def _already_exists(key: str, relation_id: int) -> errors.RelationdError:
    return errors.RelationAlreadyExists(
        f"relation {key!r} already exists (id {relation_id})", key=key, relation_id=relation_id
    )


def _refusal(
    cmd: Integrate,
    key: str,
    container: bool,
    apps: tuple[Record, Record],
    ordered: list[tuple[Endpoint, Record]],
) -> errors.RelationdError | None:
    """The first reason, after an existing relation, not to create this one: scope, limits, settings."""
    (app1_name, _), (app2_name, _) = (split_endpoint(e) for e in cmd.endpoints)
    if container and not (apps[0]["subordinate"] or apps[1]["subordinate"]):
        return errors.ContainerScopeRequiresSubordinate(
            f"relation {key!r} is container scoped but neither {app1_name!r} nor {app2_name!r} "
            "is subordinate",
            key=key,
        )
    for ep, row in ordered:
        capacity, used = row["capacity"], row["used"]
        if capacity is not None and used >= capacity:
            plural = "relation" if capacity == 1 else "relations"
            return errors.EndpointQuotaLimitExceeded(
                f"{ep} allows {capacity} {plural} and has {used}",
                endpoint=str(ep),
                limit=capacity,
            )
    for app_name in cmd.settings:
        if app_name not in (app1_name, app2_name):
            return errors.ApplicationNotFoundForRelation(
                f"application {app_name!r} is not in relation {key!r}", application=app_name
            )
    return None
