"""The PostgreSQL pool: TLS from settings, codecs on every connection, reconnects counted.

A multi-host URL (``postgresql://user@h1:p1,h2:p2/db?target_session_attrs=read-write``) names a
primary and its standbys, of which the primary is whichever is read-write now. asyncpg tries such
hosts one after the other under one timeout, so a frozen (not dead) first host, which accepts the
TCP connection and then never answers, used up the whole timeout of every connect and the primary
behind it was never reached. relationd connects to every host at once instead and keeps the first
read-write session (connect_primary), for the pool and for the outbox relay's session alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg import connect_utils

from daemon import logs, metrics
from daemon.settings import Settings
from daemon.transient import backoff, is_tls_failure, is_transient
from handlers.db import init_connection

log = logs.get("relationd.database")

# target_session_attrs values that ask for the primary: the hosts are then tried at once.
_PRIMARY_ATTRS = {"read-write", "primary"}


class NoPrimary(ConnectionError):
    """No host of a multi-host URL answered as a primary (a failover in progress, or all down)."""


def host_urls(url: str) -> tuple[list[str], str | None]:
    """Each host of a multi-host URL as a URL of its own (target_session_attrs removed), and
    the target_session_attrs the URL asked for. A one-host URL comes back as it is."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    attrs = query.pop("target_session_attrs", None)
    if "," not in hosts:
        return [url], attrs
    return [
        urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}", query=urlencode(query)))
        for host in hosts.split(",")
    ], attrs


async def _is_primary(conn: Any, attrs: str) -> bool:
    """What libpq checks for ``target_session_attrs``: read-write, or (primary) not in recovery."""
    settings = conn.get_settings()
    if attrs == "read-write" and getattr(settings, "default_transaction_read_only", "off") == "on":
        return False
    in_hot_standby = getattr(settings, "in_hot_standby", None)  # reported by PostgreSQL 14+
    if in_hot_standby is not None:
        return bool(in_hot_standby != "on")
    return not await conn.fetchval("SELECT pg_catalog.pg_is_in_recovery()")


async def _probe(url: str, attrs: str, timeout: float, kwargs: dict[str, Any]) -> Any:
    """A session on ``url`` when it is a primary, else None (the session closed)."""
    conn = await asyncpg.connect(url, timeout=timeout, **kwargs)
    try:
        if await asyncio.wait_for(_is_primary(conn, attrs), timeout):
            return conn
    except BaseException:
        conn.terminate()
        raise
    conn.terminate()
    return None


# Cancel requests sent in the background by sessions that ended at a statement timeout.
_CANCELS: set[asyncio.Task[None]] = set()


async def _send_cancel(addr: Any, params: Any, pid: int, secret: Any, timeout: float) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            connect_utils._cancel(
                loop=asyncio.get_running_loop(),
                addr=addr,
                params=params,
                backend_pid=pid,
                backend_secret=secret,
            ),
            timeout,
        )


class Session(asyncpg.Connection):  # type: ignore[misc]
    """A connection that ends itself when a statement times out.

    asyncpg cancels a statement that timed out and keeps the session: its next statement, the
    transaction's ROLLBACK, first waits for the server to answer the cancel, up to a second
    timeout, which a frozen server never does (a command stuck on a frozen primary took twice the
    command timeout to be retried). The cancel is still sent, in the background, so that a slow
    but healthy server stops the statement; the session is ended at once, so the ROLLBACK fails
    at once (the transaction ends with the session) and the command is retried on a new one.
    """

    def _cancel_current_command(self, waiter: Any, cancel_waiter: Any = None) -> None:
        protocol = self._protocol
        timeout = self._config.command_timeout or 10.0
        task = asyncio.get_running_loop().create_task(
            _send_cancel(self._addr, self._params, protocol.backend_pid, protocol.backend_secret, timeout),
            name=f"cancel statement of backend {protocol.backend_pid}",
        )
        _CANCELS.add(task)
        task.add_done_callback(_CANCELS.discard)
        if not waiter.done():
            waiter.set_result(None)
        # After the caller has been given its TimeoutError (asyncpg sets it right after this).
        asyncio.get_running_loop().call_soon(self.terminate)


# While no host is the primary (a failover under way), how often connect_primary asks them again.
_NO_PRIMARY_POLL = 0.5


async def connect_primary(url: str, *, connect_timeout: float = 5.0, **kwargs: Any) -> Any:
    """A session on the primary of ``url``: every host tried at once, each within
    ``connect_timeout``, the first read-write one kept (ties go to the earlier host). While none
    is, they are asked again every half second until ``connect_timeout`` has passed: a standby
    being promoted is found as soon as it is, not after the caller's backoff.

    A one-host URL, or one that does not ask for the primary, goes to asyncpg as it is.
    NoPrimary (a ConnectionError, so transient) names what each host did when none would do.
    """
    kwargs.pop("loop", None)
    kwargs.setdefault("connection_class", Session)
    urls, attrs = host_urls(url)
    if len(urls) == 1 or attrs not in _PRIMARY_ATTRS:
        return await asyncpg.connect(url, timeout=connect_timeout, **kwargs)
    assert attrs is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout
    while True:
        try:
            return await _race(urls, attrs, max(0.1, deadline - loop.time()), kwargs)
        except NoPrimary:
            if loop.time() + _NO_PRIMARY_POLL >= deadline:
                raise
        await asyncio.sleep(_NO_PRIMARY_POLL)


async def _race(urls: list[str], attrs: str, timeout: float, kwargs: dict[str, Any]) -> Any:
    """One round of connect_primary: every host at once, the first primary kept."""
    tasks = [
        asyncio.create_task(_probe(u, attrs, timeout, kwargs), name=f"probe database host {i}")
        for i, u in enumerate(urls)
    ]
    chosen: Any = None
    try:
        pending = set(tasks)
        while pending and chosen is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task in done and not task.exception() and task.result() is not None:
                    chosen = task.result()
                    break
    finally:
        for task in tasks:
            if task.cancel() or task.cancelled() or task.exception() is not None:
                continue
            if task.result() is not None and task.result() is not chosen:
                task.result().terminate()
    if chosen is not None:
        return chosen
    seen = []
    for u, task in zip(urls, tasks, strict=True):
        host = urlsplit(u).netloc.rpartition("@")[2]
        exc = task.exception()
        seen.append(f"{host} ({'not ' + attrs if exc is None else str(exc) or type(exc).__name__})")
    raise NoPrimary(f"no host is {attrs}: " + ", ".join(seen))


# A commit that waits for the synchronous standby: once it returns, every commit this session saw
# is on the standby too. A COMMIT cancelled, or whose backend was terminated, while it waited for
# the standby is visible on the primary alone ("committed locally"), and would be lost with it.
# The commit waits only if the transaction wrote WAL (an xid alone does not): a transactional
# logical message is the smallest such write, needs no table and no privilege, and is allowed at
# any wal_level. Without a standby it costs a WAL flush.
_FENCE = (
    "BEGIN; SET LOCAL synchronous_commit = on; "
    "SELECT pg_logical_emit_message(true, 'relationd-fence', ''); COMMIT"
)


async def fence(conn: Any) -> None:
    """Return once every commit ``conn`` can see is on the synchronous standby (see _FENCE)."""
    await conn.execute(_FENCE)


# Whether commits on this server wait for a synchronous standby: only then can a commit be visible
# on the primary alone, and only then is a fence needed. A column a query that reads commits can
# carry, so that knowing costs no round trip. Without a synchronous standby every commit is
# flushed before it is visible (synchronous_commit is on for commands), and a server that runs
# without one (pg_auto_failover's wait_primary, a single node) holds every commit alone anyway.
SYNCHRONOUS_STANDBY = "current_setting('synchronous_standby_names') <> ''"

# The pool's sessions plan each statement once. In PostgreSQL's default mode a prepared
# statement whose generic plan the planner costs above its custom plans is planned again on every
# execution: for the end of a command (one statement that numbers and writes the events, the
# outbox rows and the replies) that was 0.5 ms of a 1.3 ms call. Every hot query's generic plan is
# checked for sequential scans at scale by bench/scale.py. A plan is kept until its tables' next
# analyze, so one made while a table was small (an analyze of a few dozen rows, in a young
# database) would go on scanning it as it grows: every statement on the pool finds its rows by an
# index, and enable_seqscan off keeps it to those (tests/test_generic_plans.py).
POOL_SESSION = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


def broken_protocol(exc: BaseException) -> bool:
    """asyncpg's "cannot switch to state N; another operation (2) is in progress": the session
    received an error outside any query and is unusable. A backend whose postmaster died says
    FATAL to its idle client before closing; asyncpg 0.32 takes that for a protocol error, and
    a query sent before the close arrives fails so. The session is lost; a retry on another is safe."""
    return isinstance(exc, asyncpg.exceptions.InternalClientError) and str(exc).startswith(
        "cannot switch to state"
    )


def lost_session(exc: BaseException) -> bool:
    """True when ``exc`` means the session's server is gone, frozen (a statement timed out) or no
    longer the primary (a read-only error after a failover): such a session is ended, not reused."""
    if broken_protocol(exc):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(("08", "57P")) or state == "25006"
    return isinstance(exc, (asyncpg.InterfaceError, OSError, TimeoutError))


def drop_if_lost(conn: Any, exc: BaseException) -> None:
    """End ``conn`` (a pool's connection: the pool makes a new one) when ``exc`` lost its session."""
    if lost_session(exc):
        _end(conn)


def _end(conn: Any) -> None:
    try:
        if conn.is_closed():
            return
    except asyncpg.InterfaceError:
        return  # asyncpg closed it already and took it back from the pool's proxy
    conn.terminate()


@asynccontextmanager
async def session(pool: Any) -> AsyncIterator[Any]:
    """A connection of ``pool`` that is ended rather than given back when a statement on it lost
    its session: given back, the next command would find the demoted or frozen server again."""
    async with pool.acquire() as conn:
        try:
            yield conn
        except asyncio.CancelledError:
            # Cancelled mid-statement (a timeout around it, a stop): the server may still be at
            # it, or frozen; a new session costs less than finding out.
            _end(conn)
            raise
        except Exception as exc:
            drop_if_lost(conn, exc)
            raise


def dsn(settings: Settings) -> str:
    """The database URL with sslmode / sslrootcert from settings added to its query."""
    url = urlsplit(settings.database_url.get_secret_value())
    query = dict(parse_qsl(url.query))
    if settings.database_sslmode:
        query["sslmode"] = settings.database_sslmode
    if settings.database_ca_file:
        query["sslrootcert"] = settings.database_ca_file
    return urlunsplit(url._replace(query=urlencode(query)))


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
    conn = await connect_primary(
        dsn(settings),
        connect_timeout=settings.database_connect_timeout_seconds,
        server_settings=server_settings,
        command_timeout=settings.database_command_timeout_seconds,
    )
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
                connect=partial(connect_primary, connect_timeout=settings.database_connect_timeout_seconds),
                connection_class=Session,
                server_settings=POOL_SESSION,
                command_timeout=settings.database_command_timeout_seconds,
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
