"""A unit acting in a relation: the relation, the unit and the relation's endpoints, in one query.

Enter scope and the settings writes all start from these; one round trip instead of four or five
is most of what those commands cost the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.errors import RelationdError
from handlers import lookup, settings_bag
from handlers.context import Context
from handlers.db import Connection
from handlers.rows import ActingUnit, Relation, Row, ScopedEndpoint

# One row per endpoint of the relation (none: no such relation); rel is lookup.RELATION_COLUMNS.
# The unit's columns (unit_*, NULL: no such unit) add its principal's application and its
# application's leader; the endpoints' (ep_*) add the unit's scope row there. Each part is
# planned on its own (MATERIALIZED): joined flat, the planner's search over some twenty tables
# costs more than the round trips it saves. A settings write reads the bag it merges into here
# too (ep_bag_*, per endpoint: the unit's bag there, or the application's), a round trip less.
_QUERY = """
WITH rel AS MATERIALIZED ({relation_columns}    WHERE r.model_uuid = {m} AND {relation}
), acting AS MATERIALIZED (
    SELECT u.uuid AS unit_uuid, u.name AS unit_name, u.life_id AS unit_life_id,
           u.application_uuid AS unit_application_uuid, u.principal_uuid AS unit_principal_uuid,
           a.name AS unit_application_name, a.life_id AS unit_application_life_id,
           c.subordinate AS unit_subordinate,
           (SELECT pa.name FROM unit pu
            JOIN application pa ON pa.model_uuid = pu.model_uuid AND pa.uuid = pu.application_uuid
            WHERE pu.model_uuid = u.model_uuid AND pu.uuid = u.principal_uuid) AS unit_principal_application,
           (SELECT lu.name FROM application_leader l
            JOIN unit lu ON lu.model_uuid = l.model_uuid AND lu.uuid = l.unit_uuid
            WHERE l.model_uuid = u.model_uuid AND l.application_uuid = u.application_uuid) AS unit_leader
    FROM unit u
    JOIN application a ON a.model_uuid = u.model_uuid AND a.uuid = u.application_uuid
    JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
    WHERE u.model_uuid = {m} AND u.name = {unit}
), ep AS MATERIALIZED (
    -- v_relation_endpoint's columns, driven from the relation's two endpoint rows: through the
    -- view, a generic plan built every endpoint of the model and joined afterwards.
    SELECT re.uuid AS ep_relation_endpoint_uuid, re.endpoint_uuid AS ep_endpoint_uuid,
           re.application_uuid AS ep_application_uuid, a.name AS ep_application_name,
           c.subordinate AS ep_subordinate, cr.name AS ep_endpoint_name, crr.name AS ep_role,
           cr.interface AS ep_interface, rel.scope AS ep_scope, cr.capacity AS ep_capacity,
           cr.optional AS ep_optional, re.position AS ep_position
    FROM rel
    JOIN relation_endpoint re ON re.model_uuid = {m} AND re.relation_uuid = rel.uuid
    JOIN application_endpoint ae ON ae.model_uuid = {m} AND ae.uuid = re.endpoint_uuid
    JOIN application a ON a.model_uuid = {m} AND a.uuid = re.application_uuid
    JOIN charm c ON c.model_uuid = {m} AND c.uuid = a.charm_uuid
    JOIN charm_relation cr ON cr.model_uuid = {m} AND cr.uuid = ae.charm_relation_uuid
    JOIN charm_relation_role crr ON crr.id = cr.role_id
)
SELECT rel.*, acting.*, ep.*, ru.ep_relation_unit_uuid{bag_columns}
FROM rel
LEFT JOIN acting ON true
LEFT JOIN ep ON true
LEFT JOIN LATERAL (
    SELECT ru.uuid AS ep_relation_unit_uuid FROM relation_unit ru
    WHERE ru.model_uuid = {m} AND ru.relation_endpoint_uuid = ep.ep_relation_endpoint_uuid
      AND ru.unit_uuid = acting.unit_uuid
) ru ON true{bag_join}
ORDER BY ep.ep_position
"""
_RELATION = {False: "r.relation_id = {ref}", True: "r.uuid = {ref}::uuid"}  # by UUID?
_BAG_COLUMNS = ", bag.keys AS ep_bag_keys, bag.vals AS ep_bag_vals, bag.sha256 AS ep_bag_sha256"
_BAG_OWNER = {
    settings_bag.UNIT_BAG: "ru.ep_relation_unit_uuid",
    settings_bag.APPLICATION_BAG: "ep.ep_relation_endpoint_uuid",
}
# The bag a row of find_many's asks for, by number (0: none).
_BAG_NUMBER: dict[settings_bag.Bag | None, int] = {
    None: 0,
    settings_bag.UNIT_BAG: 1,
    settings_bag.APPLICATION_BAG: 2,
}


def _query(by_uuid: bool, bag: settings_bag.Bag | None) -> str:
    bag_join = ""
    if bag is not None:
        bag_join = f"\nLEFT JOIN LATERAL ({bag.read_with_hash_sql(_BAG_OWNER[bag])}) bag ON true"
    return _QUERY.format(
        relation_columns=lookup.RELATION_COLUMNS,
        relation=_RELATION[by_uuid].format(ref="$2"),
        m="$1",
        unit="$3",
        bag_columns="" if bag is None else _BAG_COLUMNS,
        bag_join=bag_join,
    )


def _many_query(by_uuid: bool) -> str:
    """find's query for every row of the arrays, each with the bag its row asks for (k.bag, by
    _BAG_NUMBER): each bag's read is gated on it, so a row reads one bag at most."""
    joins = []
    for name, bag in (("ubag", settings_bag.UNIT_BAG), ("abag", settings_bag.APPLICATION_BAG)):
        read = bag.read_with_hash_sql(_BAG_OWNER[bag], model="k.m")
        joins.append(
            f"\nLEFT JOIN LATERAL (SELECT * FROM ({read}) b WHERE k.bag = {_BAG_NUMBER[bag]}) {name} ON true"
        )
    columns = ", ".join(f"COALESCE(ubag.{c}, abag.{c}) AS ep_bag_{c}" for c in ("keys", "vals", "sha256"))
    one = _QUERY.format(
        relation_columns=lookup.RELATION_COLUMNS,
        relation=_RELATION[by_uuid].format(ref="k.ref"),
        m="k.m",
        unit="k.unit",
        bag_columns=", " + columns,
        bag_join="".join(joins),
    )
    ref_type = "uuid" if by_uuid else "bigint"
    return f"""
SELECT k.o AS wanted, f.*
FROM unnest($1::uuid[], $2::{ref_type}[], $3::text[], $4::int[]) WITH ORDINALITY AS k(m, ref, unit, bag, o)
CROSS JOIN LATERAL ({one}) f
ORDER BY k.o, f.ep_position
"""


_QUERIES = {
    (by_uuid, bag): _query(by_uuid, bag)
    for by_uuid in (False, True)
    for bag in (None, settings_bag.UNIT_BAG, settings_bag.APPLICATION_BAG)
}
_MANY_QUERIES = {by_uuid: _many_query(by_uuid) for by_uuid in (False, True)}


@dataclass(frozen=True, slots=True)
class UnitInRelation:
    """The relation, the unit acting in it, and the relation's endpoints (requirer first), each
    with the unit's scope row there."""

    relation: Relation
    unit: ActingUnit
    endpoints: list[ScopedEndpoint]
    # The bag find was asked for, by relation endpoint: the unit's there (empty where it is not
    # in scope) or the application's.
    bags: dict[str, settings_bag.Stored]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a handler asks find for first: a unit in a relation of the command's model, and a bag."""

    relation: int | str
    unit: str
    bag: settings_bag.Bag | None = None


async def find(ctx: Context, model_uuid: str, wanted: Wanted) -> UnitInRelation:
    """The relation by id or UUID and the unit by name, with each endpoint's bag if asked.
    Raises RelationNotFound, then UnitNotFound.

    Taken from what the transaction read ahead for the command (find_many), if it did.
    """
    ahead: UnitInRelation | RelationdError | None = ctx.read_ahead.pop((str(model_uuid), wanted), None)
    if ahead is None:
        query = _QUERIES[not isinstance(wanted.relation, int), wanted.bag]
        rows = await ctx.conn.fetch(query, model_uuid, wanted.relation, wanted.unit)
        ahead = _found(rows, wanted)
    if isinstance(ahead, RelationdError):
        raise ahead
    return ahead


async def find_many(
    conn: Connection, wanted: list[tuple[str, Wanted]]
) -> list[UnitInRelation | RelationdError]:
    """find for each (model UUID, wanted), in one statement per kind of relation reference (id
    or UUID); in order, the result or the error find would raise."""
    found: dict[int, UnitInRelation | RelationdError] = {}
    for by_uuid in (False, True):
        part = [i for i, (_, w) in enumerate(wanted) if isinstance(w.relation, int) != by_uuid]
        if not part:
            continue
        rows = await conn.fetch(
            _MANY_QUERIES[by_uuid],
            [wanted[i][0] for i in part],
            [wanted[i][1].relation for i in part],
            [wanted[i][1].unit for i in part],
            [_BAG_NUMBER[wanted[i][1].bag] for i in part],
        )
        by_row: dict[int, list[Row]] = {}
        for row in rows:
            by_row.setdefault(row["wanted"], []).append(row)
        for n, i in enumerate(part, start=1):
            found[i] = _found(by_row.get(n, []), wanted[i][1])
    return [found[i] for i in range(len(wanted))]


def _found(rows: Sequence[Row], wanted: Wanted) -> UnitInRelation | RelationdError:
    if not rows:
        return lookup.relation_not_found(wanted.relation)
    if rows[0]["unit_uuid"] is None:
        return lookup.unit_not_found(wanted.unit)
    endpoints = [row for row in rows if row["ep_relation_endpoint_uuid"] is not None]
    return UnitInRelation(
        Relation.from_record(rows[0]),
        ActingUnit.from_record(rows[0], prefix="unit_"),
        [ScopedEndpoint.from_record(row, prefix="ep_") for row in endpoints],
        {}
        if wanted.bag is None
        else {
            row["ep_relation_endpoint_uuid"]: settings_bag.Stored.from_columns(
                row["ep_bag_keys"], row["ep_bag_vals"], row["ep_bag_sha256"]
            )
            for row in endpoints
        },
    )
