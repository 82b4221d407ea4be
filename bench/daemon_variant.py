"""``relationd run`` with experimental changes switched on by BENCH_* variables, to measure them.

The bench runs the daemon through this module to compare a change with the daemon as it is,
before the change is wired into the daemon itself:

  BENCH_UVLOOP=0          asyncio's default loop (the CLI switches to uvloop when installed)
  BENCH_BATCH=N           apply up to N waiting commands per transaction (daemon.batching)
  BENCH_NO_POOL_RESET=1   skip asyncpg's reset query when a connection goes back to the pool
"""

from __future__ import annotations

import os

from daemon import cli


def main() -> None:
    if os.environ.get("BENCH_UVLOOP", "1") == "0":
        cli._loop_policy = lambda: None
    batch = int(os.environ.get("BENCH_BATCH", "0"))
    if batch > 1:
        from daemon import batching, service

        def consumer(settings, pool, broker):  # type: ignore[no-untyped-def]
            return batching.BatchingConsumer(settings, pool, broker, max_batch=batch)

        service.CommandConsumer = consumer  # type: ignore[misc,assignment]
    if os.environ.get("BENCH_NO_POOL_RESET") == "1":
        import asyncpg

        from daemon import database

        real = asyncpg.create_pool

        async def no_reset(conn):  # type: ignore[no-untyped-def]
            return None

        def create_pool(*args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs.setdefault("reset", no_reset)
            return real(*args, **kwargs)

        database.asyncpg.create_pool = create_pool  # type: ignore[attr-defined]
    cli.main()


if __name__ == "__main__":
    main()
