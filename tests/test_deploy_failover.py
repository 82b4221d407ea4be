"""deploy/postgres/setup builds a pg_auto_failover set (monitor, primary, standby) with the fast
timers, and its role and database set-up reaches the primary through a multi-host admin URL.

Slow (~40 s): everything on free ports in a temporary directory as the ``postgres`` user, through
the private set's process handling (tests/private_pg_failover.py), stopped by pid at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import database
from daemon.migrate import apply_schema
from tests.private_pg_failover import MONITOR_TIMERS, PgAutoFailoverSet, available

SETUP = Path(__file__).resolve().parent.parent / "deploy" / "postgres" / "setup"


@pytest.fixture
def empty_set() -> Iterator[PgAutoFailoverSet]:
    if not available():
        pytest.fail("pg_auto_failover is not installed: run scripts/ensure-services")
    pgaf = PgAutoFailoverSet()
    try:
        yield pgaf
    finally:
        pgaf.destroy()


def setup(pgaf: PgAutoFailoverSet, *args: str) -> str:
    done = subprocess.run(
        [str(SETUP), *args],
        env={**os.environ, **pgaf._env()},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=pgaf.dir,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
async def test_setup_builds_the_monitor_and_both_nodes_then_the_role_on_the_primary(
    empty_set: PgAutoFailoverSet,
) -> None:
    pgaf = empty_set
    local = ["--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--fast-failover"]
    m = pgaf.monitor
    out = setup(pgaf, "monitor", "--pgdata", str(m.pgdata), "--port", str(m.port), *local)
    assert "pg_autoctl -q show systemd" in out
    pgaf._run(m)
    pgaf._wait("monitor up", lambda: pgaf.psql(m.port, "SELECT 1", "pg_auto_failover") == "1", 60)
    for name, value in MONITOR_TIMERS.items():
        setting = f"SELECT setting FROM pg_settings WHERE name = '{name}'"
        assert pgaf.psql(m.port, setting, "pg_auto_failover") == value, name
    for node in pgaf.nodes.values():
        setup(
            pgaf, "node", "--pgdata", str(node.pgdata), "--port", str(node.port), "--name", node.name,
            "--monitor", pgaf.monitor_url, "--listen", "127.0.0.1", *local,
        )  # fmt: skip
        pgaf._run(node)
        if node.name == "node1":
            pgaf.wait_states({"node1": "single"}, 90)
    pgaf.wait_states({"node1": "primary", "node2": "secondary"}, 120)
    keeper = pgaf._autoctl("config", "get", "--pgdata", str(pgaf.nodes["node2"].pgdata))
    assert "network_partition_timeout = 2" in keeper

    # Standby listed first: the role and database still go to the primary, in both halves.
    hosts = f"127.0.0.1:{pgaf.nodes['node2'].port},127.0.0.1:{pgaf.nodes['node1'].port}"
    admin = f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"
    out = setup(pgaf, "--no-password", "--role", "relationd", "--database", "relationd", "--admin-dsn", admin)
    assert "role relationd and database relationd ready" in out
    conn = await database.connect_primary(
        f"postgresql://relationd@{hosts}/relationd?target_session_attrs=read-write", connect_timeout=5
    )
    try:
        assert await conn.fetchval("SELECT current_user") == "relationd"
        assert int(await conn.fetchval("SHOW port")) == pgaf.nodes["node1"].port
        await apply_schema(conn)  # the role can migrate
        assert await conn.fetchval("SELECT max(version) FROM schema_version") is not None
    finally:
        await conn.close()
