"""Part 3 of the fault suite: several daemon instances on one queue, clients racing each other.

Many clients at once integrate applications against a ``limit: 1`` and a ``limit: 3`` endpoint,
enter and leave the scope of the same relations, and remove relations that units are entering.
Sampled during the run and checked at the end: no endpoint over its limit, no dead relation with a
unit in scope (and no dying relation left with none), relation ids never handed out twice, and no
command ending in Internal (a deadlock or serialization failure must be retried, not surface).

Fast: 2 instances, 600 commands. Full (-m slow): 2 and 4 instances, RELATIOND_FAULT_RACE_COMMANDS
(3,000) each.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fault_support import (
    Driver,
    connect,
    env_int,
    fault_database,
    fault_vhost,
    metric,
    report,
    seed_from_env,
)
from tests.harness import DaemonProcess

__all__ = ["fault_database", "fault_vhost"]

PROVIDERS = [f"p-{c}" for c in "abcdefgh"]
ONE = {"requires": {"db": {"interface": "mysql", "limit": 1}}}
THREE = {"requires": {"db": {"interface": "mysql", "limit": 3}}}
PROVIDER = {"provides": {"db": {"interface": "mysql"}}}

OVER_LIMIT = """
SELECT v.application_name || ':' || v.endpoint_name AS endpoint, v.capacity, count(r.uuid) AS used
FROM v_application_endpoint v
JOIN relation_endpoint re ON re.model_uuid = v.model_uuid AND re.endpoint_uuid = v.endpoint_uuid
JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
WHERE v.capacity IS NOT NULL AND r.life_id < 2 AND NOT r.is_peer
GROUP BY v.model_uuid, v.application_name, v.endpoint_name, v.capacity
HAVING count(r.uuid) > v.capacity
"""
DEAD_IN_SCOPE = """
SELECT r.relation_id FROM relation r
JOIN relation_endpoint re ON re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid
JOIN relation_unit ru ON ru.model_uuid = re.model_uuid AND ru.relation_endpoint_uuid = re.uuid
WHERE r.life_id = 2
"""
DYING_EMPTY = """
SELECT r.relation_id FROM relation r
WHERE r.life_id = 1 AND NOT EXISTS (
    SELECT 1 FROM relation_endpoint re
    JOIN relation_unit ru ON ru.model_uuid = re.model_uuid AND ru.relation_endpoint_uuid = re.uuid
    WHERE re.model_uuid = r.model_uuid AND re.relation_uuid = r.uuid)
"""


async def race_run(amqp: str, database: str, log_dir: Path, instances: int, commands: int) -> None:
    seed = seed_from_env()
    rng = random.Random(seed)
    daemons = [DaemonProcess(amqp, database, log_dir, prefetch=32) for _ in range(instances)]
    for d in daemons:
        d.start()
    driver = await Driver(amqp, timeout=60).start()
    began = time.monotonic()
    replies: list[tuple[dict[str, Any], dict[str, Any]]] = []
    violations: Counter[str] = Counter()
    try:
        for d in daemons:
            await d.wait_ready()
        models = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for model in models:
            m = {"model": model}
            assert (await driver.call({"type": "create_model", "name": model}))["ok"]
            for app, meta in [("one", ONE), ("three", THREE), *((p, PROVIDER) for p in PROVIDERS)]:
                reply = await driver.call(
                    {"type": "deploy", **m, "application": app, "charm": meta, "units": 3}
                )
                assert reply["ok"], reply
        # relation id -> (model, applications), as clients learn of them from replies
        known: dict[tuple[str, int], tuple[str, str]] = {}

        def next_command() -> dict[str, Any]:
            model = rng.choice(models)
            m = {"model": model}
            mine = [(rid, apps) for (mm, rid), apps in known.items() if mm == model]
            op = rng.choices(["integrate", "enter", "leave", "remove"], [4, 4, 2, 2])[0]
            if op == "integrate" or not mine:
                return {"type": "integrate", **m,
                        "endpoints": [rng.choice(["one", "three"]), rng.choice(PROVIDERS)]}  # fmt: skip
            rid, apps = rng.choice(mine)
            unit = f"{rng.choice(apps)}/{rng.randrange(3)}"
            if op == "enter":
                return {"type": "enter_scope", **m, "relation": rid, "unit": unit}
            if op == "leave":
                return {"type": "leave_scope", **m, "relation": rid, "unit": unit}
            return {"type": "remove_relation", **m, "relation": rid}

        async def client(n: int) -> None:
            for _ in range(n):
                body = next_command()
                reply = await driver.call(body)
                replies.append((body, reply))
                if body["type"] == "integrate" and reply["ok"]:
                    r = reply["result"]
                    known[(body["model"], r["id"])] = tuple(e["application"] for e in r["endpoints"])

        stop_sampling = asyncio.Event()

        async def sampler() -> None:
            conn = await connect(database)
            try:
                while not stop_sampling.is_set():
                    for name, query in (("over_limit", OVER_LIMIT), ("dead_in_scope", DEAD_IN_SCOPE)):
                        rows = await conn.fetch(query)
                        violations[name] += len(rows)
                    await asyncio.sleep(0.05)
            finally:
                await conn.close()

        sampling = asyncio.create_task(sampler())
        clients = 24
        await asyncio.wait_for(asyncio.gather(*(client(commands // clients) for _ in range(clients))), 1200)
        stop_sampling.set()
        await sampling
        metrics = [(await asyncio.to_thread(d.http, "/metrics"))[1] for d in daemons]

        conn = await connect(database)
        try:
            over = await conn.fetch(OVER_LIMIT)
            dead = await conn.fetch(DEAD_IN_SCOPE)
            dying_empty = await conn.fetch(DYING_EMPTY)
        finally:
            await conn.close()
        codes = Counter(
            ("ok" if r["ok"] else r["error"]["code"]) for _, r in replies
        )  # what the races ended in
        ids_by_model: dict[str, list[int]] = {}
        for body, r in replies:
            if body["type"] == "integrate" and r["ok"]:
                ids_by_model.setdefault(body["model"], []).append(r["result"]["id"])
        reused = sum(len(ids) - len(set(ids)) for ids in ids_by_model.values())
        handled = [int(metric(t, "relationd_commands_total")) for t in metrics]
        retries = sum(int(metric(t, "relationd_transient_retries_total")) for t in metrics)
        deadlocks = sum(d.log().count("deadlock detected") for d in daemons)
        report(
            f"races-{instances}",
            {
                "seed": seed,
                "instances": instances,
                "commands": len(replies),
                "per_instance": "/".join(map(str, handled)),
                "integrated": codes["ok"] and sum(len(v) for v in ids_by_model.values()),
                "quota_refusals": codes["EndpointQuotaLimitExceeded"],
                "outcomes": dict(sorted(codes.items())),
                "over_limit": len(over) + violations["over_limit"],
                "dead_with_unit_in_scope": len(dead) + violations["dead_in_scope"],
                "dying_left_empty": len(dying_empty),
                "ids_reused": reused,
                "internal": codes["Internal"],
                "db_retries": retries,
                "deadlocks_retried": deadlocks,
                "daemon_restarts": sum(d.starts - 1 for d in daemons),
                "seconds": round(time.monotonic() - began, 1),
            },
        )
        assert not over and not violations["over_limit"], over
        assert not dead and not violations["dead_in_scope"], dead
        assert not dying_empty, dying_empty
        assert reused == 0
        assert codes["Internal"] == 0, [
            r for _, r in replies if not r["ok"] and r["error"]["code"] == "Internal"
        ][:3]
        assert codes["EndpointQuotaLimitExceeded"] > 0, "the workload never reached a limit"
        assert all(h > 0 for h in handled), f"an instance took no commands: {handled}"
        for d in daemons:
            assert d.proc is not None and d.proc.poll() is None, d.log()[-2000:]
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.terminate()
        await driver.close()


async def test_two_instances_race_fast(fault_vhost: str, fault_database: str, tmp_path: Path) -> None:
    await race_run(fault_vhost, fault_database, tmp_path, instances=2, commands=600)


@pytest.mark.slow
@pytest.mark.parametrize("instances", [2, 4])
async def test_instances_race_full(
    fault_vhost: str, fault_database: str, tmp_path: Path, instances: int
) -> None:
    await race_run(
        fault_vhost,
        fault_database,
        tmp_path,
        instances,
        commands=env_int("RELATIOND_FAULT_RACE_COMMANDS", 3000),
    )
