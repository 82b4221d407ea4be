"""The fault suite on a private pg_auto_failover set (issue 12, database half).

Two daemons share a monitor-managed primary and synchronous standby through one multi-host URL
(``target_session_attrs=read-write``) while three test clients stream commands. Faults:

* the primary killed (kill -9 of its keeper, postmaster and backends): pg_auto_failover promotes
  the standby, the daemons carry on, and the old primary is brought back as the new standby;
* the primary frozen (SIGSTOP) for 30 s, then let go: the standby is promoted meanwhile, the
  frozen node is demoted when it wakes and rejoins as the standby;
* with a private three-node RabbitMQ cluster (tests/private_rabbit_cluster.py), the node leading
  the command queue killed and then the database primary killed, in one run.

The checks are the suite's (tests/fault_support.py): every command answered, applied once, the
state equal to an in-order replay, each model's events gapless 1..n after dropping duplicates.
Figures (FAULT-SUITE lines, docs/faults.md): commands, time from the kill to the first write on the
promoted standby, longest gap between two replies (goal <= 15 s after a primary loss), database
retries of the daemons, client resends, seconds for the old primary to rejoin as the standby.

Slow only (the set takes ~15-20 s to start here): ``make fault`` or
``pytest -m slow tests/test_fault_failover.py``. RELATIOND_FAULT_FAILOVER_COMMANDS (default 2,100)
sets the stream's length, RELATIOND_FAULT_FREEZE_SECONDS (30) the freeze.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from contracts import topology
from tests.fault_support import (
    ModelStream,
    env_int,
    fault_vhost,
    metric,
    report,
    run_stream,
    seed_from_env,
    verify_run,
)
from tests.harness import DaemonProcess
from tests.private_pg_failover import (
    PgAutoFailoverSet,
    private_pg_failover,
    private_pg_failover_set,
    pss_bytes,
)
from tests.private_rabbit_cluster import PrivateRabbitCluster, private_rabbit_cluster
from tests.test_fault_cluster import (
    CLIENT_HEARTBEAT,
    Clients,
    ClusterCollector,
    ClusterDriver,
    longest_gap,
    rotated,
)

__all__ = ["fault_vhost", "private_pg_failover", "private_pg_failover_set", "private_rabbit_cluster"]

Fault = Callable[[], Awaitable[dict[str, Any]]]


def kill_primary(pgaf: PgAutoFailoverSet, down_for: float = 3.0) -> Fault:
    """kill -9 the primary; measure the promotion; bring it back as the standby."""

    async def fault() -> dict[str, Any]:
        victim = await asyncio.to_thread(pgaf.primary)
        standby = pgaf.standby_of(victim)
        await asyncio.to_thread(pgaf.kill, victim)
        promoted = await asyncio.to_thread(pgaf.wait_writable, standby, 120)
        await asyncio.sleep(down_for)
        rejoined = await asyncio.to_thread(pgaf.rejoin, victim)
        return {"pg_killed": victim, "pg_promoted_s": round(promoted, 1), "pg_rejoined_s": round(rejoined, 1)}

    return fault


def freeze_primary(pgaf: PgAutoFailoverSet, seconds: float) -> Fault:
    """SIGSTOP the primary for ``seconds``, then SIGCONT: it must be demoted and rejoin."""

    async def fault() -> dict[str, Any]:
        victim = await asyncio.to_thread(pgaf.primary)
        standby = pgaf.standby_of(victim)
        began = time.monotonic()
        await asyncio.to_thread(pgaf.freeze, victim)
        try:
            promoted = await asyncio.to_thread(pgaf.wait_writable, standby, seconds + 60)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            await asyncio.to_thread(pgaf.thaw, victim)
        rejoined = await asyncio.to_thread(pgaf.wait_states, {victim: "secondary", standby: "primary"}, 180)
        return {
            "pg_frozen": victim,
            "frozen_s": round(time.monotonic() - began - rejoined, 1),
            "pg_promoted_s": round(promoted, 1),
            "pg_rejoined_s_after_thaw": round(rejoined, 1),
        }

    return fault


def kill_queue_leader(cluster: PrivateRabbitCluster, down_for: float = 5.0) -> Fault:
    """kill -9 the RabbitMQ node leading the command queue; start it again after a while."""

    async def fault() -> dict[str, Any]:
        victim = await asyncio.to_thread(cluster.queue_leader, "/", topology.COMMAND_QUEUE)
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(victim.start)
        return {"broker_killed": victim.node}

    return fault


def failures(daemons: list[DaemonProcess]) -> list[str]:
    """The daemons' error lines (an Internal reply's traceback among them), for a failed check."""
    lines = [line for d in daemons for line in d.log().splitlines() if '"level": "error"' in line]
    return [line[:4000] for line in lines[:5]]


async def failover_run(
    pgaf: PgAutoFailoverSet,
    amqp_urls: list[str],
    log_dir: Path,
    *,
    title: str,
    commands: int,
    faults: list[Fault],
    at: float = 0.2,
    client_query: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Stream ``commands`` through two daemons, the ``faults`` one after the other from ``at`` of
    the stream on; check everything; the figures."""
    seed = seed_from_env()
    rng = random.Random(seed)
    daemons = [DaemonProcess(rotated(amqp_urls, i), pgaf.url, log_dir, prefetch=64) for i in range(2)]
    for d in daemons:
        d.start()
    arrivals: list[float] = []
    clients_at = len(amqp_urls) - 1
    collector = await ClusterCollector(rotated(amqp_urls, clients_at, client_query)).start()
    drivers = [
        await ClusterDriver(rotated(amqp_urls, i % len(amqp_urls), client_query), arrivals).start()
        for i in range(3)
    ]
    began = time.monotonic()
    try:
        for d in daemons:
            await d.wait_ready(60)
        models = 6
        per_model = commands // models
        streams = [
            ModelStream(f"{title}-{i}-{uuid.uuid4().hex[:6]}", random.Random(rng.random()), per_model)
            for i in range(models)
        ]
        total = per_model * models
        finished = 0

        def done() -> None:
            nonlocal finished
            finished += 1
            if progress is not None:
                progress(finished, total)

        results: dict[str, Any] = {}
        window: list[float] = []
        starts: list[float] = []  # when each fault began

        async def faulter() -> None:
            while finished < int(total * at):  # noqa: ASYNC110 (a counter, polled every 5 ms)
                await asyncio.sleep(0.005)
            window.append(time.monotonic())
            for fault in faults:
                starts.append(time.monotonic())
                results.update(await fault())
            window.append(float(total - finished))

        fault_task = asyncio.create_task(faulter())
        await asyncio.wait_for(
            asyncio.gather(*(run_stream(drivers[i % 3], s, done) for i, s in enumerate(streams))), 1800
        )
        stream_end = time.monotonic()
        await asyncio.wait_for(fault_task, 600)
        metrics = [(await asyncio.to_thread(d.http, "/metrics"))[1] for d in daemons]
        daemons_pss = pss_bytes([d.proc.pid for d in daemons if d.proc is not None])
        codes = [await asyncio.to_thread(d.terminate) for d in daemons]
        assert codes == [0, 0], [d.log()[-3000:] for d in daemons]

        clients = Clients(drivers)
        clients.merge()
        verdict = await verify_run(pgaf.url, streams, clients, collector)  # type: ignore[arg-type]
        gap, gap_began = longest_gap(arrivals, window[0], stream_end)
        # The longest gap from each fault's start to the next's (to the stream's end for the last).
        gaps = [
            round(longest_gap(arrivals, start, end)[0], 2)
            for start, end in zip(starts, [*starts[1:], stream_end], strict=True)
        ]
        figures = {
            "seed": seed,
            **verdict.figures,
            **results,
            "commands_after_faults": int(window[1]),
            "longest_reply_gap_s": round(gap, 2),
            "gap_began_s_after_fault": round(gap_began, 2),
            "reply_gap_s_per_fault": gaps,
            "db_retries": sum(
                int(metric(text, 'relationd_transient_retries_total{where="database"}')) for text in metrics
            ),
            "db_reconnects": sum(
                int(metric(text, 'relationd_reconnects_total{peer="database"}')) for text in metrics
            ),
            "redeliveries": sum(int(metric(text, "relationd_redeliveries_total")) for text in metrics),
            "pg_set_pss_mib": round(pgaf.memory_bytes() / 2**20),
            "daemons_pss_mib": round(daemons_pss / 2**20),
            "seconds": round(time.monotonic() - began, 1),
        }
        report(title, figures)
        assert not verdict.problems, f"seed {seed}:\n" + "\n".join(verdict.problems + failures(daemons))
        assert all(d.starts == 1 for d in daemons)
        return figures
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.kill()
        for driver in drivers:
            await driver.close()
        await collector.close()


@pytest.mark.slow
async def test_kill_the_database_primary_during_a_stream(
    private_pg_failover: PgAutoFailoverSet, fault_vhost: str, tmp_path: Path
) -> None:
    pgaf = private_pg_failover
    report("private-pg-failover", {"start_s": round(pgaf.started_in, 1)})
    first = pgaf.primary()
    figures = await failover_run(
        pgaf,
        [fault_vhost],
        tmp_path,
        title="database-primary-kill",
        commands=env_int("RELATIOND_FAULT_FAILOVER_COMMANDS", 2100),
        faults=[kill_primary(pgaf)],
    )
    # pg_auto_failover promoted the standby, and the old primary is its standby now (it rejoined
    # within the fault; the stream may have ended before: commands_after_faults says).
    assert pgaf.primary() == pgaf.standby_of(first)
    assert figures["pg_rejoined_s"] > 0


@pytest.mark.slow
async def test_freeze_the_database_primary_for_30_seconds(
    private_pg_failover: PgAutoFailoverSet, fault_vhost: str, tmp_path: Path
) -> None:
    pgaf = private_pg_failover
    first = pgaf.primary()
    await failover_run(
        pgaf,
        [fault_vhost],
        tmp_path,
        title="database-primary-freeze",
        commands=env_int("RELATIOND_FAULT_FAILOVER_FREEZE_COMMANDS", 4200),
        faults=[freeze_primary(pgaf, env_int("RELATIOND_FAULT_FREEZE_SECONDS", 30))],
        at=0.1,
    )
    assert pgaf.primary() == pgaf.standby_of(first)


@pytest.mark.slow
async def test_kill_a_broker_node_then_the_database_primary(
    private_rabbit_cluster: PrivateRabbitCluster,
    private_pg_failover: PgAutoFailoverSet,
    tmp_path: Path,
) -> None:
    pgaf = private_pg_failover
    figures = await failover_run(
        pgaf,
        private_rabbit_cluster.urls,
        tmp_path,
        title="broker-node-then-primary-kill",
        commands=env_int("RELATIOND_FAULT_FAILOVER_COMMANDS", 2100) * 2,
        faults=[kill_queue_leader(private_rabbit_cluster), kill_primary(pgaf)],
        at=0.15,
        client_query=CLIENT_HEARTBEAT,
    )
    await asyncio.to_thread(private_rabbit_cluster.wait_running, len(private_rabbit_cluster.nodes), 180)
    assert pgaf.primary() == "node2" and figures["pg_rejoined_s"] > 0
