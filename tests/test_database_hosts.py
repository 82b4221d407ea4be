"""Multi-host database URLs (daemon/database.py): the primary is found whichever host answers
first, a frozen host does not hold a connect up, and a session on a demoted primary is ended.

A private PostgreSQL cluster with ``default_transaction_read_only`` stands in for a standby (it
refuses writes as a standby does) and the shared server for the primary; a frozen host is the
private cluster's postmaster stopped with SIGSTOP, which still accepts TCP connections (the
kernel does) and never answers them. The shared server is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from daemon import database
from daemon.settings import Settings
from daemon.transient import is_transient
from tests.conftest import ADMIN_DSN
from tests.harness import RELATIOND, create_database, drop_database
from tests.private_services import PrivatePostgres, free_port

SHARED = urlsplit(ADMIN_DSN)
PRIMARY = f"{SHARED.hostname or '127.0.0.1'}:{SHARED.port or 5432}"


def _url(*hosts: str) -> str:
    return f"postgresql://{SHARED.netloc.rpartition('@')[0]}@{','.join(hosts)}/postgres?target_session_attrs=read-write"


def _postmaster(pg: PrivatePostgres) -> int:
    return int((pg.data / "postmaster.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def standby_cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(options={"default_transaction_read_only": "on"})
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def standby(standby_cluster: PrivatePostgres) -> Iterator[str]:
    """The read-only host (host:port), thawed after the test."""
    yield f"127.0.0.1:{standby_cluster.port}"
    try:
        os.kill(_postmaster(standby_cluster), signal.SIGCONT)
    except OSError:
        pass


def _freeze(pg: PrivatePostgres) -> None:
    os.kill(_postmaster(pg), signal.SIGSTOP)


async def _port(conn: asyncpg.Connection) -> str:
    return f"{SHARED.hostname or '127.0.0.1'}:{await conn.fetchval('SHOW port')}"


async def test_a_frozen_first_host_does_not_hold_up_the_connect(
    standby_cluster: PrivatePostgres, standby: str
) -> None:
    _freeze(standby_cluster)
    url = _url(standby, PRIMARY)
    # asyncpg alone tries the hosts in order under one timeout: the frozen one uses it all up.
    with pytest.raises(TimeoutError):
        await asyncpg.connect(url, timeout=2)
    conn = await database.connect_primary(url, connect_timeout=2)
    try:
        assert await _port(conn) == PRIMARY
    finally:
        await conn.close()


async def test_the_read_write_host_is_chosen_wherever_it_is_listed(standby: str) -> None:
    for url in (_url(standby, PRIMARY), _url(PRIMARY, standby)):
        conn = await database.connect_primary(url, connect_timeout=5)
        try:
            assert await _port(conn) == PRIMARY
            assert await conn.fetchval("SHOW transaction_read_only") == "off"
        finally:
            await conn.close()


async def test_no_read_write_host_is_a_transient_error_naming_each_host(standby: str) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(database.NoPrimary) as caught:
        await database.connect_primary(_url(standby, nobody), connect_timeout=2)
    message = str(caught.value)
    assert f"{standby} (not read-write)" in message
    assert f"{nobody} (" in message
    assert is_transient(caught.value)


async def test_a_write_on_a_read_only_server_is_transient_and_ends_the_pool_session(standby: str) -> None:
    """The pool's session on a server that became read-only is ended, not given back: the retry
    gets a new session (on the primary, with a multi-host URL)."""
    settings = Settings(database_url=f"postgresql://postgres@{standby}/postgres", pool_size=1)  # type: ignore[arg-type]
    pool = await database.create_pool(settings, wait=10)
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError) as caught:
            async with database.session(pool) as conn:
                first = conn.get_server_pid()
                await conn.execute("CREATE TABLE t (x int)")
        assert is_transient(caught.value)
        async with database.session(pool) as conn:  # the pool's one connection, made anew
            assert conn.get_server_pid() != first
    finally:
        await pool.close()


async def test_a_statement_cancelled_by_a_timeout_ends_the_pool_session() -> None:
    """A statement cancelled mid-flight (the readiness probe's timeout, a stop) may still run, or
    hang on a frozen server: its session is ended, not given back, and the next use gets a new one."""
    settings = Settings(database_url=ADMIN_DSN, pool_size=1)  # type: ignore[arg-type]
    pool = await database.create_pool(settings, wait=10)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async with database.session(pool) as conn:
                    first = conn.get_server_pid()
                    await conn.execute("SELECT pg_sleep(5)")
        async with database.session(pool) as conn:  # the pool's one connection, made anew
            assert conn.get_server_pid() != first
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_the_pool_connects_to_the_primary_past_a_frozen_host(
    standby_cluster: PrivatePostgres, standby: str
) -> None:
    _freeze(standby_cluster)
    settings = Settings(
        database_url=_url(standby, PRIMARY),  # type: ignore[arg-type]
        database_connect_timeout_seconds=2,
        pool_size=2,
    )
    pool = await asyncio.wait_for(database.create_pool(settings, wait=10), 20)
    try:
        async with database.session(pool) as conn:
            assert await _port(conn) == PRIMARY
            await conn.execute("CREATE TEMPORARY TABLE t (x int)")
    finally:
        await pool.close()


async def test_a_session_told_fatal_while_idle_is_ended_and_the_command_retried() -> None:
    """A backend whose postmaster dies says FATAL to its idle client, then closes. asyncpg takes the
    unsolicited error for a protocol error, and a query sent before the close is seen fails with
    InternalClientError ("cannot switch to state ...") instead of a connection error: seen as an
    Internal reply during a primary kill. It must be transient and end the session.

    Reproduced by holding the client's reading while the backend is terminated, then letting the
    event loop read the FATAL (one iteration) but not yet the end of the connection."""
    settings = Settings(database_url=ADMIN_DSN, pool_size=1)  # type: ignore[arg-type]
    pool = await database.create_pool(settings, wait=10)
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        with pytest.raises(asyncpg.exceptions.InternalClientError) as caught:
            async with database.session(pool) as conn:
                pid = conn.get_server_pid()
                transport = conn._con._transport
                transport.pause_reading()
                await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                await asyncio.sleep(0.5)  # the FATAL and the close wait in the socket
                transport.resume_reading()
                await asyncio.sleep(0)  # the read of the FATAL is scheduled
                await asyncio.sleep(0)  # ... and done; the close is read next
                await conn.execute("SELECT 1")
        assert is_transient(caught.value), caught.value
        assert database.lost_session(caught.value)
        async with database.session(pool) as conn:  # a new session, not the broken one
            assert conn.get_server_pid() != pid
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await admin.close()
        await pool.close()


async def test_migrate_reaches_the_primary_past_a_frozen_host(
    standby_cluster: PrivatePostgres, standby: str
) -> None:
    """`relationd migrate` finds the primary as the daemon does (asyncpg alone waited 60 s)."""
    url = await create_database("relationd_hosts")
    try:
        database_name = urlsplit(url).path.lstrip("/")
        _freeze(standby_cluster)
        env = {
            **os.environ,
            "RELATIOND_DATABASE_URL": _url(standby, PRIMARY).replace("/postgres?", f"/{database_name}?"),
            "RELATIOND_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [*RELATIOND, "migrate", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["schema_version"] >= 1
    finally:
        await drop_database(url)


def _freeze_all(pg: PrivatePostgres) -> list[int]:
    """SIGSTOP the postmaster and its children (each backend is in a session of its own)."""
    pm = _postmaster(pg)
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pm:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    for pid in [pm, *children]:
        os.kill(pid, signal.SIGSTOP)
    return children


async def test_a_statement_timeout_ends_the_session_so_the_rollback_does_not_wait_again(
    standby_cluster: PrivatePostgres, standby: str
) -> None:
    """asyncpg kept a session whose statement timed out and made its next statement, the
    transaction's ROLLBACK, wait for the cancel to be answered: on a frozen server a second
    timeout before the command could be retried elsewhere. The session now ends at the timeout."""
    conn = await database.connect_primary(f"postgresql://postgres@{standby}/postgres", command_timeout=1)
    children: list[int] = []
    try:
        with pytest.raises(asyncpg.InterfaceError) as caught:
            async with conn.transaction():
                await conn.fetchval("SELECT 1")
                children = _freeze_all(standby_cluster)
                await conn.fetchval("SELECT 2")
        assert isinstance(caught.value.__context__, TimeoutError)  # the timeout, then no ROLLBACK
        assert conn.is_closed()
        assert is_transient(caught.value) and database.lost_session(caught.value)
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        conn.terminate()
