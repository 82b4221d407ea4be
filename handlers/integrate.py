"""Integrate: relate two applications through a pair of compatible endpoints."""

from __future__ import annotations

from typing import Any

from contracts import errors
from contracts.commands import Integrate
from contracts.names import split_endpoint
from handlers import changes, lookup
from handlers.inference import Endpoint, infer, relation_key
from handlers.outcome import Change, Outcome
from handlers.relation_rows import create_relation, relation_info
from handlers.settings_bag import write_application_settings

Record = Any

_ENDPOINTS = """
SELECT endpoint_uuid, application_uuid, application_name, endpoint_name, role, interface, scope
FROM v_application_endpoint WHERE model_uuid = $1 AND application_uuid = $2
ORDER BY endpoint_name
"""
_RELATION_BY_KEY = "SELECT relation_id FROM relation WHERE model_uuid = $1 AND key = $2"
_ENDPOINT_USE = """
SELECT count(*) FROM relation_endpoint re
JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
WHERE re.model_uuid = $1 AND re.endpoint_uuid = $2 AND r.life_id < 2
"""
_CAPACITY = """
SELECT capacity FROM v_application_endpoint WHERE model_uuid = $1 AND endpoint_uuid = $2
"""


async def integrate(conn: Any, cmd: Integrate) -> Outcome:
    """Create a relation between two applications' compatible endpoints, status joining.

    Raises ModelNotFound, ApplicationNotFound, ApplicationNotAlive, CompatibleEndpointsNotFound,
    AmbiguousRelation, RelationAlreadyExists, ContainerScopeRequiresSubordinate,
    EndpointQuotaLimitExceeded, ApplicationNotFoundForRelation (settings for a third application).
    """
    model = await lookup.model(conn, cmd.model, lock=True)
    m = model["uuid"]
    (app1_name, ep1_name), (app2_name, ep2_name) = (split_endpoint(e) for e in cmd.endpoints)
    app1 = await lookup.application(conn, m, app1_name)
    app2 = await lookup.application(conn, m, app2_name)
    if app1["uuid"] == app2["uuid"]:
        raise errors.CompatibleEndpointsNotFound(
            f"cannot relate application {app1_name!r} to itself; peer relations come from deploy",
            endpoints=list(cmd.endpoints),
        )
    for app in (app1, app2):
        if app["life_id"] != lookup.ALIVE:
            raise errors.ApplicationNotAlive(
                f"application {app['name']!r} is {lookup.LIFE[app['life_id']]}",
                application=app["name"],
            )
    rows1 = await conn.fetch(_ENDPOINTS, m, app1["uuid"])
    rows2 = await conn.fetch(_ENDPOINTS, m, app2["uuid"])
    pair = infer(_endpoints(rows1), ep1_name, _endpoints(rows2), ep2_name)
    key = relation_key(pair)
    existing = await conn.fetchval(_RELATION_BY_KEY, m, key)
    if existing is not None:
        raise errors.RelationAlreadyExists(
            f"relation {key!r} already exists (id {existing})", key=key, relation_id=existing
        )
    container = any(ep.scope == "container" for ep in pair)
    if container and not (app1["subordinate"] or app2["subordinate"]):
        raise errors.ContainerScopeRequiresSubordinate(
            f"relation {key!r} is container scoped but neither {app1_name!r} nor {app2_name!r} "
            "is subordinate",
            key=key,
        )
    uuids = {(r["application_name"], r["endpoint_name"]): r for r in [*rows1, *rows2]}
    requirer, provider = sorted(pair, key=lambda e: e.role != "requirer")
    ordered = [uuids[(e.application, e.name)] for e in (requirer, provider)]
    for ep, row in zip((requirer, provider), ordered, strict=True):
        await _check_limit(conn, m, ep, row["endpoint_uuid"])
    for app_name in cmd.settings:
        if app_name not in (app1_name, app2_name):
            raise errors.ApplicationNotFoundForRelation(
                f"application {app_name!r} is not in relation {key!r}", application=app_name
            )
    rel = await create_relation(
        conn,
        m,
        key=key,
        is_peer=False,
        container=container,
        endpoints=[(r["endpoint_uuid"], r["application_uuid"]) for r in ordered],
    )
    scope = "container" if container else "global"
    out: list[Change] = [changes.relation(m, rel, "created", life="alive", status="joining", scope=scope)]
    endpoints = await lookup.relation_endpoints(conn, m, rel["uuid"])
    for app_name, bag in sorted(cmd.settings.items()):
        ep_row = lookup.endpoint_of(endpoints, app_name)
        assert ep_row is not None
        write = await write_application_settings(conn, m, ep_row["relation_endpoint_uuid"], bag)
        if write.changed:
            out.append(changes.application_settings(m, rel, app_name, write.sha256))
    full = await lookup.relation(conn, m, rel["relation_id"])
    return Outcome(await relation_info(conn, m, full, with_units=False), out)


async def _check_limit(conn: Any, model_uuid: str, ep: Endpoint, endpoint_uuid: str) -> None:
    capacity = await conn.fetchval(_CAPACITY, model_uuid, endpoint_uuid)
    if capacity is None:
        return
    used = await conn.fetchval(_ENDPOINT_USE, model_uuid, endpoint_uuid)
    if used >= capacity:
        plural = "relation" if capacity == 1 else "relations"
        raise errors.EndpointQuotaLimitExceeded(
            f"{ep} allows {capacity} {plural} and has {used}",
            endpoint=str(ep),
            limit=capacity,
        )


def _endpoints(rows: list[Record]) -> list[Endpoint]:
    return [
        Endpoint(r["application_name"], r["endpoint_name"], r["role"], r["interface"], r["scope"])
        for r in rows
    ]
