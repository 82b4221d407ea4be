"""Bounded history (issue 13): what a unit agent's restart costs as the log grows, what the log
costs on disk with and without retention, and what retention costs the commands running beside it.

Three parts, each in a private vhost and database, against a real daemon (`relationd run`):

1. **Hook resume.** A model where wordpress/0 and mysql/0 are in relation 2, with 0, 100,000 or
   1,000,000 more events in its log (seeded straight into SQL with one INSERT ... SELECT over
   generate_series: unit life events of applications nobody relates to, so only their number
   matters). wordpress/0 is up to date with its state; mysql/0 writes its settings; the time is
   from starting the hook stream to its first hook (the relation-changed): resuming with the
   state (snapshot read, then the log after the state's position), as a new agent (snapshot
   only), and, for contrast, the old way (`--from SEQ.INDEX`: the log replayed from its start;
   not run at 1,000,000, where it takes minutes). Median of a few resumes.
2. **Log size per million commands.** Commands applied through the daemon's applier (no broker:
   only the rows count here), the bytes the log, the outbox and the stored replies take per
   command, scaled to a million (an estimate from the measured number, said so). Then the same
   number of commands again, after retention deleted the first batch and a plain VACUUM made
   the space reusable: the files do not grow, where without retention they grow by as much again.
3. **Command latency while retention runs.** A closed loop of commands (set_unit_settings, one
   outstanding) for a while without pruning, then for as long as 500,000 expired events take to
   prune (the daemon's own prune_batch, batch and pause), then again without: p50, p99, ratios.

Run it under the shared bench lock: `flock /tmp/relationd-bench.lock python -m bench.history`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.env import RESULTS, ServerProcess, free_port, sandbox
from client.hook_stream import HookStream
from client.hooks import UnitHooks
from client.rpc import RelationClient
from daemon.migrate import apply_schema
from daemon.retention import prune_batch
from daemon.settings import Settings
from handlers.db import init_connection
from tests.domain import Domain, charm

# Filler events for model $1: $2 unit life events after the model's last seq (not in the outbox:
# the broker never sees them), the model's sequence moved past them.
_SEED = """
WITH base AS (SELECT value FROM model_event_sequence WHERE model_uuid = $1),
ins AS (
    INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key, payload, created_at)
    SELECT $1, base.value + g, 'unit', 'life', $1::text || '.unit._',
           jsonb_build_object('unit', 'filler' || (g % 1000) || '/0', 'application', 'filler' || (g % 1000)),
           '{"life": "dying"}'::jsonb, now() - make_interval(secs => $3)
    FROM base, generate_series(1, $2) AS g
)
UPDATE model_event_sequence SET value = value + $2 WHERE model_uuid = $1
"""
_SIZES = """
SELECT pg_total_relation_size('change_event') AS change_event,
       pg_total_relation_size('outbox') AS outbox,
       pg_total_relation_size('processed_command') AS processed_command,
       pg_database_size(current_database()) AS database
"""


def daemon(box: Any, log_dir: Path, **env: str) -> ServerProcess:
    port = free_port()
    settings = {
        "RELATIOND_AMQP_URL": box.amqp_url,
        "RELATIOND_DATABASE_URL": box.database_url,
        "RELATIOND_HTTP_PORT": str(port),
        "RELATIOND_LOG_LEVEL": "warning",
        **{f"RELATIOND_{k.upper()}": v for k, v in env.items()},
    }
    return ServerProcess(
        [sys.executable, "-m", "daemon", "run"], settings, log_dir / f"{box.name}.log", http_port=port
    )


async def _schema(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await apply_schema(conn)
    finally:
        await conn.close()


async def _scenario(client: RelationClient, model: str) -> int:
    await client.create_model(model)
    await client.deploy(model, "mysql", charm("mysql"), units=1)
    await client.deploy(model, "wordpress", charm("wordpress"), units=1)
    rel = await client.integrate(model, "wordpress", "mysql")
    await client.enter_scope(model, rel.id, "mysql/0", {"host": "db0"})
    await client.enter_scope(model, rel.id, "wordpress/0", {"database": "wp"})
    return rel.id


async def _first_hook(url: str, model: str, **start: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    stream = HookStream(url, model, "wordpress/0", timeout=600, **start)
    try:
        async with asyncio.timeout(900):
            async for hook in stream:
                return time.perf_counter() - began, hook
    finally:
        await stream.close()
    raise RuntimeError("the hook stream ended")


async def resume_part(
    log_dir: Path, sizes: list[int], repeats: int, old_way_max: int, old_way_repeats: int = 3
) -> list[dict[str, Any]]:
    rows = []
    async with sandbox("history-resume") as box:
        await _schema(box.database_url)
        proc = daemon(box, log_dir, event_retention="off")
        proc.start()
        try:
            await proc.wait_ready()
            client = await RelationClient.connect(box.amqp_url, timeout=600)
            pool = await asyncpg.create_pool(box.database_url, min_size=1, max_size=2, init=init_connection)
            try:
                # Every model set up and seeded first, the log vacuumed and analysed; then the
                # measurements in rounds over the sizes, so that the machine's drift (it is shared)
                # falls on every size alike.
                models: dict[int, tuple[str, int, Any]] = {}
                seed_s: dict[int, float] = {}
                for n in sizes:
                    model = f"hist-{n}-{uuid.uuid4().hex[:6]}"
                    rel = await _scenario(client, model)
                    model_uuid = (await client.snapshot(model)).model_uuid
                    seeded = time.perf_counter()
                    async with pool.acquire() as conn:
                        await conn.execute(_SEED, model_uuid, n, 0)
                    seed_s[n] = time.perf_counter() - seeded
                    # wordpress/0 up to date: the state of a new agent that ran its hooks so far.
                    snap = await client.snapshot(model, "wordpress/0")
                    machine = UnitHooks("wordpress/0")
                    first = machine.resync(snap)
                    models[n] = (
                        model,
                        rel,
                        machine.to_state(first[-1].position) | {"model": snap.model_uuid},
                    )
                async with pool.acquire() as conn:
                    await conn.execute("VACUUM ANALYZE change_event")
                times: dict[int, dict[str, list[float]]] = {
                    n: {"state": [], "new": [], "from": []} for n in sizes
                }
                for i in range(repeats):
                    for n in sizes:
                        model, rel, state = models[n]
                        await client.set_unit_settings(model, rel, "mysql/0", {"host": f"db-{i}.lan"})
                        took, hook = await _first_hook(box.amqp_url, model, state=state)
                        assert hook.hook == "relation-changed" and hook.remote_unit == "mysql/0", hook
                        models[n] = (model, rel, hook.state)
                        times[n]["state"].append(took)
                        took, _ = await _first_hook(box.amqp_url, model)
                        times[n]["new"].append(took)
                        if n <= old_way_max and i < old_way_repeats:
                            after = (hook.seq - 1, 10**9)
                            took, again = await _first_hook(box.amqp_url, model, after=after)
                            assert again == hook, (again, hook)
                            times[n]["from"].append(took)
                for n in sizes:
                    t = times[n]
                    row = {
                        "events": n,
                        "seed_seconds": round(seed_s[n], 1),
                        "resume_with_state_s": round(statistics.median(t["state"]), 3),
                        "new_agent_s": round(statistics.median(t["new"]), 3),
                        "from_position_s": round(statistics.median(t["from"]), 3) if t["from"] else None,
                    }
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            finally:
                await pool.close()
                await client.close()
        finally:
            proc.stop()
    return rows


async def _settings_churn(d: Domain, rel: int, n: int) -> None:
    for i in range(n):
        unit = "mysql/0" if i % 2 else "wordpress/0"
        await d.run({"type": "set_unit_settings", "relation": rel, "unit": unit, "settings": {"n": str(i)}})


async def size_part(commands: int) -> dict[str, Any]:
    async with sandbox("history-size") as box:
        await _schema(box.database_url)
        pool = await asyncpg.create_pool(box.database_url, min_size=1, max_size=2, init=init_connection)
        try:
            d = Domain(pool)
            await d.new_model()
            await d.deploy("mysql", units=1)
            await d.deploy("wordpress", units=1)
            rel = (await d.integrate("wordpress", "mysql"))["id"]
            for unit in ("mysql/0", "wordpress/0"):
                await d.run({"type": "enter_scope", "relation": rel, "unit": unit})
            async with pool.acquire() as conn:
                await conn.execute("DELETE FROM outbox")  # as if published (no relay here)
                await conn.execute("VACUUM change_event, outbox, processed_command")
                before = dict(await conn.fetchrow(_SIZES))
            await _settings_churn(d, rel, commands)
            async with pool.acquire() as conn:
                await conn.execute("DELETE FROM outbox")
                await conn.execute("VACUUM change_event, outbox, processed_command")
                first = dict(await conn.fetchrow(_SIZES))
                events = await conn.fetchval("SELECT count(*) FROM change_event")
                # Retention: everything so far expired and deleted, the space made reusable.
                await conn.execute("UPDATE change_event SET created_at = now() - interval '8 days'")
                await conn.execute("VACUUM change_event")
                pruned = 0
                while (deleted := await prune_batch(conn, 7 * 86400, 1000)) and deleted:
                    pruned += deleted
                await conn.execute("VACUUM change_event")
            await _settings_churn(d, rel, commands)
            async with pool.acquire() as conn:
                await conn.execute("DELETE FROM outbox")
                await conn.execute("VACUUM change_event, outbox, processed_command")
                second = dict(await conn.fetchrow(_SIZES))
        finally:
            await pool.close()
    per_command = {k: (first[k] - before[k]) / commands for k in ("change_event", "processed_command")}
    return {
        "commands": commands,
        "events_per_command": round(events / commands, 2),
        "log_bytes_per_command": round(per_command["change_event"]),
        "replies_bytes_per_command": round(per_command["processed_command"]),
        "log_mb_per_million_without_retention": round(per_command["change_event"] * 1e6 / 2**20),
        "log_bytes_after_first_batch": first["change_event"],
        "pruned": pruned,
        "log_bytes_after_second_batch_with_retention": second["change_event"],
        "log_growth_second_batch_with_retention": second["change_event"] - first["change_event"],
        "log_growth_first_batch": first["change_event"] - before["change_event"],
    }


async def _latency_loop(client: RelationClient, model: str, rel: int, seconds: float) -> list[float]:
    out: list[float] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        began = time.perf_counter()
        await client.set_unit_settings(model, rel, "mysql/0", {"n": str(i)})
        out.append(time.perf_counter() - began)
    return out


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "n": len(xs),
        "p50_ms": round(1000 * xs[len(xs) // 2], 2),
        "p99_ms": round(1000 * xs[min(len(xs) - 1, int(len(xs) * 0.99))], 2),
    }


async def latency_part(log_dir: Path, expired: int, seconds: float) -> dict[str, Any]:
    async with sandbox("history-latency") as box:
        await _schema(box.database_url)
        proc = daemon(box, log_dir, event_retention="off")
        proc.start()
        try:
            await proc.wait_ready()
            client = await RelationClient.connect(box.amqp_url, timeout=60)
            pool = await asyncpg.create_pool(box.database_url, min_size=1, max_size=2, init=init_connection)
            try:
                old = f"old-{uuid.uuid4().hex[:6]}"
                await client.create_model(old)
                old_uuid = (await client.snapshot(old)).model_uuid
                async with pool.acquire() as conn:
                    await asyncio.sleep(2)  # the relay publishes the model's first events
                    await conn.execute("UPDATE change_event SET created_at = now() - interval '8 days'")
                    await conn.execute(_SEED, old_uuid, expired, 8 * 86400)
                    await conn.execute("VACUUM ANALYZE change_event")
                model = f"lat-{uuid.uuid4().hex[:6]}"
                rel = await _scenario(client, model)
                await _latency_loop(client, model, rel, 3)  # warm-up
                before = await _latency_loop(client, model, rel, seconds)

                pruned = 0
                settings = Settings()  # the daemon's batch and pause (RELATIOND_EVENT_RETENTION_*)

                async def prune() -> float:
                    nonlocal pruned
                    began = time.perf_counter()
                    async with pool.acquire() as conn:
                        batch = settings.event_retention_batch
                        while (deleted := await prune_batch(conn, 7 * 86400, batch)) and deleted:
                            pruned += deleted
                            await asyncio.sleep(settings.event_retention_pause_seconds)
                    return time.perf_counter() - began

                pruning = asyncio.create_task(prune())
                during: list[float] = []
                while not pruning.done():  # the whole prune, in windows of a second
                    during += await _latency_loop(client, model, rel, 1.0)
                prune_s = await pruning
                after = await _latency_loop(client, model, rel, seconds)
            finally:
                await pool.close()
                await client.close()
        finally:
            proc.stop()
    b, d, a = _stats(before), _stats(during), _stats(after)
    base = (b["p50_ms"] + a["p50_ms"]) / 2
    return {
        "expired_events": expired,
        "batch": settings.event_retention_batch,
        "pause_seconds": settings.event_retention_pause_seconds,
        "pruned": pruned,
        "prune_seconds": round(prune_s, 1),
        "before": b,
        "during": d,
        "after": a,
        "during_p50_ratio": round(d["p50_ms"] / base, 2),
        "during_p99_ratio": round(d["p99_ms"] / ((b["p99_ms"] + a["p99_ms"]) / 2), 2),
        "noise_p50_ratio": round(a["p50_ms"] / b["p50_ms"], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,100000,1000000", help="events in the log, comma-separated")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--old-way-max", type=int, default=100_000, help="largest log replayed with --from")
    parser.add_argument("--commands", type=int, default=10_000, help="commands for the size part")
    parser.add_argument("--expired", type=int, default=500_000, help="expired events for the latency part")
    parser.add_argument("--seconds", type=float, default=20.0, help="each latency window")
    parser.add_argument("--parts", default="resume,size,latency")
    args = parser.parse_args()
    parts = args.parts.split(",")
    log_dir = RESULTS / "logs"
    out: dict[str, Any] = {}
    if "resume" in parts:
        sizes = [int(x) for x in args.sizes.split(",")]
        out["resume"] = await resume_part(log_dir, sizes, args.repeats, args.old_way_max)
    if "size" in parts:
        out["size"] = await size_part(args.commands)
        print(json.dumps(out["size"]), flush=True)
    if "latency" in parts:
        out["latency"] = await latency_part(log_dir, args.expired, args.seconds)
        print(json.dumps(out["latency"]), flush=True)
    (RESULTS / "history.json").write_text(json.dumps(out, indent=2) + "\n")


async def _cancellable() -> None:
    """main(), cancelled by SIGTERM so that its sandboxes and daemons are cleaned up."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await main()


if __name__ == "__main__":
    asyncio.run(_cancellable())
