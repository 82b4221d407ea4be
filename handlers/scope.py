"""Relation scope: units entering and leaving, and who is in scope (``relation-list``)."""

from __future__ import annotations

import uuid

from contracts import errors
from contracts.charm import Scope
from contracts.commands import EnterScope, LeaveScope, RelationUnits
from contracts.names import unit_application
from contracts.replies import ScopeResult
from handlers import changes, containers, lifecycle, lookup, settings_bag, unit_in_relation
from handlers.applications import add_subordinate_unit
from handlers.context import Context
from handlers.outcome import Change, Outcome
from handlers.registry import handles
from handlers.relation_rows import units_in_scope
from handlers.rows import ActingUnit, RelationEndpoint, RelationKey
from handlers.values import Life, RelationStatusId

_RELATION_UNIT = """
SELECT uuid FROM relation_unit
WHERE model_uuid = $1 AND relation_endpoint_uuid = $2 AND unit_uuid = $3
"""
# The unit leaves: its scope row and bag go, the bag is archived (readable by the units still in
# the relation until it is removed). One statement: the archive reads the bag as it was before
# the delete's cascade.
_LEAVE = """
WITH gone AS (
    DELETE FROM relation_unit WHERE model_uuid = $1 AND uuid = $2
), departed AS (
    INSERT INTO relation_unit_archive (model_uuid, relation_endpoint_uuid, unit_name, container_uuid)
    VALUES ($1, $3, $4, $5)
    RETURNING unit_name
)
INSERT INTO relation_unit_setting_archive (model_uuid, relation_endpoint_uuid, unit_name, key, value)
SELECT $1, $3, d.unit_name, s.key, s.value
FROM departed d, relation_unit_setting s
WHERE s.model_uuid = $1 AND s.relation_unit_uuid = $2
"""
_SUBORDINATE_OF = """
SELECT uuid, name, life_id FROM unit
WHERE model_uuid = $1 AND application_uuid = $2 AND principal_uuid = $3
"""
# The unit enters, and what was archived when it last left goes; the first to enter moves the
# relation from joining to joined (its message returned; no row: it had moved already).
_ENTER = f"""
WITH entered AS (
    INSERT INTO relation_unit (model_uuid, uuid, relation_endpoint_uuid, application_uuid, unit_uuid)
    VALUES ($1, $2, $3, $4, $5)
), unarchived AS (
    DELETE FROM relation_unit_archive
    WHERE model_uuid = $1 AND relation_endpoint_uuid = $3 AND unit_name = $7
)
UPDATE relation_status SET status_type_id = {RelationStatusId.joined:d}, updated_at = now()
WHERE model_uuid = $1 AND relation_uuid = $6 AND status_type_id = {RelationStatusId.joining:d}
RETURNING message
"""


def _entering(cmd: EnterScope) -> unit_in_relation.Wanted:
    return unit_in_relation.Wanted(cmd.relation, cmd.unit)


@handles(EnterScope, reads_first=_entering)
async def enter_scope(ctx: Context, cmd: EnterScope) -> Outcome:
    """A unit enters a relation's scope; settings, if given, replace its bag.

    A principal unit entering a container-scoped relation with a subordinate application gets
    that application's subordinate unit created, unless it exists. The first unit to enter moves
    the status from joining to joined. Idempotent.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    found = await unit_in_relation.find(ctx, m, _entering(cmd))
    rel, unit, endpoints = found.relation, found.unit, found.endpoints
    for what, life in (("relation", rel.life), ("unit", unit.life)):
        if life != Life.alive:
            raise errors.CannotEnterScopeNotAlive(
                f"unit {cmd.unit!r} cannot enter scope of relation {rel.relation_id} "
                f"({rel.key}): the {what} is {Life(life).label}",
                unit=cmd.unit,
                relation_id=rel.relation_id,
            )
    mine = lookup.endpoint_for_unit(endpoints, rel, cmd.unit)
    other = next((e for e in endpoints if e is not mine), None)
    out: list[Change] = []
    created: list[str] = []
    if rel.scope == Scope.container and other is not None:
        if unit.subordinate:
            _check_subordinate_placement(unit, other, rel)
        elif other.subordinate:
            sub = await conn.fetchrow(_SUBORDINATE_OF, m, other.application_uuid, unit.uuid)
            if sub is None:
                name, sub_changes = await add_subordinate_unit(
                    conn, m, other.application_uuid, other.application_name, unit.uuid
                )
                created.append(name)
                out += sub_changes
            elif sub["life_id"] != Life.alive:
                raise errors.CannotEnterScopeSubordinateNotAlive(
                    f"unit {cmd.unit!r} cannot enter scope of relation {rel.relation_id}: "
                    f"its subordinate {sub['name']!r} is {Life(sub['life_id']).label}",
                    unit=cmd.unit,
                    subordinate=sub["name"],
                )
    entering = mine.relation_unit_uuid is None
    ru_uuid = mine.relation_unit_uuid or str(uuid.uuid4())
    if entering:
        message = await conn.fetchval(
            _ENTER,
            m,
            ru_uuid,
            mine.relation_endpoint_uuid,
            unit.application_uuid,
            unit.uuid,
            rel.uuid,
            cmd.unit,
        )
        out.append(changes.relation_unit(m, rel, cmd.unit, "entered", mine.endpoint_name))
        if message is not None:
            out.append(changes.relation_status(m, rel, "joined", message))
    if cmd.settings is not None:
        write = await settings_bag.write(
            ctx,
            settings_bag.UNIT_BAG,
            m,
            ru_uuid,
            cmd.settings,
            replace=True,
            new_owner=entering,
            what=f"settings of {cmd.unit} in relation {rel.relation_id}",
        )
        if write.changed:
            out.append(changes.unit_settings(m, rel, cmd.unit, write.sha256))
    result = ScopeResult(id=rel.relation_id, unit=cmd.unit, in_scope=True, created_units=created)
    return Outcome(result, out)


def _check_subordinate_placement(unit: ActingUnit, other: RelationEndpoint, rel: RelationKey) -> None:
    """A subordinate unit enters a container relation only beside its principal's application."""
    if other.subordinate:
        return
    if unit.principal_application != other.application_name:
        raise errors.PotentialRelationUnitNotValid(
            f"subordinate unit {unit.name!r} cannot enter container-scoped relation "
            f"{rel.relation_id} ({rel.key}): its principal is not a unit of "
            f"{other.application_name!r}",
            unit=unit.name,
            relation_id=rel.relation_id,
        )


@handles(LeaveScope)
async def leave_scope(ctx: Context, cmd: LeaveScope) -> Outcome:
    """A unit leaves a relation's scope; its settings are archived, readable until the relation
    is removed or the unit enters again. Idempotent.

    A dying relation whose last unit leaves becomes dead and is removed; so does a dying unit
    that is then in no scope.
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=True)
    m = model.uuid
    rel = await lookup.relation(conn, m, cmd.relation)
    unit = await lookup.unit(conn, m, cmd.unit)
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid)
    mine = lookup.endpoint_for_unit(endpoints, rel, cmd.unit)
    out: list[Change] = []
    ru_uuid = await conn.fetchval(_RELATION_UNIT, m, mine.relation_endpoint_uuid, unit.uuid)
    if ru_uuid is not None:
        container = containers.of_unit(unit)
        await conn.execute(_LEAVE, m, ru_uuid, mine.relation_endpoint_uuid, cmd.unit, container)
        out.append(changes.relation_unit(m, rel, cmd.unit, "left", mine.endpoint_name))
        out += await lifecycle.reap(conn, m)
    return Outcome(ScopeResult(id=rel.relation_id, unit=cmd.unit, in_scope=False), out)


@handles(RelationUnits)
async def relation_units(ctx: Context, cmd: RelationUnits) -> Outcome:
    """Units in scope, optionally of one application (``relation-list``); as ``as_unit``, in a
    container-scoped relation, only those of its own container. Without it, every unit (the
    operator's view).
    """
    conn = ctx.conn
    model = await ctx.model(cmd.model, lock=False)
    m = model.uuid
    rel = await lookup.relation(conn, m, cmd.relation)
    named = cmd.as_unit is not None or cmd.application is not None
    endpoints = await lookup.relation_endpoints(conn, m, rel.uuid) if named else []
    container = None
    if cmd.as_unit is not None:
        reader = await lookup.unit(conn, m, cmd.as_unit)
        lookup.endpoint_for_unit(endpoints, rel, cmd.as_unit)
        container = containers.seen_from(rel, reader)
    if cmd.application is not None and lookup.endpoint_of(endpoints, cmd.application) is None:
        raise errors.ApplicationNotFoundForRelation(
            f"application {cmd.application!r} is not in relation {rel.relation_id} ({rel.key})",
            application=cmd.application,
            relation_id=rel.relation_id,
        )
    names = await units_in_scope(conn, m, rel.uuid, container=container)
    if cmd.application is not None:
        names = [n for n in names if unit_application(n) == cmd.application]
    return Outcome(names)
