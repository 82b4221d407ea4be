"""``python -m bench.fairness``: a second user's latency while a first user floods the queue.

User A (a broker user of its own) publishes a burst of commands at once (500 by default:
settings writes spread over A's 8 models); as soon as the burst is on the queue, user B (another
broker user, its own model) sends settings writes one at a time, and keeps on until A's last
reply has arrived. The figure is B's latency over the commands B sent while A's burst was
outstanding, with B alone (no burst) as the floor. A resends a ``RateLimited`` command with the
same command id after the ``retry_after`` the refusal names, as a client should.

Each configuration is a relationd daemon of its own (own vhost, database, users), all started
once and measured in rounds that alternate between them, so drift on a shared machine spreads
over all of them:

  before     RELATIOND_FAIRNESS=false, prefetch 64: the daemon as it was (deliveries run as they
             come, every user in one window)
  fair       the defaults: per-user round robin for database turns over a 1024-command window;
             while another user holds commands a user starts at most half the pool's turns; at
             most 512 of one user's commands held, the rest refused with RateLimited
  fair-9     the same with RELATIOND_USER_CONCURRENCY=9: B's command runs beside up to 9 of A's
  fair-64    the same turns over the old window of 64: a command behind the burst is not in the
             daemon yet, so no scheduler there can reach it
  tight      the defaults with RELATIOND_USER_MAX_HELD=32 and prefetch 64: a low per-user limit,
             so most of the burst is refused at once and resent

    python -m bench.fairness                  5 rounds per configuration, bursts of 500
    python -m bench.fairness --quick          a smoke run (2 rounds, bursts of 100)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from bench.env import (
    AMQP_URL,
    RESULTS,
    ServerProcess,
    describe_machine,
    free_port,
    python_module,
    rabbitmqctl,
    sandboxes,
    use_uvloop,
    vhost_url,
)
from bench.load import LoadClient, percentile
from bench.workload import PROVIDER_CHARM, REQUIRER_CHARM
from contracts import topology
from daemon.migrate import apply_schema

CONFIGS: dict[str, dict[str, str]] = {
    "before": {"RELATIOND_FAIRNESS": "false", "RELATIOND_PREFETCH": "64"},
    "fair": {},
    "fair-9": {"RELATIOND_USER_CONCURRENCY": "9"},
    "fair-64": {"RELATIOND_PREFETCH": "64"},
    "tight": {"RELATIOND_USER_MAX_HELD": "32", "RELATIOND_PREFETCH": "64"},
}
A_MODELS = 8


class FloodClient(LoadClient):
    """A load client that can put a command on the queue and wait for its reply separately."""

    async def post(self, body: dict[str, Any], command_id: str) -> asyncio.Future[dict[str, Any]]:
        """Publish ``body`` (confirmed) and return the future of its reply."""
        assert self._channel is not None
        correlation_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type=topology.CONTENT_TYPE,
            message_id=command_id,
            correlation_id=correlation_id,
            reply_to=self._reply_to,
            user_id=self.user_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=topology.COMMAND_QUEUE)
        return future


@dataclasses.dataclass
class Site:
    """One configuration's daemon, with user A's and user B's clients and what they write to."""

    name: str
    server: ServerProcess
    a: FloodClient
    b: FloodClient
    a_targets: list[tuple[str, int]]
    b_target: tuple[str, int]


async def _prepare_model(client: FloodClient, name: str) -> tuple[str, int]:
    """A model with a requirer and a provider of one unit each, related, the requirer in scope."""
    await client.call({"type": "create_model", "name": name})
    for app, charm in (("app", REQUIRER_CHARM), ("db", PROVIDER_CHARM)):
        await client.call({"type": "deploy", "model": name, "application": app, "charm": charm, "units": 1})
    rel = await client.call({"type": "integrate", "model": name, "endpoints": ["app:db", "db:db"]})
    await client.call({"type": "enter_scope", "model": name, "relation": rel["id"], "unit": "app/0"})
    return name, int(rel["id"])


def _write(target: tuple[str, int], value: int) -> dict[str, Any]:
    model, relation = target
    return {
        "type": "set_unit_settings",
        "model": model,
        "relation": relation,
        "unit": "app/0",
        "settings": {"value": str(value)},
    }


@contextlib.asynccontextmanager
async def site(
    name: str, box: Any, users: dict[str, str], log_dir: Path, uvloop: bool
) -> AsyncIterator[Site]:
    conn = await asyncpg.connect(box.database_url)
    try:
        await apply_schema(conn)
    finally:
        await conn.close()
    port = free_port()
    env = {
        "RELATIOND_AMQP_URL": box.amqp_url,
        "RELATIOND_DATABASE_URL": box.database_url,
        "RELATIOND_HTTP_PORT": str(port),
        "RELATIOND_LOG_LEVEL": "warning",
        "BENCH_UVLOOP": "1" if uvloop else "0",
        **CONFIGS[name],
    }
    server = ServerProcess(
        python_module("bench.daemon_variant", "run"), env, log_dir / f"{name}.log", http_port=port
    )
    server.start()
    clients: list[FloodClient] = []
    try:
        await server.wait_ready()
        vhost = box.amqp_url.rpartition("/")[2]
        for user in users.values():
            rabbitmqctl("set_permissions", "-p", vhost.replace("%2F", "/"), user, ".*", ".*", ".*")
        for short in ("a", "b"):
            user = users[short]
            url = vhost_url(vhost.replace("%2F", "/"), AMQP_URL.replace("guest:guest", f"{user}:pw-{user}"))
            clients.append(await FloodClient(url, user_id=user, timeout=120).open(events=False))
        a, b = clients
        suffix = uuid.uuid4().hex[:6]
        a_targets = list(
            await asyncio.gather(*(_prepare_model(a, f"flood-{i}-{suffix}") for i in range(A_MODELS)))
        )
        b_target = await _prepare_model(b, f"other-{suffix}")
        yield Site(name, server, a, b, a_targets, b_target)
    finally:
        for c in clients:
            await c.close()
        code = server.stop()
        if code not in (0, None, -15):
            print(f"bench.fairness: {name} exited {code}; log: {server.log_path}")


async def b_alone(s: Site, count: int, values: Any) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        await s.b.call(_write(s.b_target, next(values)))
        out.append(time.perf_counter() - t0)
    return out


async def flood_round(s: Site, flood: int, values: Any) -> dict[str, Any]:
    """A's burst of ``flood`` commands, B one command at a time until A's burst is answered."""
    started = time.perf_counter()
    bodies = {
        str(uuid.uuid4()): _write(s.a_targets[i % len(s.a_targets)], next(values)) for i in range(flood)
    }
    futures = await asyncio.gather(*(s.a.post(body, cid) for cid, body in bodies.items()))
    published = time.perf_counter()
    refused = 0

    async def a_command(cid: str, future: asyncio.Future[dict[str, Any]]) -> None:
        nonlocal refused
        while True:
            reply = await asyncio.wait_for(future, 300)
            if reply["ok"]:
                return
            error = reply["error"]
            if error["code"] != "RateLimited":
                raise RuntimeError(f"user A's command refused: {error}")
            refused += 1
            await asyncio.sleep(float(error.get("details", {}).get("retry_after", 0.5)))
            future = await s.a.post(bodies[cid], cid)

    a_done = asyncio.ensure_future(
        asyncio.gather(*(a_command(cid, f) for cid, f in zip(bodies, futures, strict=True)))
    )
    b_latencies: list[float] = []
    while not a_done.done():
        t0 = time.perf_counter()
        await s.b.call(_write(s.b_target, next(values)))
        b_latencies.append(time.perf_counter() - t0)
    await a_done
    finished = time.perf_counter()
    return {
        "b_ms": [x * 1000 for x in b_latencies],
        "a_seconds": finished - started,
        "a_publish_seconds": published - started,
        "a_refusals": refused,
    }


def summarize(name: str, rounds: list[dict[str, Any]], alone: list[float]) -> dict[str, Any]:
    b = sorted(x for r in rounds for x in r["b_ms"])
    first = sorted(r["b_ms"][0] for r in rounds)
    floor = sorted(x * 1000 for x in alone)
    return {
        "config": name,
        "rounds": len(rounds),
        "b_commands": len(b),
        "b_p50_ms": percentile(b, 50),
        "b_p99_ms": percentile(b, 99),
        "b_max_ms": b[-1] if b else float("nan"),
        "b_first_median_ms": statistics.median(first) if first else float("nan"),
        "b_alone_p50_ms": percentile(floor, 50),
        "b_alone_p99_ms": percentile(floor, 99),
        "a_seconds_median": statistics.median(r["a_seconds"] for r in rounds),
        "a_refusals": sum(r["a_refusals"] for r in rounds),
    }


def table(rows: list[dict[str, Any]], flood: int) -> str:
    base = next((r for r in rows if r["config"] == "before"), None)
    out = [
        "| configuration | B's commands during A's bursts | B p50 ms | B p99 ms "
        "| B's first command, median ms | B p99 vs before | B alone p50 / p99 ms "
        f"| A's burst of {flood} answered in (median s) | A's commands refused and resent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["b_p99_ms"] / base["b_p99_ms"] if base else float("nan")
        out.append(
            f"| {r['config']} | {r['b_commands']} | {r['b_p50_ms']:.1f} | {r['b_p99_ms']:.1f} | "
            f"{r['b_first_median_ms']:.1f} | x{ratio:.3f} | "
            f"{r['b_alone_p50_ms']:.1f} / {r['b_alone_p99_ms']:.1f} | "
            f"{r['a_seconds_median']:.2f} | {r['a_refusals']} |"
        )
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> int:
    names = [n for n in args.configs.split(",") if n]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    suffix = uuid.uuid4().hex[:6]
    users = {"a": f"bench-flood-a-{suffix}", "b": f"bench-flood-b-{suffix}"}
    for user in users.values():
        rabbitmqctl("add_user", user, "pw-" + user)
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "meta": {
            "flood": args.flood,
            "rounds": args.rounds,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            **describe_machine(),
        },
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            boxes = await stack.enter_async_context(sandboxes([f"fair-{n}" for n in names]))
            sites = {
                n: await stack.enter_async_context(
                    site(n, boxes[f"fair-{n}"], users, log_dir, not args.no_uvloop)
                )
                for n in names
            }
            print(f"bench.fairness: {', '.join(names)} ready", flush=True)
            values = iter(range(10**9))
            alone = {n: await b_alone(sites[n], 5, values) for n in names}  # warm-up
            alone = {n: await b_alone(sites[n], args.alone, values) for n in names}
            rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            for i in range(args.rounds):
                for n in names:
                    r = await flood_round(sites[n], args.flood, values)
                    rounds[n].append(r)
                    print(
                        f"bench.fairness: round {i + 1} {n:<7} B sent {len(r['b_ms']):3} during the burst, "
                        f"first {r['b_ms'][0]:8.1f} ms, max {max(r['b_ms']):8.1f} ms; A answered in "
                        f"{r['a_seconds']:.2f} s, {r['a_refusals']} refused and resent",
                        flush=True,
                    )
            rows = [summarize(n, rounds[n], alone[n]) for n in names]
            data["summary"] = rows
            data["rounds"] = rounds
    finally:
        for user in users.values():
            with contextlib.suppress(Exception):
                rabbitmqctl("delete_user", user)
    print()
    print(table(rows, args.flood))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("fairness-quick.json" if args.quick else "fairness.json")).write_text(
        json.dumps(data, indent=2, default=str)
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, bursts of 100")
    p.add_argument("--flood", type=int, help="commands in user A's burst (default 500)")
    p.add_argument("--rounds", type=int, help="bursts per configuration (default 5)")
    p.add_argument("--alone", type=int, default=50, help="B's commands measured without a burst")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"which of {', '.join(CONFIGS)}")
    p.add_argument("--no-uvloop", action="store_true", help="asyncio's default loop for the daemons")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write fairness.json")
    args = p.parse_args(argv)
    args.flood = args.flood or (100 if args.quick else 500)
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.quick:
        args.alone = min(args.alone, 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_uvloop(not args.no_uvloop)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
