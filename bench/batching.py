"""What a batch saves the database, without the broker's noise: the bench mix applied straight
through the applier, one command per transaction (``daemon.applier.apply``) against batches of
k commands over k models (``daemon.batch.apply_batch``), on one connection of a private
database. Per command: the backend's CPU time (from /proc), the applier's own (this process's)
and the wall time of the calls.

    .venv/bin/python -m bench.batching                 # batches of 1 (the one-command path), 4, 16
    .venv/bin/python -m bench.batching --sizes 1,2,8 --rounds 6 --json
    .venv/bin/python -m bench.batching --also no-read-ahead,store-bags-apart
                                        # each size also with one of issue 17's changes undone
    .venv/bin/python -m bench.batching --settings-writes    # unit settings writes only

Sizes are measured in alternation, round after round, so drift spreads over all of them; the
median of the rounds is shown. The daemon's end-to-end figures are ``python -m bench``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from unittest.mock import patch

import asyncpg

from bench.daemon_variant import no_read_ahead, stored_apart
from bench.env import ADMIN_DSN, database_url, process_cpu_seconds
from bench.workload import PROVIDER_CHARM, REQUIRER_CHARM
from daemon.applier import apply
from daemon.batch import Item, apply_batch
from daemon.database import POOL_SESSION
from daemon.migrate import apply_schema
from daemon.parsing import Parsed, parse
from handlers import Actor, read_ahead, settings_bag
from handlers.db import init_connection

ACTOR = Actor("bench")


def _parsed(body: dict[str, Any]) -> Parsed:
    return parse(
        json.dumps(body).encode(), message_id=str(uuid.uuid4()), content_type=None, max_body_bytes=1 << 20
    )


async def _one(conn: Any, body: dict[str, Any]) -> dict[str, Any]:
    p = _parsed(body)
    applied = await apply(conn, p.command_id, p.digest, p.command, ACTOR)
    if not applied.reply["ok"]:
        raise RuntimeError(f"{body['type']} refused: {applied.reply['error']}")
    return dict(applied.reply["result"])


class Models:
    """``models`` models of ``apps`` requirers and providers (one unit each), and the lives of
    their relations as the bench mix makes them, one step at a time per model."""

    def __init__(self, models: int, apps: int) -> None:
        self.names = [f"m{m}" for m in range(models)]
        self.apps = apps
        self.pairs = {name: itertools.count() for name in self.names}
        self.steps: dict[str, list[dict[str, Any]]] = {name: [] for name in self.names}
        self.values = itertools.count()
        # With settings_writes: the unit settings writes of relations made beforehand, by model.
        self.writes: dict[str, itertools.cycle[dict[str, Any]]] | None = None

    async def settings_writes(self, conn: Any, relations: int) -> None:
        """Make ``relations`` relations a model, then give only unit settings writes on them."""
        writes: dict[str, list[dict[str, Any]]] = {name: [] for name in self.names}
        for name in self.names:
            for _ in range(4 * relations):
                body = await self.next_command(conn, name)
                await _one(conn, body)
                if body["type"] == "set_unit_settings":
                    writes[name].append(body)
        self.writes = {name: itertools.cycle(bodies) for name, bodies in writes.items()}

    async def create(self, conn: Any) -> None:
        for name in self.names:
            await _one(conn, {"type": "create_model", "name": name})
            for prefix, charm in (("app", REQUIRER_CHARM), ("db", PROVIDER_CHARM)):
                for i in range(self.apps):
                    app = {"application": f"{prefix}{i}", "charm": charm, "units": 1}
                    await _one(conn, {"type": "deploy", "model": name, **app})

    async def next_command(self, conn: Any, model: str) -> dict[str, Any]:
        """The model's next command of the mix; an integrate is applied here (its reply names the
        relation the four commands after it use), so every batch holds the other four kinds."""
        if self.writes is not None:
            return {**next(self.writes[model]), "settings": {"want": f"v{next(self.values)}"}}
        if not self.steps[model]:
            k = next(self.pairs[model])
            i, j = k % self.apps, (k // self.apps + k % self.apps) % self.apps
            app, db = f"app{i}", f"db{j}"
            body = {"type": "integrate", "model": model, "endpoints": [f"{app}:db", f"{db}:db"]}
            rel = {"model": model, "relation": (await _one(conn, body))["id"]}
            v = next(self.values)
            self.steps[model] = [
                {"type": "enter_scope", **rel, "unit": f"{app}/0"},
                {"type": "enter_scope", **rel, "unit": f"{db}/0", "settings": {"host": f"{db}.internal"}},
                {"type": "set_unit_settings", **rel, "unit": f"{app}/0", "settings": {"want": f"v{v}"}},
                {"type": "set_application_settings", **rel, "unit": f"{db}/0", "settings": {"db": f"d{v}"}},
            ]
        return self.steps[model].pop(0)


# Issue 17's changes that a case can undo, and the smallest batch each changes.
UNDO: dict[str, tuple[Callable[[], AbstractContextManager[Any]], int]] = {
    "no-read-ahead": (lambda: patch.object(read_ahead, "read", no_read_ahead), 2),
    "store-bags-apart": (lambda: patch.object(settings_bag, "write", stored_apart(settings_bag.write)), 1),
}


async def _measure(conn: Any, pid: int, models: Models, size: int, commands: int) -> dict[str, float]:
    cpu = wall = own = 0.0
    done = 0
    names = itertools.cycle(models.names)
    while done < commands:
        batch = [await models.next_command(conn, next(names)) for _ in range(size)]
        parsed = [_parsed(body) for body in batch]
        cpu_before, started, own_before = process_cpu_seconds(pid), time.perf_counter(), time.process_time()
        if size == 1:
            p = parsed[0]
            results: list[Any] = [await apply(conn, p.command_id, p.digest, p.command, ACTOR)]
        else:
            items = [Item(p.command_id, p.digest, p.command, ACTOR) for p in parsed]
            results = await apply_batch(conn, items)
        wall += time.perf_counter() - started
        own += time.process_time() - own_before
        cpu += process_cpu_seconds(pid) - cpu_before
        for body, result in zip(batch, results, strict=True):
            if result is None or not result.reply["ok"]:
                raise RuntimeError(f"{body['type']} not applied: {result}")
        done += size
    return {
        "db_cpu_ms": 1000 * cpu / done,
        "applier_cpu_ms": 1000 * own / done,
        "wall_ms": 1000 * wall / done,
    }


async def measure(
    sizes: list[int],
    rounds: int,
    commands: int,
    apps: int,
    *,
    undo: tuple[str, ...] = (),
    settings_writes: bool = False,
) -> dict[str, Any]:
    name = f"relationd_bench_batching_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(database_url(name), server_settings=POOL_SESSION)  # the pool's
        try:
            await init_connection(conn)
            await apply_schema(conn)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            models = Models(max(sizes), apps)
            await models.create(conn)
            if settings_writes:
                await models.settings_writes(conn, relations=8)
            await conn.execute("ANALYZE")
            cases: list[tuple[str, int, Callable[[], AbstractContextManager[Any]]]] = [
                (str(size), size, nullcontext) for size in sizes
            ]
            for change in undo:
                switch, smallest = UNDO[change]
                cases += [(f"{size} {change}", size, switch) for size in sizes if size >= smallest]
            runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in cases}
            for _ in range(rounds):
                for label, size, switch in cases:
                    with switch():
                        runs[label].append(await _measure(conn, pid, models, size, commands))
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        label: {key: statistics.median(r[key] for r in runs[label]) for key in runs[label][0]}
        for label in runs
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,4,16", help="batch sizes; 1 is the one-command path")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--commands", type=int, default=320, help="commands per size and round")
    p.add_argument("--apps", type=int, default=24, help="requirer and provider applications per model")
    p.add_argument(
        "--also",
        default="",
        help=f"measure each size also with one of these changes undone, comma-separated: {', '.join(UNDO)}",
    )
    p.add_argument(
        "--settings-writes",
        action="store_true",
        help="unit settings writes only, on relations made beforehand, instead of the bench mix",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    undo = tuple(c for c in args.also.split(",") if c)
    out = asyncio.run(
        measure(sizes, args.rounds, args.commands, args.apps, undo=undo, settings_writes=args.settings_writes)
    )
    if args.json:
        print(json.dumps(out, indent=2))
        return
    base = out[str(sizes[0])]
    print(
        f"{'batch':>22} {'db cpu ms/cmd':>14} {'applier cpu':>12} {'wall ms/cmd':>12}"
        f" {'db cpu vs ' + str(sizes[0]):>12}"
    )
    for label, r in out.items():
        ratio = r["db_cpu_ms"] / base["db_cpu_ms"]
        print(
            f"{label:>22} {r['db_cpu_ms']:14.3f} {r['applier_cpu_ms']:12.3f} {r['wall_ms']:12.3f}"
            f" {ratio:11.2f}x"
        )


if __name__ == "__main__":
    main()
