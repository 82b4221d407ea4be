"""Starting each contender in its sandbox, and what the load generator sends it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench import rawsql
from bench.env import Sandbox, ServerProcess, database_cpu_seconds, free_port, python_module, sandbox
from bench.load import LoadClient, Script, raw_script
from bench.workload import RelationdWorkload, model_names, summary
from daemon.migrate import apply_schema

RAW = "raw"
FASTSTREAM = "faststream"
CEILING = "ceiling"
RELATIOND = "relationd"
CONTENDERS = (CEILING, RAW, FASTSTREAM, RELATIOND)


def faststream_missing() -> str | None:
    """Why the FastStream contender cannot run here, or None."""
    for module in ("faststream", "faststream.rabbit"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[bench]')"
        except ModuleNotFoundError:
            return f"{module} is not installed (pip install -e '.[bench]')"
    return None


@dataclass
class Options:
    models: int = 64
    requirers: int = 24
    providers: int = 24
    prefetch: int = 64
    pool_size: int = 10
    uvloop: bool = True
    log_dir: Path = Path("/tmp")
    relationd_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    """A contender that is up: its process, a load client on its vhost, its script."""

    name: str
    server: ServerProcess
    client: LoadClient
    script: Script
    sandbox: Sandbox
    setup_seconds: float = 0.0
    workload: RelationdWorkload | None = None
    pool: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    async def settle(self, timeout: float = 60) -> float:
        """Wait until the contender has no backlog (relationd: outbox published); seconds waited."""
        if self.pool is None:
            return 0.0
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pending = await self.pool.fetchval("SELECT count(*) FROM outbox")
            if pending == 0:
                break
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    def database_cpu(self) -> dict[int, float]:
        return database_cpu_seconds(self.sandbox.database_url.rpartition("/")[2])

    def stats(self) -> dict[str, Any]:
        out = dict(self.info)
        if self.workload is not None:
            out.update(summary(self.workload))
        return out


def _server_env(box: Sandbox, opts: Options) -> dict[str, str]:
    return {
        "BENCH_AMQP_URL": box.amqp_url,
        "BENCH_DATABASE_URL": box.database_url,
        "BENCH_PREFETCH": str(opts.prefetch),
        "BENCH_POOL_SIZE": str(opts.pool_size),
        "BENCH_UVLOOP": "1" if opts.uvloop else "0",
    }


def relationd_env(box: Sandbox, opts: Options, http_port: int) -> dict[str, str]:
    env = {
        "RELATIOND_AMQP_URL": box.amqp_url,
        "RELATIOND_DATABASE_URL": box.database_url,
        "RELATIOND_HTTP_PORT": str(http_port),
        "RELATIOND_PREFETCH": str(opts.prefetch),
        "RELATIOND_POOL_SIZE": str(opts.pool_size),
        "RELATIOND_LOG_LEVEL": "warning",
        "RELATIOND_LOG_FORMAT": "json",
        "BENCH_UVLOOP": "1" if opts.uvloop else "0",
    }
    env.update(opts.relationd_env)
    return env


def relationd_argv(opts: Options) -> list[str]:
    """``relationd run`` itself, or through bench.daemon_variant when a change is being measured."""
    if opts.uvloop and not any(k.startswith("BENCH_") for k in opts.relationd_env):
        return python_module("daemon", "run")
    return python_module("bench.daemon_variant", "run")


@contextlib.asynccontextmanager
async def start(
    name: str, opts: Options, label: str | None = None, box: Sandbox | None = None
) -> AsyncIterator[Running]:
    """Sandbox, schema, server process, load client and (for relationd) the set-up commands."""
    label = label or name
    async with contextlib.AsyncExitStack() as boxes:
        if box is None:
            box = await boxes.enter_async_context(sandbox(label))
        pool = None
        http_port = None
        if name == RELATIOND:
            conn = await asyncpg.connect(box.database_url)
            try:
                await apply_schema(conn)
            finally:
                await conn.close()
            http_port = free_port()
            argv = relationd_argv(opts)
            env = relationd_env(box, opts, http_port)
        elif name in (RAW, FASTSTREAM):
            conn = await asyncpg.connect(box.database_url)
            try:
                await rawsql.create_schema(conn, opts.models)
            finally:
                await conn.close()
            argv = python_module(f"bench.{name}_server")
            env = _server_env(box, opts)
        elif name == CEILING:
            argv = python_module("bench.ceiling_server")
            env = _server_env(box, opts)
        else:
            raise ValueError(f"unknown contender {name!r}")
        server = ServerProcess(argv, env, opts.log_dir / f"{label}.log", http_port=http_port)
        server.start()
        client: LoadClient | None = None
        try:
            await server.wait_ready()
            client = await LoadClient(box.amqp_url).open()
            running = Running(name, server, client, raw_script(opts.models), box)
            if name == RELATIOND:
                started = time.monotonic()
                workload = RelationdWorkload.create(
                    model_names("bench", opts.models), opts.requirers, opts.providers
                )
                sent = await workload.setup(client)
                running.setup_seconds = time.monotonic() - started
                running.info["setup_commands"] = sent
                running.workload = workload
                running.script = workload.script()
                pool = await asyncpg.create_pool(box.database_url, min_size=1, max_size=2)
                running.pool = pool
                await running.settle()
            yield running
        finally:
            if client is not None:
                await client.close()
            if pool is not None:
                await pool.close()
            code = server.stop()
            if code not in (0, None, -15):
                print(f"bench: {label} exited {code}; log: {server.log_path}")
