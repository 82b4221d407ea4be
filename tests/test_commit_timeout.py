"""A COMMIT that times out may have been applied: the retry keeps the command id, so the command
is applied once, and its stored reply is sent only once its commit is on the synchronous standby.

A private cluster whose ``synchronous_standby_names`` names a standby that never connects makes
every commit wait, as a primary whose standby is lost or frozen does; with a 1 s statement
timeout the daemon's COMMIT times out and the command is retried with its id. The backend still
waiting is then terminated, which keeps its transaction committed on this server alone; the retry
finds the command in the store and answers it only after the standby is dropped from the
configuration, when a commit no longer waits; the relay holds the command's event back as long.
Without the fence (daemon/database.py ``fence``) the stored reply went out at once, for a commit
that a failover could still lose. Slow (~10 s): ``make fault``.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.fault_support import Driver, fault_vhost, metric
from tests.harness import DaemonProcess
from tests.private_services import PrivatePostgres, private_postgres, private_postgres_cluster

__all__ = ["fault_vhost", "private_postgres", "private_postgres_cluster"]


async def _set_standbys(url: str, names: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        await conn.execute("SELECT pg_reload_conf()")
        for _ in range(50):  # every process reads the file again, the checkpointer last
            if await conn.fetchval("SHOW synchronous_standby_names") == names:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
    finally:
        await conn.close()


@pytest.mark.slow  # ~10 s: make fault
async def test_a_timed_out_commit_is_applied_once_and_answered_once_it_is_durable(
    private_postgres: PrivatePostgres, fault_vhost: str, tmp_path: Path
) -> None:
    url = private_postgres.url  # type: ignore[attr-defined]
    daemon = DaemonProcess(fault_vhost, url, tmp_path, database_command_timeout_seconds=1)
    daemon.start()
    driver = await Driver(fault_vhost, timeout=60).start()
    try:
        await daemon.wait_ready(60)
        await _set_standbys(private_postgres.admin_url, "never_connects")
        command_id = str(uuid.uuid4())
        name = f"ct-{command_id[:8]}"
        call = asyncio.create_task(driver.call({"type": "create_model", "name": name}, command_id))
        conn = await asyncpg.connect(url)
        try:
            # The command's COMMIT waits for the standby, times out and is retried; the waiting
            # backend is then ended as a failing primary's are, which leaves the transaction
            # committed there alone ("the transaction has already committed locally").
            for _ in range(300):
                waiting = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
                if waiting:
                    break
                await asyncio.sleep(0.1)
            assert waiting, "no commit waited for the standby"
            for row in waiting:
                await conn.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
            for _ in range(100):
                if await conn.fetchval(
                    "SELECT count(*) FROM processed_command WHERE command_id = $1", command_id
                ):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the command's commit never became visible")
            await asyncio.sleep(3)
            retries = metric(
                (await asyncio.to_thread(daemon.http, "/metrics"))[1], "relationd_transient_retries_total"
            )
            assert retries >= 1, daemon.log()[-3000:]
            # The retry finds it in the store, but does not answer while it is on the primary alone.
            assert not call.done() and not driver.replies.get(command_id), driver.replies.get(command_id)
            # Nor does the relay announce the command's event: it stays in the outbox (the relay
            # fences only where synchronous_standby_names is set, as it is here).
            assert await conn.fetchval("SELECT count(*) FROM outbox") >= 1
            await _set_standbys(private_postgres.admin_url, "")
            reply = await asyncio.wait_for(call, 30)
            assert reply["ok"], reply
            assert await conn.fetchval("SELECT count(*) FROM model WHERE name = $1", name) == 1
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM processed_command WHERE command_id = $1", command_id
                )
                == 1
            )
            assert len(driver.replies[command_id]) == 1
            for _ in range(100):
                if not await conn.fetchval("SELECT count(*) FROM outbox"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the relay never published the event once the commit was durable")
        finally:
            await conn.close()
        assert await asyncio.to_thread(daemon.terminate) == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        await driver.close()
