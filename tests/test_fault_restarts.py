"""Part 2 of the fault suite: the broker, then the database, restarted during a command stream.

Both run as private instances of this test (tests/private_services.py): the machine's shared
RabbitMQ and PostgreSQL are never stopped. The daemon must reconnect by itself (daemon_starts = 1)
and the checks are those of the crash test: applied once, answered, the same state as a fault-free
replay, every event published, gapless per model.

Fast: 400 / 300 commands, one restart each. Full (-m slow): RELATIOND_FAULT_RESTART_COMMANDS (2,000)
and RELATIOND_FAULT_RESTARTS (3) each.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fault_support import env_int, fault_database, fault_vhost, report, streamed_run
from tests.harness import DaemonProcess
from tests.private_services import (
    PrivatePostgres,
    PrivateRabbitMQ,
    private_postgres,
    private_postgres_cluster,
    private_rabbitmq,
)

__all__ = [
    "fault_database",
    "fault_vhost",
    "private_postgres",
    "private_postgres_cluster",
    "private_rabbitmq",
]


async def broker_restart_run(
    node: PrivateRabbitMQ, database: str, log_dir: Path, commands: int, restarts: int
) -> None:
    report("private-rabbitmq", {"start_s": round(node.started_in, 2)})
    daemon = DaemonProcess(node.url, database, log_dir, prefetch=64)
    daemon.start()

    async def restart_broker() -> None:
        await asyncio.to_thread(node.restart, 0.5)

    verdict = await streamed_run(
        title="broker-restart",
        amqp=node.url,
        database=database,
        daemon=daemon,
        commands=commands,
        models=5,
        faults=restarts,
        fault=restart_broker,
        extra=lambda: {"broker_restarts": node.restarts, "daemon_restarts": daemon.starts - 1},
        window=(0.1, 0.5),
    )
    assert not verdict.problems, f"seed {verdict.figures['seed']}:\n" + "\n".join(verdict.problems)
    assert verdict.figures["daemon_starts"] == 1
    assert verdict.figures["broker_reconnects"] >= restarts


async def database_restart_run(
    pg: PrivatePostgres, amqp: str, log_dir: Path, commands: int, restarts: int
) -> None:
    report("private-postgres", {"start_s": round(pg.started_in, 2)})
    url = pg.url  # type: ignore[attr-defined]
    daemon = DaemonProcess(amqp, url, log_dir, prefetch=64)
    daemon.start()

    async def restart_database() -> None:
        # immediate: every connection is cut mid-transaction, as in a crash; down for a second.
        await asyncio.to_thread(pg.restart, "immediate", 1.0)

    verdict = await streamed_run(
        title="database-restart",
        amqp=amqp,
        database=url,
        daemon=daemon,
        commands=commands,
        models=5,
        faults=restarts,
        fault=restart_database,
        extra=lambda: {"database_restarts": pg.restarts, "daemon_restarts": daemon.starts - 1},
        window=(0.1, 0.5),
    )
    assert not verdict.problems, f"seed {verdict.figures['seed']}:\n" + "\n".join(verdict.problems)
    assert verdict.figures["daemon_starts"] == 1


async def test_broker_restart_during_stream_fast(
    private_rabbitmq: PrivateRabbitMQ, fault_database: str, tmp_path: Path
) -> None:
    await broker_restart_run(private_rabbitmq, fault_database, tmp_path, commands=400, restarts=1)


async def test_database_restart_during_stream_fast(
    private_postgres: PrivatePostgres, fault_vhost: str, tmp_path: Path
) -> None:
    await database_restart_run(private_postgres, fault_vhost, tmp_path, commands=300, restarts=1)


@pytest.mark.slow
async def test_broker_restart_during_stream_full(
    private_rabbitmq: PrivateRabbitMQ, fault_database: str, tmp_path: Path
) -> None:
    await broker_restart_run(
        private_rabbitmq,
        fault_database,
        tmp_path,
        commands=env_int("RELATIOND_FAULT_RESTART_COMMANDS", 2000),
        restarts=env_int("RELATIOND_FAULT_RESTARTS", 3),
    )


@pytest.mark.slow
async def test_database_restart_during_stream_full(
    private_postgres: PrivatePostgres, fault_vhost: str, tmp_path: Path
) -> None:
    await database_restart_run(
        private_postgres,
        fault_vhost,
        tmp_path,
        commands=env_int("RELATIOND_FAULT_RESTART_COMMANDS", 2000),
        restarts=env_int("RELATIOND_FAULT_RESTARTS", 3),
    )
