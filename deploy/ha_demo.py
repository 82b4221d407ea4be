"""The highly available set on one machine, for a demo: `make ha-demo`.

Starts three RabbitMQ nodes clustered together (tests/private_rabbit_cluster.py), a pg_auto_failover
monitor with a primary and a synchronous standby (tests/private_pg_failover.py), and two relationd
daemons, each with every broker node (its own first) and both database nodes in its URLs. Three
clients then stream commands while the node leading the command queue is killed (kill -9, started
again 5 s later), then the database primary (kill -9; the standby is promoted, the old primary comes
back as the standby). Every command must be answered once and applied once; the state must equal an
in-order replay. Prints progress every 2 s, the time to recover from each loss (the longest gap
between two replies) and the memory of the set, then stops everything by pid, whatever happened.

Everything runs on free ports in directories under /tmp, as the rabbitmq and postgres users;
the machine's own PostgreSQL and RabbitMQ are not touched (the reference replay of the check uses a
throw-away database on the local PostgreSQL, as the fault suite does). Run as root (the nodes run
as their services' users). ``--commands N`` sets the stream's length (default 3,000).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.private_pg_failover import PgAutoFailoverSet, process_group, pss_bytes  # noqa: E402
from tests.private_rabbit_cluster import PrivateRabbitCluster  # noqa: E402
from tests.test_fault_cluster import CLIENT_HEARTBEAT  # noqa: E402
from tests.test_fault_failover import failover_run, kill_primary, kill_queue_leader  # noqa: E402


def say(message: str) -> None:
    print(f"[ha-demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rabbit_pss(cluster: PrivateRabbitCluster) -> int:
    pids: list[int] = []
    for node in cluster.nodes:
        if node.proc is not None:
            pids += process_group(node.proc.pid)
        beam = node.beam_pid()
        if beam is not None and beam not in pids:
            pids.append(beam)
    return pss_bytes(pids)


async def demo(commands: int) -> int:
    began = time.monotonic()
    cluster = PrivateRabbitCluster(Path(tempfile.mkdtemp(prefix="relationd-ha-demo-rmq-", dir="/tmp")))
    pgaf = PgAutoFailoverSet()
    try:
        say("starting 3 RabbitMQ nodes and the pg_auto_failover monitor, primary and standby")
        await asyncio.gather(asyncio.to_thread(cluster.start), asyncio.to_thread(pgaf.start))
        await pgaf.create_database("relationd")
        say(
            f"up in {time.monotonic() - began:.0f} s (broker cluster formed in {cluster.formed_in:.0f} s, "
            f"database set in {pgaf.started_in:.0f} s)"
        )
        say(f"broker nodes: {cluster.url_list}")
        say(f"database:     {pgaf.url}")
        memory = {
            "rabbitmq_3_nodes_mib": round(rabbit_pss(cluster) / 2**20),
            "postgres_monitor_primary_standby_mib": round(pgaf.memory_bytes() / 2**20),
        }
        state = {"answered": 0, "total": commands}

        def progress(done: int, total: int) -> None:
            state["answered"], state["total"] = done, total

        async def ticker() -> None:
            while True:
                await asyncio.sleep(2)
                try:
                    db = await asyncio.to_thread(pgaf.states)
                    brokers = sum(1 for n in cluster.nodes if n.alive())
                except Exception as exc:
                    db, brokers = {"?": (str(exc)[:60], "")}, -1
                db_text = ", ".join(f"{name} {reported}" for name, (reported, _) in db.items())
                say(
                    f"answered {state['answered']}/{state['total']} | broker nodes up {brokers}/3 | {db_text}"
                )

        tick = asyncio.create_task(ticker())
        log_dir = Path(tempfile.mkdtemp(prefix="relationd-ha-demo-logs-", dir="/tmp"))
        try:
            say("two daemons, three clients; kill -9 the queue leader at 20% of the stream, then the primary")
            figures = await failover_run(
                pgaf,
                cluster.urls,
                log_dir,
                title="ha-demo",
                commands=commands,
                faults=[kill_queue_leader(cluster), kill_primary(pgaf)],
                at=0.2,
                client_query=CLIENT_HEARTBEAT,
                progress=progress,
            )
        finally:
            tick.cancel()
        memory["relationd_2_daemons_mib"] = figures["daemons_pss_mib"]
        say(
            f"done: {figures['commands']} commands, lost {figures['lost']}, applied twice "
            f"{figures['applied_twice']}, state equal to a replay: {figures['state_equal']}"
        )
        say(
            f"recovery: database standby writable {figures['pg_promoted_s']} s after the primary was "
            f"killed; old primary back as the standby after {figures['pg_rejoined_s']} s; longest reply "
            f"gap {figures['longest_reply_gap_s']} s"
        )
        say(f"memory (PSS): {memory}, total {sum(memory.values())} MiB")
        say(f"daemon logs in {log_dir}")
        return 0
    finally:
        say("stopping everything")
        pgaf.destroy()
        cluster.destroy()
        say(f"stopped; {time.monotonic() - began:.0f} s in all")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=3000)
    args = parser.parse_args()
    return asyncio.run(demo(args.commands))


if __name__ == "__main__":
    sys.exit(main())
