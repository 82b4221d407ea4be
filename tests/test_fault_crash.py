"""Part 1 of the fault suite: SIGKILL the daemon at random moments while commands stream in.

Afterwards every command has exactly one effect and one (possibly repeated, always identical)
reply, the database equals applying the same commands once in order to a fresh database, and every
committed change was published, gapless and in order per model once duplicates are dropped.

Fast (make test): 500 commands, 2 kills. Full (-m slow): 5,000 commands, 5 kills. Sizes:
RELATIOND_FAULT_COMMANDS, RELATIOND_FAULT_KILLS, RELATIOND_FAULT_MODELS; RELATIOND_FAULT_SEED
replays a run's choices.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.fault_support import env_int, fault_database, fault_vhost, streamed_run
from tests.harness import DaemonProcess

__all__ = ["fault_database", "fault_vhost"]


async def crash_run(amqp: str, database: str, log_dir: Path, commands: int, kills: int, models: int) -> None:
    daemon = DaemonProcess(amqp, database, log_dir, prefetch=64)
    daemon.start()

    async def kill_and_restart() -> None:
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(daemon.proc.wait, 10)
        daemon.start()
        await daemon.wait_ready(60)

    verdict = await streamed_run(
        title="crash",
        amqp=amqp,
        database=database,
        daemon=daemon,
        commands=commands,
        models=models,
        faults=kills,
        fault=kill_and_restart,
        extra=lambda: {"kills": daemon.starts - 1, "restarts": daemon.starts - 1},
    )
    assert not verdict.problems, f"seed {verdict.figures['seed']}:\n" + "\n".join(verdict.problems)
    assert verdict.figures["daemon_starts"] == kills + 1


async def test_sigkill_during_command_stream_fast(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    await crash_run(
        fault_vhost,
        fault_database,
        tmp_path,
        commands=env_int("RELATIOND_FAULT_FAST_COMMANDS", 500),
        kills=env_int("RELATIOND_FAULT_FAST_KILLS", 2),
        models=5,
    )


@pytest.mark.slow
async def test_sigkill_during_command_stream_full(
    fault_vhost: str, fault_database: str, tmp_path: Path
) -> None:
    await crash_run(
        fault_vhost,
        fault_database,
        tmp_path,
        commands=env_int("RELATIOND_FAULT_COMMANDS", 5000),
        kills=env_int("RELATIOND_FAULT_KILLS", 5),
        models=env_int("RELATIOND_FAULT_MODELS", 10),
    )
