"""The PostgreSQL pool: TLS from settings, codecs on every connection, reconnects counted."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from daemon import logs, metrics
from daemon.settings import Settings
from daemon.transient import backoff, is_tls_failure, is_transient
from handlers.db import init_connection

log = logs.get("relationd.database")


def dsn(settings: Settings) -> str:
    """The database URL with sslmode / sslrootcert from settings added to its query."""
    url = urlsplit(settings.database_url.get_secret_value())
    query = dict(parse_qsl(url.query))
    if settings.database_sslmode:
        query["sslmode"] = settings.database_sslmode
    if settings.database_ca_file:
        query["sslrootcert"] = settings.database_ca_file
    return urlunsplit(url._replace(query=urlencode(query)))


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def _keep_session(conn: Any) -> None:
    """Give a connection back to the pool without asyncpg's reset query.

    relationd leaves no session state behind: its settings and advisory locks are
    transaction-scoped, and the outbox relay listens and leads on a connection of its own.
    asyncpg still rolls back a transaction left open. Spares the four-statement reset (advisory
    unlock, CLOSE ALL, UNLISTEN *, RESET ALL) on every acquire: 0.05-0.2 ms a command
    (bench/README.md).
    """


async def connect(settings: Settings, *, server_settings: dict[str, str] | None = None) -> Any:
    """One connection outside the pool, set up as the pool's are (TLS, codecs)."""
    conn = await asyncpg.connect(dsn(settings), server_settings=server_settings, command_timeout=60)
    try:
        await init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def create_pool(settings: Settings, *, wait: float | None = None) -> Any:
    """Create the pool, waiting up to ``wait`` seconds (None: for ever) for the database."""
    connections = 0

    async def init(conn: Any) -> None:
        nonlocal connections
        connections += 1
        if connections > settings.pool_size:
            metrics.RECONNECTS.labels("database").inc()
        await init_connection(conn)

    loop = asyncio.get_running_loop()
    deadline = None if wait is None else loop.time() + wait
    delays = backoff(0.2, 5.0)
    while True:
        try:
            return await asyncpg.create_pool(
                dsn(settings),
                min_size=1,
                max_size=settings.pool_size,
                init=init,
                reset=_keep_session,
                command_timeout=60,
                max_inactive_connection_lifetime=300,
            )
        except Exception as exc:
            if not is_transient(exc) or (deadline is not None and loop.time() > deadline):
                raise
            if is_tls_failure(exc):
                log.error(
                    "database TLS failed (check RELATIOND_DATABASE_SSLMODE, RELATIOND_DATABASE_CA_FILE "
                    "and the server's certificate); retrying",
                    error=str(exc) or type(exc).__name__,
                )
            else:
                log.warning("database unreachable; waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(next(delays))
