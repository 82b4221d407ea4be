"""Statements per command, and what each costs: the bench mix applied straight through
``daemon.applier.apply`` (no broker), every asyncpg call counted and timed.

    .venv/bin/python -m bench.statements              # 4 models x 16 x 16 relations' lives
    .venv/bin/python -m bench.statements --relay      # with an outbox relay pass after each command
    .venv/bin/python -m bench.statements --json

The counts are what bench/README.md's "Fewer statements per command" table shows; the times are
wall time per call on one connection (round trip included), on a private database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from bench.env import ADMIN_DSN, database_url
from bench.workload import PROVIDER_CHARM, REQUIRER_CHARM
from daemon import outbox
from daemon.applier import apply
from daemon.database import POOL_SESSION
from daemon.migrate import apply_schema
from daemon.parsing import parse
from handlers import Actor
from handlers.db import init_connection

_CALLS = ("execute", "fetch", "fetchrow", "fetchval")


@contextmanager
def recording(log: list[tuple[str, float]]) -> Iterator[None]:
    """Append (statement, seconds) for every asyncpg call made while inside."""
    originals = {name: getattr(asyncpg.Connection, name) for name in _CALLS}

    def timed(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(self, query, *args, **kwargs)
            finally:
                log.append((" ".join(query.split())[:100], time.perf_counter() - started))

        return wrapper

    for name, call in originals.items():
        setattr(asyncpg.Connection, name, timed(call))
    try:
        yield
    finally:
        for name, call in originals.items():
            setattr(asyncpg.Connection, name, call)


async def measure(models: int, apps: int, relay: bool) -> dict[str, Any]:
    name = f"relationd_bench_statements_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(database_url(name), server_settings=dict(POOL_SESSION))  # the pool's
        relay_conn = await asyncpg.connect(database_url(name), server_settings=dict(outbox.RELAY_SESSION))
        try:
            return await _run(conn, relay_conn if relay else None, models, apps)
        finally:
            await relay_conn.close()
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _run(conn: Any, relay: Any, models: int, apps: int) -> dict[str, Any]:
    await init_connection(conn)
    await apply_schema(conn)
    actor = Actor("bench")
    log: list[tuple[str, float]] = []
    counts: dict[str, list[int]] = defaultdict(list)
    times: dict[str, list[float]] = defaultdict(list)

    published: list[int] = []

    async def run(label: str | None, body: dict[str, Any]) -> Any:
        parsed = parse(
            json.dumps(body).encode(), message_id=str(uuid.uuid4()), content_type=None, max_body_bytes=1 << 20
        )
        log.clear()
        with recording(log):
            applied = await apply(conn, parsed.command_id, parsed.digest, parsed.command, actor)
            statements = len(log)
            if relay is not None:
                # The relay's one statement a batch: delete the last batch's ids, read the next.
                rows = await relay.fetch(outbox._PENDING, 500, published)
                published[:] = [r["event_id"] for r in rows]
        if not applied.reply["ok"]:
            raise RuntimeError(f"{body['type']} refused: {applied.reply['error']}")
        if label is not None:
            counts[label].append(statements)
            for query, seconds in log:
                times[query].append(seconds)
        return applied.reply["result"]

    for m in range(models):
        await run(None, {"type": "create_model", "name": f"m{m}"})
        for prefix, charm in (("app", REQUIRER_CHARM), ("db", PROVIDER_CHARM)):
            for i in range(apps):
                body = {"type": "deploy", "model": f"m{m}", "application": f"{prefix}{i}", "charm": charm}
                await run(None, body | {"units": 1})
    for k in range(apps * apps):
        i, j = k % apps, (k // apps + k % apps) % apps
        for m in range(models):
            model, app, db = f"m{m}", f"app{i}", f"db{j}"
            rid = (
                await run(
                    "integrate", {"type": "integrate", "model": model, "endpoints": [f"{app}:db", f"{db}:db"]}
                )
            )["id"]
            rel = {"model": model, "relation": rid}
            await run("enter scope", {"type": "enter_scope", **rel, "unit": f"{app}/0"})
            settings = {"host": f"{db}.internal", "port": "5432"}
            await run(
                "enter scope with settings",
                {"type": "enter_scope", **rel, "unit": f"{db}/0", "settings": settings},
            )
            await run(
                "unit settings write",
                {"type": "set_unit_settings", **rel, "unit": f"{app}/0", "settings": {"want": f"v{k}"}},
            )
            await run(
                "application settings write",
                {"type": "set_application_settings", **rel, "unit": f"{db}/0", "settings": {"v": f"v{k}"}},
            )
    per_command = {label: sum(c) / len(c) for label, c in counts.items()}
    return {
        "statements_per_command": per_command,
        "mix_average": sum(per_command[label] * len(counts[label]) for label in counts)
        / sum(len(c) for c in counts.values()),
        "statement_ms": {q: {"calls": len(t), "mean_ms": 1000 * sum(t) / len(t)} for q, t in times.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--apps", type=int, default=16, help="requirer and provider applications per model")
    p.add_argument(
        "--relay",
        action="store_true",
        help="an outbox relay pass after each command (one statement: delete the last batch, read the next)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = asyncio.run(measure(args.models, args.apps, args.relay))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for label, n in out["statements_per_command"].items():
        print(f"{label:28} {n:5.1f} statements")
    print(f"{'the mix, on average':28} {out['mix_average']:5.1f} statements\n")
    ranked = sorted(out["statement_ms"].items(), key=lambda kv: -kv[1]["calls"] * kv[1]["mean_ms"])
    for query, t in ranked[:15]:
        print(f"{t['mean_ms']:7.3f} ms x{t['calls']:6d}  {query}")


if __name__ == "__main__":
    main()
