"""Unit and application settings in a relation: ``relation-set`` and ``relation-get``."""

from __future__ import annotations

from contracts import errors
from contracts.commands import (
    GetApplicationSettings,
    GetUnitSettings,
    SetApplicationSettings,
    SetUnitSettings,
)
from contracts.names import unit_application
from contracts.replies import SettingsResult
from handlers import changes, containers, lookup, settings_bag, unit_in_relation
from handlers.context import Context
from handlers.outcome import Outcome
from handlers.registry import handles
from handlers.rows import RelationKey

# Where the named unit's bag in a relation endpoint is ($2 NULL: its application has none): its
# scope row, else its archive (it left), with the container each puts it in; unit_exists False: no
# such unit (removed, or never was).
_UNIT_BAG = """
SELECT u.uuid IS NOT NULL AS unit_exists,
       ru.uuid AS relation_unit_uuid,
       COALESCE(u.principal_uuid, u.uuid) AS container_uuid,
       a.unit_name IS NOT NULL AS archived,
       a.container_uuid AS archived_container_uuid
FROM (VALUES (1)) AS one (x)
LEFT JOIN unit u ON u.model_uuid = $1 AND u.name = $3
LEFT JOIN relation_unit ru
       ON ru.model_uuid = $1 AND ru.relation_endpoint_uuid = $2 AND ru.unit_uuid = u.uuid
LEFT JOIN relation_unit_archive a
       ON a.model_uuid = $1 AND a.relation_endpoint_uuid = $2 AND a.unit_name = $3
"""
_ARCHIVED_BAG = """
SELECT key, value FROM relation_unit_setting_archive
WHERE model_uuid = $1 AND relation_endpoint_uuid = $2 AND unit_name = $3
ORDER BY key
"""


def _in_scope(rel: RelationKey, relation_unit_uuid: str | None, unit: str) -> str:
    """The unit's scope row. Raises RelationUnitNotFound when there is none (not in scope)."""
    if relation_unit_uuid is None:
        raise _not_in_scope(rel, unit)
    return relation_unit_uuid


def _not_in_scope(rel: RelationKey, unit: str, why: str = "") -> errors.RelationdError:
    return errors.RelationUnitNotFound(
        f"unit {unit!r} is not in the scope of relation {rel.relation_id} ({rel.key}){why}",
        unit=unit,
        relation_id=rel.relation_id,
    )


def _unit_bag(cmd: SetUnitSettings) -> unit_in_relation.Wanted:
    return unit_in_relation.Wanted(cmd.relation, cmd.unit, settings_bag.UNIT_BAG)


def _application_bag(cmd: SetApplicationSettings) -> unit_in_relation.Wanted:
    return unit_in_relation.Wanted(cmd.relation, cmd.unit, settings_bag.APPLICATION_BAG)


@handles(SetUnitSettings, reads_first=_unit_bag)
async def set_unit_settings(ctx: Context, cmd: SetUnitSettings) -> Outcome:
    """Merge into a unit's settings; an event only if the bag's hash changes."""
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    found = await unit_in_relation.find(ctx, m, _unit_bag(cmd))
    rel = found.relation
    ep = lookup.endpoint_for_unit(found.endpoints, rel, cmd.unit)
    ru = _in_scope(rel, ep.relation_unit_uuid, cmd.unit)
    write = await settings_bag.write(
        ctx,
        settings_bag.UNIT_BAG,
        m,
        ru,
        cmd.settings,
        read=found.bags[ep.relation_endpoint_uuid],
        what=f"settings of {cmd.unit} in relation {rel.relation_id}",
    )
    out = [changes.unit_settings(m, rel, cmd.unit, write.sha256)] if write.changed else []
    return Outcome(SettingsResult(changed=write.changed, hash=write.sha256), out)


@handles(SetApplicationSettings, reads_first=_application_bag)
async def set_application_settings(ctx: Context, cmd: SetApplicationSettings) -> Outcome:
    """The leader merges into its application's settings in the relation."""
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    found = await unit_in_relation.find(ctx, m, _application_bag(cmd))
    rel = found.relation
    ep = lookup.endpoint_for_unit(found.endpoints, rel, cmd.unit)
    lookup.check_leader(found.unit, found.unit.leader, "write application settings")
    write = await settings_bag.write(
        ctx,
        settings_bag.APPLICATION_BAG,
        m,
        ep.relation_endpoint_uuid,
        cmd.settings,
        read=found.bags[ep.relation_endpoint_uuid],
        what=f"settings of {ep.application_name} in relation {rel.relation_id}",
    )
    out = []
    if write.changed:
        out.append(changes.application_settings(m, rel, ep.application_name, write.sha256))
    return Outcome(SettingsResult(changed=write.changed, hash=write.sha256), out)


@handles(GetUnitSettings)
async def get_unit_settings(ctx: Context, cmd: GetUnitSettings) -> Outcome:
    """A unit's settings; a unit that left the relation's scope, its last ones (archived until the
    relation is removed or it enters again, even once the unit itself is removed).

    ``as_unit``, if given, must be in the relation (either side); in a container-scoped relation
    it reads only units of its own container, as if the others were not in scope.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    rel = await lookup.relation(conn, m, cmd.relation)
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid)
    ep = lookup.endpoint_of(endpoints, unit_application(cmd.unit))
    ep_uuid = None if ep is None else ep.relation_endpoint_uuid
    target = await conn.fetchrow(_UNIT_BAG, m, ep_uuid, cmd.unit)
    if not target["unit_exists"] and not target["archived"]:
        raise lookup.unit_not_found(cmd.unit)
    reader_container = None
    if cmd.as_unit is not None:
        reader = await lookup.unit(conn, m, cmd.as_unit)
        lookup.endpoint_for_unit(endpoints, rel, cmd.as_unit)
        reader_container = containers.seen_from(rel, reader)
    ep = lookup.endpoint_for_unit(endpoints, rel, cmd.unit)
    ru = target["relation_unit_uuid"]
    container = target["container_uuid"] if ru is not None else target["archived_container_uuid"]
    if ru is None and not target["archived"]:
        raise _not_in_scope(rel, cmd.unit)
    if reader_container is not None and container != reader_container:
        why = (
            f" as {cmd.as_unit!r} sees it: the relation is container-scoped and the unit is in "
            "another container"
        )
        raise _not_in_scope(rel, cmd.unit, why)
    if ru is not None:
        return Outcome(await settings_bag.read(conn, settings_bag.UNIT_BAG, m, ru))
    rows = await conn.fetch(_ARCHIVED_BAG, m, ep.relation_endpoint_uuid, cmd.unit)
    return Outcome({r["key"]: r["value"] for r in rows})


@handles(GetApplicationSettings)
async def get_application_settings(ctx: Context, cmd: GetApplicationSettings) -> Outcome:
    """An application's settings in a relation.

    Read as ``as_unit``: the other side's units may read; a unit of the application itself only
    as its leader, except in a peer relation, where every peer reads it (as in Juju).
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    rel = await lookup.relation(conn, m, cmd.relation)
    await lookup.application(conn, m, cmd.application)
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid)
    ep = lookup.endpoint_of(endpoints, cmd.application)
    if ep is None:
        raise errors.ApplicationNotFoundForRelation(
            f"application {cmd.application!r} is not in relation {rel.relation_id} ({rel.key})",
            application=cmd.application,
            relation_id=rel.relation_id,
        )
    if cmd.as_unit is not None:
        reader = await lookup.unit(conn, m, cmd.as_unit)
        lookup.endpoint_for_unit(endpoints, rel, cmd.as_unit)
        if unit_application(cmd.as_unit) == cmd.application and not rel.is_peer:
            await lookup.require_leader(conn, m, reader, "read its application's settings")
    bag = await settings_bag.read(conn, settings_bag.APPLICATION_BAG, m, ep.relation_endpoint_uuid)
    return Outcome(bag)
