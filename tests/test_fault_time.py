"""Part 5 of the fault suite: time. A command whose reply cannot be delivered is still applied
once and acknowledged; a slow database does not make the daemon give back work it is still doing.

Fast: the row lock is held 8 s. Full (-m slow): RELATIOND_FAULT_LOCK_SECONDS (75 s, longer than
the pool's 60 s statement timeout, so the daemon's own retry is exercised too).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from contracts import topology
from tests.fault_support import Driver, connect, env_int, fault_database, fault_vhost, metric, report
from tests.harness import DaemonProcess

__all__ = ["fault_database", "fault_vhost"]

PEERS = {"peers": {"p": "x"}}


async def _setup(driver: Driver, model: str) -> None:
    for body in (
        {"type": "create_model", "name": model},
        {"type": "deploy", "model": model, "application": "app", "charm": PEERS},
    ):
        reply = await driver.call(body)
        assert reply["ok"], reply


async def _units(database: str, model: str) -> int:
    conn = await connect(database)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM unit u JOIN model m ON m.uuid = u.model_uuid WHERE m.name = $1", model
            )
        )
    finally:
        await conn.close()


async def _processed(database: str, ids: list[str]) -> int:
    conn = await connect(database)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM processed_command WHERE command_id = ANY($1)", ids)
        )
    finally:
        await conn.close()


def _command_lines(daemon: DaemonProcess, command_id: str) -> list[dict[str, Any]]:
    return [
        x for x in daemon.log_lines() if x.get("event") == "command" and x.get("command_id") == command_id
    ]


async def test_reply_to_a_queue_that_is_gone_is_applied_once_and_acked(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(fault_vhost, fault_database, tmp_path)
    daemon.start()
    driver = await Driver(fault_vhost).start()
    try:
        await daemon.wait_ready()
        model = f"gone-{uuid.uuid4().hex[:8]}"
        await _setup(driver, model)
        connection = await aio_pika.connect(fault_vhost)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            gone = await channel.declare_queue(f"gone-{uuid.uuid4().hex[:8]}")
            await gone.delete(if_unused=False, if_empty=False)
            ids = []
            # A deleted queue, a direct reply-to name whose channel never existed, a name never made.
            for reply_to in (
                gone.name,
                "amq.rabbitmq.reply-to.g1h2AAAAAAAAAAAAAAAAAAAAAAA=",
                "never-declared",
            ):
                command_id = str(uuid.uuid4())
                ids.append(command_id)
                body = {"type": "add_units", "model": model, "application": "app"}
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        content_type=topology.CONTENT_TYPE,
                        message_id=command_id,
                        reply_to=reply_to,
                        correlation_id=command_id,
                        user_id="guest",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=topology.COMMAND_QUEUE,
                )
            deadline = time.monotonic() + 20
            while await _processed(fault_database, ids) < len(ids) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)  # time for a redelivery loop to show, if there were one
            queue = await channel.declare_queue(
                topology.COMMAND_QUEUE,
                passive=True,
            )
            left = queue.declaration_result.message_count
        metrics_text = (await asyncio.to_thread(daemon.http, "/metrics"))[1]
        lines = {cid: _command_lines(daemon, cid) for cid in ids}
        units = await _units(fault_database, model)
        report(
            "reply-queue-gone",
            {
                "commands": len(ids),
                "applied": await _processed(fault_database, ids),
                "units_added": units,
                "handled_log_lines": sum(len(v) for v in lines.values()),
                "queue_left": left,
                "redeliveries": int(metric(metrics_text, "relationd_redeliveries_total")),
                "daemon_restarts": daemon.starts - 1,
            },
        )
        assert units == len(ids)
        assert left == 0
        assert metric(metrics_text, "relationd_redeliveries_total") == 0
        for cid, got in lines.items():
            assert [(x["outcome"], x["stage"]) for x in got] == [("applied", "acked")], (cid, got)
        assert daemon.proc is not None and daemon.proc.poll() is None
    finally:
        await driver.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()


async def slow_database_run(amqp: str, database: str, log_dir: Path, hold: float) -> None:
    daemon = DaemonProcess(amqp, database, log_dir, prefetch=16)
    daemon.start()
    driver = await Driver(amqp, timeout=hold + 120).start()
    try:
        await daemon.wait_ready()
        slow, other = f"slow-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
        await _setup(driver, slow)
        await _setup(driver, other)
        # The test holds the model's row lock: every write to that model waits on it.
        blocker = await connect(database)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM model WHERE name = $1 FOR UPDATE", slow)
        began = time.monotonic()
        slow_ids = [str(uuid.uuid4()) for _ in range(5)]
        waiting = [
            asyncio.create_task(driver.call({"type": "add_units", "model": slow, "application": "app"}, cid))
            for cid in slow_ids
        ]
        # Meanwhile other models' commands go through.
        other_took = []
        for _ in range(20):
            t = time.monotonic()
            reply = await driver.call({"type": "add_units", "model": other, "application": "app"})
            other_took.append(time.monotonic() - t)
            assert reply["ok"], reply
        assert not any(t.done() for t in waiting)
        await asyncio.sleep(max(0.0, hold - (time.monotonic() - began)))
        assert not any(t.done() for t in waiting), "a command went through a held lock"
        await tx.commit()
        await blocker.close()
        replies = await asyncio.wait_for(asyncio.gather(*waiting), 120)
        waited = time.monotonic() - began
        metrics_text = (await asyncio.to_thread(daemon.http, "/metrics"))[1]
        lines = {cid: _command_lines(daemon, cid) for cid in slow_ids}
        units = await _units(database, slow)
        report(
            "slow-database",
            {
                "lock_held_s": round(hold, 1),
                "waited_s": round(waited, 1),
                "commands": len(slow_ids),
                "ok": sum(1 for r in replies if r["ok"]),
                "applied": await _processed(database, slow_ids),
                "units_added": units,
                "replies": sum(len(driver.replies[c]) for c in slow_ids),
                "other_model_max_s": round(max(other_took), 2),
                "redeliveries": int(metric(metrics_text, "relationd_redeliveries_total")),
                "db_retries": int(
                    metric(metrics_text, 'relationd_transient_retries_total{where="database"}')
                ),
                "client_resends": driver.resends,
                "daemon_restarts": daemon.starts - 1,
            },
        )
        assert all(r["ok"] for r in replies), replies
        assert units == len(slow_ids)
        assert metric(metrics_text, "relationd_redeliveries_total") == 0
        assert driver.resends == 0
        for cid, got in lines.items():
            assert [(x["outcome"], x["stage"]) for x in got] == [("applied", "acked")], (cid, got)
        assert all(len(driver.replies[c]) == 1 for c in slow_ids)
        assert max(other_took) < 5, other_took
    finally:
        await driver.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()


async def test_slow_database_is_not_redelivered_fast(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    await slow_database_run(fault_vhost, fault_database, tmp_path, hold=8)


@pytest.mark.slow
async def test_slow_database_is_not_redelivered_full(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    await slow_database_run(
        fault_vhost, fault_database, tmp_path, hold=env_int("RELATIOND_FAULT_LOCK_SECONDS", 75)
    )
