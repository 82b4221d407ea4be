"""Unit and application settings in a relation: ``relation-set`` and ``relation-get``."""

from __future__ import annotations

from typing import Any

from contracts import errors
from contracts.commands import (
    GetApplicationSettings,
    GetUnitSettings,
    SetApplicationSettings,
    SetUnitSettings,
)
from contracts.names import unit_application
from contracts.replies import SettingsResult
from handlers import changes, lookup, settings_bag, unit_in_relation
from handlers.outcome import Outcome

Record = Any

_RELATION_UNIT = """
SELECT ru.uuid FROM relation_unit ru
JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
WHERE ru.model_uuid = $1 AND ru.relation_endpoint_uuid = $2 AND u.name = $3
"""


async def _relation_unit(conn: Any, model_uuid: str, rel: Record, ep: Record, unit: str) -> str:
    """Raises RelationUnitNotFound when the unit is not in the relation's scope."""
    ru: str | None = await conn.fetchval(_RELATION_UNIT, model_uuid, ep["relation_endpoint_uuid"], unit)
    return _in_scope(rel, ru, unit)


def _in_scope(rel: Record, relation_unit_uuid: str | None, unit: str) -> str:
    """The unit's scope row. Raises RelationUnitNotFound when there is none (not in scope)."""
    if relation_unit_uuid is None:
        raise errors.RelationUnitNotFound(
            f"unit {unit!r} is not in the scope of relation {rel['relation_id']} ({rel['key']})",
            unit=unit,
            relation_id=rel["relation_id"],
        )
    return relation_unit_uuid


async def set_unit_settings(conn: Any, cmd: SetUnitSettings) -> Outcome:
    """Merge into a unit's settings; an event only if the bag's hash changes.

    Raises ModelNotFound, RelationNotFound, UnitNotFound, UnitNotInRelation,
    RelationUnitNotFound (not in scope), PayloadTooLarge.
    """
    model = await lookup.model(conn, cmd.model, lock=True)
    m = model["uuid"]
    found = await unit_in_relation.find(conn, m, cmd.relation, cmd.unit)
    rel = found.relation
    ep = lookup.endpoint_for_unit(found.endpoints, rel, cmd.unit)
    ru = _in_scope(rel, ep["relation_unit_uuid"], cmd.unit)
    write = await settings_bag.write(
        conn,
        settings_bag.UNIT_BAG,
        m,
        ru,
        cmd.settings,
        what=f"settings of {cmd.unit} in relation {rel['relation_id']}",
    )
    out = [changes.unit_settings(m, rel, cmd.unit, write.sha256)] if write.changed else []
    return Outcome(SettingsResult(changed=write.changed, hash=write.sha256), out)


async def set_application_settings(conn: Any, cmd: SetApplicationSettings) -> Outcome:
    """The leader merges into its application's settings in the relation.

    Raises ModelNotFound, RelationNotFound, UnitNotFound, UnitNotInRelation, NotLeader,
    PayloadTooLarge.
    """
    model = await lookup.model(conn, cmd.model, lock=True)
    m = model["uuid"]
    found = await unit_in_relation.find(conn, m, cmd.relation, cmd.unit)
    rel = found.relation
    ep = lookup.endpoint_for_unit(found.endpoints, rel, cmd.unit)
    lookup.check_leader(found.unit, found.unit["leader"], "write application settings")
    write = await settings_bag.write(
        conn,
        settings_bag.APPLICATION_BAG,
        m,
        ep["relation_endpoint_uuid"],
        cmd.settings,
        what=f"settings of {ep['application_name']} in relation {rel['relation_id']}",
    )
    out = []
    if write.changed:
        out.append(changes.application_settings(m, rel, ep["application_name"], write.sha256))
    return Outcome(SettingsResult(changed=write.changed, hash=write.sha256), out)


async def get_unit_settings(conn: Any, cmd: GetUnitSettings) -> Outcome:
    """A unit's settings. ``as_unit``, if given, must be in the relation (either side).

    Raises ModelNotFound, RelationNotFound, UnitNotFound, UnitNotInRelation,
    RelationUnitNotFound.
    """
    model = await lookup.model(conn, cmd.model, lock=False)
    m = model["uuid"]
    rel = await lookup.relation(conn, m, cmd.relation)
    await lookup.unit(conn, m, cmd.unit)
    endpoints = await lookup.relation_endpoints(conn, m, rel["uuid"])
    if cmd.as_unit is not None:
        await lookup.unit(conn, m, cmd.as_unit)
        lookup.endpoint_for_unit(endpoints, rel, cmd.as_unit)
    ep = lookup.endpoint_for_unit(endpoints, rel, cmd.unit)
    ru = await _relation_unit(conn, m, rel, ep, cmd.unit)
    return Outcome(await settings_bag.read(conn, settings_bag.UNIT_BAG, m, ru))


async def get_application_settings(conn: Any, cmd: GetApplicationSettings) -> Outcome:
    """An application's settings in a relation.

    Read as ``as_unit``: the other side's units may read; a unit of the application itself only
    as its leader, except in a peer relation, where every peer reads it (as in Juju).

    Raises ModelNotFound, RelationNotFound, ApplicationNotFound, ApplicationNotFoundForRelation,
    UnitNotFound, UnitNotInRelation, NotLeader.
    """
    model = await lookup.model(conn, cmd.model, lock=False)
    m = model["uuid"]
    rel = await lookup.relation(conn, m, cmd.relation)
    await lookup.application(conn, m, cmd.application)
    endpoints = await lookup.relation_endpoints(conn, m, rel["uuid"])
    ep = lookup.endpoint_of(endpoints, cmd.application)
    if ep is None:
        raise errors.ApplicationNotFoundForRelation(
            f"application {cmd.application!r} is not in relation {rel['relation_id']} ({rel['key']})",
            application=cmd.application,
            relation_id=rel["relation_id"],
        )
    if cmd.as_unit is not None:
        reader = await lookup.unit(conn, m, cmd.as_unit)
        lookup.endpoint_for_unit(endpoints, rel, cmd.as_unit)
        if unit_application(cmd.as_unit) == cmd.application and not rel["is_peer"]:
            await lookup.require_leader(conn, m, reader, "read its application's settings")
    bag = await settings_bag.read(conn, settings_bag.APPLICATION_BAG, m, ep["relation_endpoint_uuid"])
    return Outcome(bag)
