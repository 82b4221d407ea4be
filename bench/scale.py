"""Scale: the same commands in a model holding 100,000 units and 100,000 relations (and in one of
1,000 models of 100 relations each) against an empty model, and the plans of the hot queries.

The models are created through the protocol; their contents are bulk-loaded straight into SQL
(INSERT ... SELECT over generate_series, one transaction per load), through the schema's keys,
checks and triggers, the deferred relation_endpoint constraint triggers included (they fire at
commit, which is part of the load time). Every loaded relation is joined (two units in scope,
each with a setting, and application settings on the provider side) and has one published event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.contenders import RELATIOND, Options, start
from bench.load import LoadClient, closed_loop, run_all
from bench.workload import RelationdWorkload
from handlers.db import init_connection

# One statement per step; $1 models (uuid[]), $2 requirer apps, $3 provider apps, $4 units per
# model, $5 relations per model. Names: lapp<i> (requirers), ldb<j> (providers).
_LOAD = [
    """
    CREATE TEMP TABLE bl_model ON COMMIT DROP AS
    SELECT m.uuid AS model_uuid, s.uuid AS space_uuid,
           (SELECT value FROM relation_sequence WHERE model_uuid = m.uuid) AS rel_base,
           (SELECT value FROM model_event_sequence WHERE model_uuid = m.uuid) AS seq_base
    FROM unnest($1::uuid[]) AS m(uuid)
    JOIN space s ON s.model_uuid = m.uuid AND s.name = 'alpha'
    """,
    """
    CREATE TEMP TABLE bl_app ON COMMIT DROP AS
    SELECT b.model_uuid, b.space_uuid, k.kind, k.i,
           md5(b.model_uuid::text || ':app:' || k.kind || ':' || k.i)::uuid AS uuid,
           md5(b.model_uuid::text || ':charm:' || k.kind || ':' || k.i)::uuid AS charm_uuid,
           (CASE WHEN k.kind = 0 THEN 'lapp' ELSE 'ldb' END) || k.i AS name,
           ($4 / ($2 + $3) + CASE WHEN k.ord < $4 % ($2 + $3) THEN 1 ELSE 0 END)::int AS units
    FROM bl_model b
    CROSS JOIN (SELECT 0 AS kind, g AS i, g AS ord FROM generate_series(0, $2 - 1) g
                UNION ALL
                SELECT 1, g, $2 + g FROM generate_series(0, $3 - 1) g) k
    """,
    "CREATE UNIQUE INDEX ON bl_app (model_uuid, kind, i)",
    """
    INSERT INTO charm (model_uuid, uuid, name, subordinate)
    SELECT model_uuid, charm_uuid, CASE WHEN kind = 0 THEN 'bench-app' ELSE 'bench-db' END, false
    FROM bl_app
    """,
    """
    INSERT INTO charm_relation (model_uuid, uuid, charm_uuid, name, role_id, interface, capacity,
                                optional, scope_id)
    SELECT a.model_uuid, md5(a.charm_uuid::text || ':' || e.name)::uuid, a.charm_uuid, e.name,
           CASE WHEN e.name = 'db' AND a.kind = 0 THEN 1 ELSE 0 END, e.interface, NULL, false, 0
    FROM bl_app a CROSS JOIN (VALUES ('db', 'bench-sql'), ('juju-info', 'juju-info')) AS e(name, interface)
    """,
    """
    INSERT INTO application (model_uuid, uuid, name, charm_uuid, life_id, unit_sequence)
    SELECT model_uuid, uuid, name, charm_uuid, 0, units FROM bl_app
    """,
    """
    INSERT INTO application_endpoint (model_uuid, uuid, application_uuid, charm_relation_uuid, space_uuid)
    SELECT a.model_uuid, md5(a.uuid::text || ':ep:' || e.name)::uuid, a.uuid,
           md5(a.charm_uuid::text || ':' || e.name)::uuid, a.space_uuid
    FROM bl_app a CROSS JOIN (VALUES ('db'), ('juju-info')) AS e(name)
    """,
    """
    INSERT INTO unit (model_uuid, uuid, application_uuid, name, number, life_id)
    SELECT a.model_uuid, md5(a.uuid::text || ':u:' || n)::uuid, a.uuid, a.name || '/' || n, n, 0
    FROM bl_app a CROSS JOIN LATERAL generate_series(0, a.units - 1) AS n
    """,
    """
    INSERT INTO application_leader (model_uuid, application_uuid, unit_uuid)
    SELECT model_uuid, uuid, md5(uuid::text || ':u:0')::uuid FROM bl_app WHERE units > 0
    """,
    """
    CREATE TEMP TABLE bl_rel ON COMMIT DROP AS
    SELECT b.model_uuid, b.rel_base + k AS relation_id, b.seq_base + k + 1 AS seq,
           md5(b.model_uuid::text || ':rel:' || k)::uuid AS uuid,
           r.uuid AS req_uuid, r.name AS req_name, r.units AS req_units, r.i AS req_i,
           p.uuid AS prov_uuid, p.name AS prov_name, p.units AS prov_units, p.i AS prov_i
    FROM bl_model b
    CROSS JOIN generate_series(0, $5 - 1) AS k
    JOIN bl_app r ON r.model_uuid = b.model_uuid AND r.kind = 0 AND r.i = k / $3
    JOIN bl_app p ON p.model_uuid = b.model_uuid AND p.kind = 1 AND p.i = k % $3
    """,
    """
    INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer, scope_id, life_id)
    SELECT model_uuid, uuid, relation_id, req_name || ':db ' || prov_name || ':db', false, 0, 0
    FROM bl_rel
    """,
    """
    INSERT INTO relation_endpoint (model_uuid, uuid, relation_uuid, endpoint_uuid, application_uuid, position)
    SELECT model_uuid, md5(uuid::text || ':re:0')::uuid, uuid, md5(req_uuid::text || ':ep:db')::uuid,
           req_uuid, 0
    FROM bl_rel
    UNION ALL
    SELECT model_uuid, md5(uuid::text || ':re:1')::uuid, uuid, md5(prov_uuid::text || ':ep:db')::uuid,
           prov_uuid, 1
    FROM bl_rel
    """,
    """
    INSERT INTO relation_status (model_uuid, relation_uuid, status_type_id)
    SELECT model_uuid, uuid, 1 FROM bl_rel
    """,
    """
    INSERT INTO relation_unit (model_uuid, uuid, relation_endpoint_uuid, application_uuid, unit_uuid)
    SELECT model_uuid, md5(uuid::text || ':ru:0')::uuid, md5(uuid::text || ':re:0')::uuid, req_uuid,
           md5(req_uuid::text || ':u:' || (prov_i % req_units))::uuid
    FROM bl_rel WHERE req_units > 0
    UNION ALL
    SELECT model_uuid, md5(uuid::text || ':ru:1')::uuid, md5(uuid::text || ':re:1')::uuid, prov_uuid,
           md5(prov_uuid::text || ':u:' || (req_i % prov_units))::uuid
    FROM bl_rel WHERE prov_units > 0
    """,
    """
    CREATE TEMP TABLE bl_ru ON COMMIT DROP AS
    SELECT model_uuid, md5(uuid::text || ':ru:0')::uuid AS uuid, 'h' || relation_id || 'r' AS address
    FROM bl_rel WHERE req_units > 0
    UNION ALL
    SELECT model_uuid, md5(uuid::text || ':ru:1')::uuid, 'h' || relation_id || 'p'
    FROM bl_rel WHERE prov_units > 0
    """,
    """
    INSERT INTO relation_unit_setting (model_uuid, relation_unit_uuid, key, value)
    SELECT model_uuid, uuid, 'address', address FROM bl_ru
    """,
    """
    INSERT INTO relation_unit_settings_hash (model_uuid, relation_unit_uuid, sha256)
    SELECT model_uuid, uuid, encode(sha256(convert_to('{"address":"' || address || '"}', 'UTF8')), 'hex')
    FROM bl_ru
    """,
    """
    INSERT INTO relation_application_setting (model_uuid, relation_endpoint_uuid, key, value)
    SELECT model_uuid, md5(uuid::text || ':re:1')::uuid, 'database', 'd' || relation_id FROM bl_rel
    """,
    """
    INSERT INTO relation_application_settings_hash (model_uuid, relation_endpoint_uuid, sha256)
    SELECT model_uuid, md5(uuid::text || ':re:1')::uuid,
           encode(sha256(convert_to('{"database":"d' || relation_id || '"}', 'UTF8')), 'hex')
    FROM bl_rel
    """,
    """
    INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key, payload)
    SELECT model_uuid, seq, 'relation', 'created', model_uuid::text || '.relation.' || relation_id,
           jsonb_build_object('relation_uuid', uuid, 'relation_id', relation_id,
                              'key', req_name || ':db ' || prov_name || ':db'),
           '{"life": "alive", "status": "joined"}'
    FROM bl_rel
    """,
    """
    UPDATE relation_sequence s SET value = s.value + $5
    FROM bl_model b WHERE s.model_uuid = b.model_uuid
    """,
    """
    UPDATE model_event_sequence s SET value = s.value + $5
    FROM bl_model b WHERE s.model_uuid = b.model_uuid
    """,
]


async def bulk_load(
    database_url: str, model_uuids: list[str], *, units: int, relations: int, providers: int = 100
) -> float:
    """Load ``units`` units and ``relations`` relations into each model; seconds taken (commit included)."""
    providers = min(providers, relations) if relations else 1
    requirers = max(1, math.ceil(relations / providers))
    conn = await asyncpg.connect(database_url)
    started = time.monotonic()
    try:
        async with conn.transaction():
            args = (model_uuids, requirers, providers, units, relations)
            for step in _LOAD:
                used = sorted({int(n) for n in re.findall(r"\$(\d)", step)})
                await conn.execute(_renumber(step, used), *(args[n - 1] for n in used))
        elapsed = time.monotonic() - started
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return elapsed


def _renumber(sql: str, used: list[int]) -> str:
    """asyncpg wants $1..$n with none missing: renumber the parameters a step uses."""
    mapping = {old: new for new, old in enumerate(used, start=1)}
    return re.sub(r"\$(\d)", lambda m: f"${mapping[int(m.group(1))]}", sql)


# ---- query plans ------------------------------------------------------------------------------


# The end of a command applied alone: its model, its events' arrays, its reply's.
_FINISH_PARAMS = ["model", "texts", "texts", "texts", "jsons", "jsons", "command_ids", "command_ids", "jsons"]


# The hot queries of the mix (and of leave scope's reaping), with how to fill their parameters
# from a sample in the loaded model. Taken from handlers/ and daemon/ verbatim where possible.
def hot_queries() -> dict[str, tuple[str, list[str]]]:
    from daemon import applier, outbox
    from handlers import (
        access,
        integrate,
        lifecycle,
        lookup,
        relation_rows,
        scope,
        settings,
        settings_bag,
        unit_in_relation,
    )

    bag = settings_bag.UNIT_BAG
    app_bag = settings_bag.APPLICATION_BAG
    return {
        "write: claim, model lock, access level": (
            applier._CLAIM_LOCKING_MODEL[False],
            ["model_name", "user", "command_id", "command_type", "digest"],
        ),
        "model by name (lock)": (lookup._MODEL_BY_NAME + " FOR NO KEY UPDATE", ["model_name"]),
        "application by name": (lookup._APPLICATION, ["model", "app_name"]),
        "unit by name": (lookup._UNIT, ["model", "unit_name"]),
        "relation by id": (lookup._RELATION_BY_ID, ["model", "relation_id"]),
        "relation endpoints": (lookup._RELATION_ENDPOINTS, ["model", "relation_uuid"]),
        "integrate: applications, endpoints and use": (
            integrate._APPLICATIONS,
            ["model", "app_name", "app_name"],
        ),
        "integrate: relation by key": (integrate._RELATION_BY_KEY, ["model", "relation_key"]),
        "trigger: endpoint count": (
            "SELECT count(*) FROM relation_endpoint WHERE model_uuid = $1 AND relation_uuid = $2",
            ["model", "relation_uuid"],
        ),
        "units in scope": (relation_rows._UNITS_IN_SCOPE, ["model", "relation_uuid", "no_container"]),
        "unit in relation (scope, settings writes)": (
            unit_in_relation._QUERIES[False, None],
            ["model", "relation_id", "unit_name"],
        ),
        "unit in relation with the unit's bag (unit settings write)": (
            unit_in_relation._QUERIES[False, settings_bag.UNIT_BAG],
            ["model", "relation_id", "unit_name"],
        ),
        "unit in relation, read ahead for a batch (set-wise)": (
            unit_in_relation._MANY_QUERIES[False],
            ["models", "relation_ids", "unit_names", "bag_numbers"],
        ),
        "scope: relation unit": (scope._RELATION_UNIT, ["model", "relation_endpoint_uuid", "unit_uuid"]),
        "settings: a unit's bag by its name (reads)": (
            settings._UNIT_BAG,
            ["model", "relation_endpoint_uuid", "unit_name"],
        ),
        "settings: unit bag read": (bag.read_sql(), ["model", "relation_unit_uuid"]),
        "settings: unit bag and hash": (bag.read_with_hash_sql(), ["model", "relation_unit_uuid"]),
        "settings: application bag read": (app_bag.read_sql(), ["model", "relation_endpoint_uuid"]),
        "settings: application bag and hash": (
            app_bag.read_with_hash_sql(),
            ["model", "relation_endpoint_uuid"],
        ),
        "leader of application": (lookup._LEADER_OF, ["model", "app_uuid"]),
        "events: next sequence": (
            "UPDATE model_event_sequence SET value = value + $2 WHERE model_uuid = $1 RETURNING value - $2",
            ["model", "one"],
        ),
        "dedupe: stored reply": (applier._STORED, ["command_id"]),
        "end of a command applied alone (events, outbox rows, reply)": (
            applier._FINISH[True, True, None],
            _FINISH_PARAMS,
        ),
        "end of a unit settings write (events, outbox rows, reply, the bag)": (
            applier._FINISH[True, True, settings_bag.UNIT_BAG],
            [*_FINISH_PARAMS, "model", "relation_unit_uuid", "no_keys", "keys", "values", "hash"],
        ),
        "outbox: pending batch": (outbox._PENDING, ["batch", "no_event_ids"]),
        "outbox: backlog": (outbox._BACKLOG, ["no_event_ids"]),
        "access: level of user": (access._LEVEL_OF, ["model", "user"]),
        "reap: dying relations": (lifecycle._REAPABLE_RELATIONS, ["model"]),
        "reap: dying units": (lifecycle._REAPABLE_UNITS, ["model"]),
        "reap: dying applications": (lifecycle._REAPABLE_APPLICATIONS, ["model"]),
        "relations of application": (lifecycle._RELATIONS_OF_APPLICATION, ["model", "app_uuid"]),
    }


_SMALL_TABLE_ROWS = 5000

# Tables small by nature: a sequential scan of them is what the planner should do.
_LOOKUP_TABLES = {
    "life",
    "relation_status_type",
    "charm_relation_role",
    "charm_relation_scope",
    "access_level",
    "space",
    "model",
}


async def _sample(conn: Any, model_uuid: str, model_name: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        """
        SELECT r.uuid AS relation_uuid, r.relation_id, r.key, re.uuid AS relation_endpoint_uuid,
               re.endpoint_uuid, re.application_uuid AS app_uuid, a.name AS app_name,
               ru.uuid AS relation_unit_uuid, ru.unit_uuid, u.name AS unit_name
        FROM relation r
        JOIN relation_endpoint re ON re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid
        JOIN application a ON a.model_uuid = re.model_uuid AND a.uuid = re.application_uuid
        JOIN relation_unit ru ON ru.model_uuid = re.model_uuid AND ru.relation_endpoint_uuid = re.uuid
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
        WHERE r.model_uuid = $1 AND re.position = 0
        ORDER BY r.relation_id DESC LIMIT 1
        """,
        model_uuid,
    )
    if row is None:
        raise RuntimeError(f"model {model_name} has no relation with a unit in scope to sample")
    out = dict(row)
    out.update(
        models="{" + str(model_uuid) + "}",
        relation_ids="{" + str(row["relation_id"]) + "}",
        unit_names='{"' + row["unit_name"] + '"}',
        bag_numbers="{1}",
        no_keys="{}",
        keys="{bench-key}",
        values="{bench-value}",
        hash="0" * 64,
        model=model_uuid,
        model_name=model_name,
        relation_key=row["key"],
        one=1,
        command_id="no-such-command",
        command_type="integrate",
        digest="0" * 64,
        batch=500,
        no_event_ids="{}",
        texts="{relation}",
        jsons='{"{}"}',
        command_ids="{no-such-command}",
        no_container=None,
        user="guest",
    )
    return out


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _walk(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _walk(child)
    return nodes


async def explain_hot_queries(database_url: str, model_uuid: str, model_name: str) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE each hot query (custom and generic plan, as asyncpg's prepared statements
    get after five runs), in a transaction that is rolled back."""
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    out: list[dict[str, Any]] = []
    try:
        sample = await _sample(conn, model_uuid, model_name)
        for name, (sql, params) in hot_queries().items():
            entry: dict[str, Any] = {"query": name}
            for mode in ("force_custom_plan", "force_generic_plan"):
                tr = conn.transaction()
                await tr.start()
                try:
                    await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                    await conn.execute(f"PREPARE bench_q AS {sql}")
                    args = ", ".join(_literal(sample[p]) for p in params)
                    call = f"EXECUTE bench_q({args})" if params else "EXECUTE bench_q"
                    raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {call}")
                    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                    text = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {call}")
                finally:
                    await tr.rollback()
                    await conn.execute("DEALLOCATE bench_q")
                nodes = _walk(plan["Plan"])
                seq = sorted(
                    {
                        n["Relation Name"]
                        for n in nodes
                        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") not in _LOOKUP_TABLES
                    }
                )
                sizes = {}
                for table in seq:
                    sizes[table] = int(
                        await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = $1", table)
                    )
                # The planner rightly scans a table of a few pages: flag only real ones.
                seq = [t for t in seq if sizes[t] >= _SMALL_TABLE_ROWS]
                key = "custom" if mode == "force_custom_plan" else "generic"
                entry[key] = {
                    "ms": round(plan["Execution Time"], 3),
                    "seq_scans": seq,
                    "small_seq_scans": {t: n for t, n in sizes.items() if n < _SMALL_TABLE_ROWS},
                    "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
                    "rows_scanned": sum(
                        int(n.get("Actual Rows", 0)) * int(n.get("Actual Loops", 1))
                        for n in nodes
                        if n["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan")
                    ),
                    "plan": "\n".join(r[0] for r in text),
                }
            out.append(entry)
    finally:
        await conn.close()
    return out


# ---- the comparison ---------------------------------------------------------------------------


async def _latency(
    client: LoadClient, workload: RelationdWorkload, label: str, args: argparse.Namespace, run: int
) -> dict[str, Any]:
    result = await closed_loop(
        client,
        workload.script(),
        contender=label,
        concurrency=1,
        warmup=args.warmup,
        duration=args.duration,
        run=run,
    )
    out = result.as_dict()
    print(
        f"bench: scale run {run + 1} {label:<24} p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
        f"mean {result.mean_ms:6.2f} ms  errors {result.errors}",
        flush=True,
    )
    return out


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    apps = 40 if not args.quick else 8
    opts = Options(models=1, requirers=apps, providers=apps, uvloop=not args.no_uvloop, log_dir=log_dir)
    per_model_relations = 100
    out: dict[str, Any] = {
        "units": args.scale_units,
        "relations": args.scale_relations,
        "many_models": args.scale_models,
        "many_relations_each": per_model_relations,
        "rows": [],
    }
    async with start(RELATIOND, opts, label="relationd-scale") as r:
        client = r.client
        # The empty model ("bench-0") was set up by start(); the big one and the many get the same apps.
        empty = r.workload
        assert empty is not None
        big = RelationdWorkload.create(["scale-big"], apps, apps, seed=12)
        many_names = [f"scale-many-{i}" for i in range(args.scale_models)]
        created = await run_all(
            [
                lambda n=n: client.call({"type": "create_model", "name": n})
                for n in ["scale-big", *many_names]
            ],
            16,
        )
        uuids = {c["name"]: c["uuid"] for c in created}
        probe = many_names[len(many_names) // 2]
        many = RelationdWorkload.create([probe], apps, apps, seed=13)
        await big.setup(client, create_models=False)
        await many.setup(client, create_models=False)
        await r.settle()

        before = await _latency(client, empty, "empty model (empty database)", args, 0)
        t_big = await bulk_load(
            r.sandbox.database_url,
            [uuids["scale-big"]],
            units=args.scale_units,
            relations=args.scale_relations,
        )
        print(f"bench: loaded {args.scale_units} units, {args.scale_relations} relations in {t_big:.1f} s")
        t_many = await bulk_load(
            r.sandbox.database_url,
            [uuids[n] for n in many_names],
            units=per_model_relations,
            relations=per_model_relations,
            providers=10,
        )
        print(f"bench: loaded {args.scale_models} models x {per_model_relations} relations in {t_many:.1f} s")
        cases = [
            ("empty model", empty, None),
            (f"model with {args.scale_units:,} units / {args.scale_relations:,} relations", big, t_big),
            (f"one of {args.scale_models:,} models x {per_model_relations} relations", many, t_many),
        ]
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in cases}
        for i in range(args.runs):
            for label, workload, _ in cases:
                runs[label].append(await _latency(client, workload, label, args, i))
        base = statistics.median(x["mean_ms"] for x in runs["empty model"])
        for label, _, load_seconds in cases:
            row = {
                "label": label,
                "p50_ms": statistics.median(x["p50_ms"] for x in runs[label]),
                "p99_ms": statistics.median(x["p99_ms"] for x in runs[label]),
                "mean_ms": statistics.median(x["mean_ms"] for x in runs[label]),
                "errors": sum(x["errors"] for x in runs[label]),
                "by_type_ms": runs[label][-1]["by_type_ms"],
            }
            row["ratio"] = row["mean_ms"] / base if base else float("nan")
            if load_seconds is not None:
                row["load_seconds"] = load_seconds
            out["rows"].append(row)
        out["rows"].insert(
            0,
            {
                "label": "empty model, before any load",
                "p50_ms": before["p50_ms"],
                "p99_ms": before["p99_ms"],
                "mean_ms": before["mean_ms"],
                "ratio": before["mean_ms"] / base if base else float("nan"),
            },
        )
        out["plans"] = await explain_hot_queries(r.sandbox.database_url, uuids["scale-big"], "scale-big")
        bad = [p["query"] for p in out["plans"] if p["custom"]["seq_scans"] or p["generic"]["seq_scans"]]
        out["seq_scan_queries"] = bad
        for p in out["plans"]:
            flag = (
                "SEQ SCAN " + ",".join(p["custom"]["seq_scans"] + p["generic"]["seq_scans"])
                if (p["custom"]["seq_scans"] or p["generic"]["seq_scans"])
                else "index"
            )
            print(
                f"plan: {p['query']:<40} custom {p['custom']['ms']:8.3f} ms  "
                f"generic {p['generic']['ms']:8.3f} ms"
                f"  rows {p['custom']['rows_scanned']:>7}  {flag}"
            )
    await asyncio.sleep(0)
    return out
