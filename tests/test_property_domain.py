"""Random command sequences, each in a fresh model, keep the domain's invariants after every step.

The invariants are read by SQL, not through the handlers: relation ids unique and never handed out
twice (the sequence only grows), no endpoint over its limit, no dead relation left (so none with
units in scope), every subordinate unit has its principal, event sequence numbers gapless, nothing
dying that nothing holds any more, no alive relation of a dying application, every stored bag hash
matches its bag, and no command ends in an Internal error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.settings_bag import bag_hash
from tests.domain import CommandFailed, Domain

SRC = {
    "name": "src",
    "provides": {
        "one": {"interface": "one", "limit": 1},
        "three": {"interface": "three", "limit": 3},
        "many": "many",
    },
    "peers": {"ring": "ring"},
}
SINK = {
    "name": "sink",
    "requires": {"one": "one", "three": "three", "many": {"interface": "many", "limit": 2}},
}
SUB = {
    "name": "sub",
    "subordinate": True,
    "requires": {"host": {"interface": "juju-info", "scope": "container"}, "many": "many"},
}
APPS: dict[str, dict[str, Any]] = {
    "src": SRC,
    "sink-a": SINK,
    "sink-b": SINK,
    "sink-c": SINK,
    "sink-d": SINK,
    "sub": SUB,
}
# How many units each application is deployed with first; asking units of the subordinate is refused.
INITIAL_UNITS = st.fixed_dictionaries({name: st.integers(0, 2) for name in APPS})
INTEGRATIONS = [
    ("sink-a:one", "src"),
    ("sink-b:one", "src"),
    ("sink-c:one", "src"),
    ("sink-a:three", "src"),
    ("sink-b:three", "src"),
    ("sink-c:three", "src"),
    ("sink-d:three", "src"),
    ("sink-a:many", "src"),
    ("sink-b:many", "src:many"),
    ("sub:many", "src"),
    ("sub", "sink-a"),
    ("sub", "sink-b"),
    ("sub:host", "src"),
    ("sink-a", "src"),  # ambiguous
    ("sink-a", "sink-b"),  # nothing in common
    ("sub", "src"),  # infers the global many
]
SETTINGS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["", "1", "2"]), max_size=3)
PICK = st.integers(min_value=0, max_value=63)

_INTEGRATE = st.tuples(st.just("integrate"), st.sampled_from(INTEGRATIONS))
# The pairs on limited endpoints, drawn more often so that limits are reached and freed again.
_LIMITED = st.tuples(st.just("integrate"), st.sampled_from(INTEGRATIONS[:9]))
_ENTER = st.tuples(st.just("enter_scope"), PICK, PICK, st.one_of(st.none(), SETTINGS))
_STATUS = st.sampled_from(["joined", "suspending", "suspended", "broken", "error", "joining"])
# Repeated branches weigh more: scope and relations are what the invariants are about.
STEP = st.one_of(
    _INTEGRATE,
    _LIMITED,
    _LIMITED,
    _LIMITED,
    _ENTER,
    _ENTER,
    _ENTER,
    st.tuples(st.just("leave_scope"), PICK, PICK),
    st.tuples(st.just("remove_relation"), PICK),
    st.tuples(st.just("add_units"), st.sampled_from(sorted(APPS)), st.integers(1, 2)),
    st.tuples(st.just("remove_unit"), PICK),
    st.tuples(st.just("remove_application"), st.sampled_from(sorted(APPS))),
    st.tuples(st.just("deploy"), st.sampled_from(sorted(APPS)), st.integers(0, 1)),
    st.tuples(st.just("set_unit_settings"), PICK, PICK, SETTINGS),
    st.tuples(st.just("set_application_settings"), PICK, PICK, SETTINGS),
    st.tuples(st.just("set_relation_status"), PICK, PICK, _STATUS),
)


@dataclass
class Seen:
    """What has been observed so far in one model."""

    ids: dict[int, str] = field(default_factory=dict)  # relation id -> uuid, ever handed out
    sequence: int = 0
    codes: list[str] = field(default_factory=list)


async def names(domain: Domain, sql: str, *args: Any) -> list[Any]:
    async with domain.pool.acquire() as conn:
        return [r[0] for r in await conn.fetch(sql, domain.model_uuid, *args)]


async def relation_ids(domain: Domain) -> list[int]:
    return await names(domain, "SELECT relation_id FROM relation WHERE model_uuid = $1 ORDER BY relation_id")


async def units(domain: Domain, relation_id: int | None = None) -> list[str]:
    """Every unit, or (mostly) the units of the applications in one relation."""
    if relation_id is None:
        return await names(domain, "SELECT name FROM unit WHERE model_uuid = $1 ORDER BY name")
    return await names(
        domain,
        """SELECT u.name FROM unit u JOIN v_relation_endpoint v
           ON v.model_uuid = u.model_uuid AND v.application_uuid = u.application_uuid
           WHERE u.model_uuid = $1 AND v.relation_id = $2 ORDER BY u.name""",
        relation_id,
    )


def pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)] if items else None


async def apply(domain: Domain, step: tuple[Any, ...]) -> dict[str, Any] | None:
    """The command body for a step, with picks resolved against the model as it is now."""
    kind = step[0]
    if kind == "integrate":
        return {"type": "integrate", "endpoints": list(step[1])}
    if kind == "add_units":
        return {"type": "add_units", "application": step[1], "count": step[2]}
    if kind == "remove_application":
        return {"type": "remove_application", "application": step[1]}
    if kind == "deploy":
        return {"type": "deploy", "application": step[1], "charm": APPS[step[1]], "units": step[2]}
    if kind == "remove_unit":
        unit = pick(await units(domain), step[1])
        return None if unit is None else {"type": "remove_unit", "unit": unit}
    rel = pick(await relation_ids(domain), step[1])
    if kind == "remove_relation":
        return None if rel is None else {"type": "remove_relation", "relation": rel}
    if rel is None:
        return None
    # One pick in eight from every unit, so that units outside the relation are tried too.
    unit = pick(await units(domain, None if step[2] % 8 == 7 else rel), step[2])
    if unit is None:
        return None
    body: dict[str, Any] = {"type": kind, "relation": rel, "unit": unit}
    if kind == "enter_scope" and step[3] is not None:
        body["settings"] = step[3]
    elif kind in ("set_unit_settings", "set_application_settings"):
        body["settings"] = step[3]
    elif kind == "set_relation_status":
        body["status"] = step[3]
        body["message"] = "because" if step[3] == "error" else ""
    return body


async def check_invariants(domain: Domain, seen: Seen) -> None:
    m = domain.model_uuid
    async with domain.pool.acquire() as conn:
        relations = await conn.fetch(
            "SELECT relation_id, uuid, life_id FROM relation WHERE model_uuid = $1", m
        )
        sequence = await conn.fetchval("SELECT value FROM relation_sequence WHERE model_uuid = $1", m)
        over_limit = await conn.fetch(
            """SELECT re.endpoint_uuid, cr.capacity, count(*) AS used
               FROM relation_endpoint re
               JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
               JOIN application_endpoint ae ON ae.model_uuid = re.model_uuid AND ae.uuid = re.endpoint_uuid
               JOIN charm_relation cr ON cr.model_uuid = ae.model_uuid AND cr.uuid = ae.charm_relation_uuid
               WHERE re.model_uuid = $1 AND r.life_id < 2 AND NOT r.is_peer AND cr.capacity IS NOT NULL
               GROUP BY re.endpoint_uuid, cr.capacity HAVING count(*) > cr.capacity""",
            m,
        )
        dead_in_scope = await conn.fetchval(
            """SELECT count(*) FROM relation r WHERE r.model_uuid = $1 AND r.life_id = 2 AND EXISTS (
                 SELECT 1 FROM relation_unit ru JOIN relation_endpoint re
                 ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
                 WHERE re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid)""",
            m,
        )
        orphans = await conn.fetch(
            """SELECT u.name FROM unit u
               JOIN application a ON a.model_uuid = u.model_uuid AND a.uuid = u.application_uuid
               JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
               WHERE u.model_uuid = $1 AND (
                 (c.subordinate AND (u.principal_uuid IS NULL OR NOT EXISTS (
                    SELECT 1 FROM unit p WHERE p.model_uuid = u.model_uuid AND p.uuid = u.principal_uuid)))
                 OR (NOT c.subordinate AND u.principal_uuid IS NOT NULL))""",
            m,
        )
        seqs = await conn.fetchval(
            "SELECT COALESCE(array_agg(seq ORDER BY seq), '{}') FROM change_event WHERE model_uuid = $1", m
        )
        unheld = await conn.fetch(
            """SELECT 'relation ' || r.relation_id FROM relation r
               WHERE r.model_uuid = $1 AND r.life_id > 0 AND NOT EXISTS (
                 SELECT 1 FROM relation_unit ru JOIN relation_endpoint re
                 ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
                 WHERE re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid)
               UNION ALL
               SELECT 'unit ' || u.name FROM unit u
               WHERE u.model_uuid = $1 AND u.life_id > 0
                 AND NOT EXISTS (SELECT 1 FROM relation_unit ru
                                 WHERE ru.model_uuid = u.model_uuid AND ru.unit_uuid = u.uuid)
                 AND NOT EXISTS (SELECT 1 FROM unit s
                                 WHERE s.model_uuid = u.model_uuid AND s.principal_uuid = u.uuid)
               UNION ALL
               SELECT 'application ' || a.name FROM application a
               WHERE a.model_uuid = $1 AND a.life_id > 0
                 AND NOT EXISTS (SELECT 1 FROM unit u
                                 WHERE u.model_uuid = a.model_uuid AND u.application_uuid = a.uuid)
                 AND NOT EXISTS (SELECT 1 FROM relation_endpoint re
                                 WHERE re.model_uuid = a.model_uuid AND re.application_uuid = a.uuid)""",
            m,
        )
        alive_with_dying_app = await conn.fetch(
            """SELECT r.relation_id FROM relation r
               JOIN relation_endpoint re ON re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid
               JOIN application a ON a.model_uuid = re.model_uuid AND a.uuid = re.application_uuid
               WHERE r.model_uuid = $1 AND r.life_id = 0 AND a.life_id <> 0""",
            m,
        )
        unit_bags = await conn.fetch(
            """SELECT h.sha256, COALESCE((SELECT json_object_agg(s.key, s.value) FROM relation_unit_setting s
                 WHERE s.model_uuid = h.model_uuid AND s.relation_unit_uuid = h.relation_unit_uuid), '{}')
                 AS bag
               FROM relation_unit_settings_hash h WHERE h.model_uuid = $1""",
            m,
        )
        app_bags = await conn.fetch(
            """SELECT h.sha256, COALESCE((SELECT json_object_agg(s.key, s.value)
                 FROM relation_application_setting s WHERE s.model_uuid = h.model_uuid
                 AND s.relation_endpoint_uuid = h.relation_endpoint_uuid), '{}') AS bag
               FROM relation_application_settings_hash h WHERE h.model_uuid = $1""",
            m,
        )

    ids = [r["relation_id"] for r in relations]
    assert len(ids) == len(set(ids)), f"relation ids not unique: {ids}"
    new = {r["relation_id"]: r["uuid"] for r in relations if r["relation_id"] not in seen.ids}
    for relation_id, relation_uuid in ((r["relation_id"], r["uuid"]) for r in relations):
        assert seen.ids.get(relation_id, relation_uuid) == relation_uuid, f"relation id {relation_id} reused"
    if seen.ids and new:
        assert min(new) > max(seen.ids), f"new ids {sorted(new)} not above every id handed out before"
    seen.ids.update(new)
    assert sequence >= seen.sequence, "relation sequence went back"
    assert all(i < sequence for i in ids), f"an id {max(ids)} at or above the sequence {sequence}"
    seen.sequence = sequence
    assert over_limit == [], f"endpoints over their limit: {[dict(r) for r in over_limit]}"
    assert dead_in_scope == 0, "a dead relation has units in scope"
    assert all(r["life_id"] != 2 for r in relations), "a dead relation was left behind"
    assert orphans == [], f"units without a proper principal: {[r['name'] for r in orphans]}"
    assert list(seqs) == list(range(1, len(seqs) + 1)), f"event seq not gapless: {seqs}"
    assert unheld == [], f"not alive, nothing holds them, yet not removed: {[r[0] for r in unheld]}"
    assert alive_with_dying_app == [], "an alive relation of an application that is not alive"
    for row in [*unit_bags, *app_bags]:
        assert row["sha256"] == bag_hash(dict(row["bag"])), "a stored hash does not match its bag"


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(initial=INITIAL_UNITS, steps=st.lists(STEP, min_size=10, max_size=30))
async def test_random_command_sequences_keep_the_domain_invariants(
    pool: Any, initial: dict[str, int], steps: list[tuple[Any, ...]]
) -> None:
    domain = Domain(pool)
    await domain.new_model(f"p-{uuid.uuid4().hex[:12]}")
    seen = Seen()
    for name, count in initial.items():
        body = {"type": "deploy", "application": name, "charm": APPS[name], "units": count}
        try:
            await domain.run(body)
        except CommandFailed as err:
            assert (err.code, APPS[name].get("subordinate")) == ("SubordinateUnitsNotAddable", True), err
            await domain.run({**body, "units": 0})
        await check_invariants(domain, seen)

    for step in steps:
        body = await apply(domain, step)
        if body is None:
            continue
        try:
            await domain.run(body)
        except CommandFailed as err:
            assert err.code != "Internal", f"{body} -> {err}"
            seen.codes.append(err.code)
        await check_invariants(domain, seen)
