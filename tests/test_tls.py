"""TLS to PostgreSQL and RabbitMQ, configured only through relationd's settings.

A throw-away CA signs a server certificate for ``localhost`` and ``127.0.0.1`` (the ``openssl``
CLI); a private PostgreSQL cluster (``ssl=on``) and a private RabbitMQ node (an ``amqps``
listener) serve it. The machine's shared services are not touched.

* PostgreSQL, ``RELATIOND_DATABASE_SSLMODE=verify-full`` + ``RELATIOND_DATABASE_CA_FILE``: the
  daemon migrates, becomes ready and answers a command, and the server's ``pg_stat_ssl`` shows
  every one of its connections encrypted. With another CA it never becomes ready, logs the
  certificate failure without the password, and still stops cleanly on SIGTERM.
* RabbitMQ, ``RELATIOND_AMQP_URL=amqps://…`` + ``RELATIOND_AMQP_CA_FILE``: ready, a command
  round-trips (the client verifies with the URL's ``cafile`` query parameter), and the node lists
  every connection as TLS. With another CA: 503 with ``broker_ok: false`` and the failure logged.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from client.rpc import BrokerUnreachable, RelationClient
from tests.harness import ROOT, DaemonProcess, free_port
from tests.private_services import PrivatePostgres, PrivateRabbitMQ
from tests.service_support import TestPKI, own_database, own_vhost, stop_daemon, wait_readyz

__all__ = ["own_database", "own_vhost"]

CERT_FAILURE = "certificate verify failed"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI.make(tmp_path_factory.mktemp("pki"))


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
async def tls_postgres(pki: TestPKI) -> AsyncIterator[PrivatePostgres]:
    """A private cluster with ssl=on (and plain connections still allowed) and the schema."""
    tls = pki.install_for(PrivatePostgres.user)
    pg = PrivatePostgres(
        options={
            "ssl": "on",
            "ssl_cert_file": str(tls / "server.pem"),
            "ssl_key_file": str(tls / "server.key"),
        }
    )
    try:
        pg.init()
        pg.url = await pg.create_database("relationd")  # type: ignore[attr-defined]
        yield pg
    finally:
        pg.destroy()
        shutil.rmtree(tls, ignore_errors=True)


def _with_password(url: str, password: str) -> str:
    # Trust authentication ignores it; it is there to show that it is never logged.
    return url.replace("postgres@", f"postgres:{quote(password, safe='')}@", 1)


async def _database_connections(pg: PrivatePostgres) -> list[asyncpg.Record]:
    """Every client backend of the relationd database, seen from an unencrypted admin session."""
    admin = await asyncpg.connect(pg.admin_url, ssl=False)
    try:
        rows: list[asyncpg.Record] = await admin.fetch(
            "SELECT a.pid, a.datname, s.ssl, s.version FROM pg_stat_activity a "
            "JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.backend_type = 'client backend' AND (a.datname = 'relationd' OR a.pid = pg_backend_pid())"
        )
        return rows
    finally:
        await admin.close()


async def test_database_verify_full_with_the_ca_file_is_encrypted_end_to_end(
    tls_postgres: PrivatePostgres, pki: TestPKI, own_vhost: str, tmp_path: Path
) -> None:
    pg, password = tls_postgres, f"dbpw-{uuid.uuid4().hex}"
    url = _with_password(pg.url, password)  # type: ignore[attr-defined]
    tls = {"database_sslmode": "verify-full", "database_ca_file": str(pki.ca)}

    migrated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "daemon", "migrate"],
        cwd=ROOT,
        env={**os.environ, "RELATIOND_DATABASE_URL": url}
        | {f"RELATIOND_{k.upper()}": v for k, v in tls.items()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    daemon = DaemonProcess(own_vhost, url, tmp_path, pool_size=3, **tls)
    try:
        daemon.start()
        await daemon.wait_ready()
        async with await RelationClient.connect(own_vhost, timeout=15) as client:
            model = await client.create_model(f"tls-{uuid.uuid4().hex[:8]}")
            assert model.name in [m.name for m in await client.list_models()]
        rows = await _database_connections(pg)
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()
    daemon_rows = [r for r in rows if r["datname"] == "relationd"]
    admin_rows = [r for r in rows if r["datname"] != "relationd"]
    assert daemon_rows, "the daemon holds no connection to its database"
    assert all(r["ssl"] for r in daemon_rows), [dict(r) for r in daemon_rows]
    assert all(r["version"].startswith("TLSv1.") for r in daemon_rows)
    # The check tells the two apart: the admin session above asked for no TLS and has none.
    assert [r["ssl"] for r in admin_rows] == [False]
    assert password not in daemon.log()


async def test_database_certificate_from_another_ca_is_refused_and_logged(
    tls_postgres: PrivatePostgres, pki: TestPKI, own_vhost: str, tmp_path: Path
) -> None:
    pg, password = tls_postgres, f"dbpw-{uuid.uuid4().hex}"
    url = _with_password(pg.url, password)  # type: ignore[attr-defined]
    daemon = DaemonProcess(
        own_vhost, url, tmp_path, database_sslmode="verify-full", database_ca_file=str(pki.other_ca)
    )
    try:
        daemon.start()
        deadline = time.monotonic() + 15
        failures: list[dict[str, Any]] = []
        while not failures and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            failures = [line for line in daemon.log_lines() if CERT_FAILURE in str(line.get("error", ""))]
        assert failures, f"no certificate failure logged:\n{daemon.log()}"
        assert failures[0]["level"] == "error"
        assert failures[0]["event"].startswith("database TLS failed (check RELATIOND_DATABASE_SSLMODE")
        with pytest.raises(TimeoutError):
            await daemon.wait_ready(timeout=2)
        assert daemon.proc is not None and daemon.proc.poll() is None  # still trying, not crashed
        rows = await _database_connections(pg)
        assert [r for r in rows if r["datname"] == "relationd"] == []
    finally:
        began = time.monotonic()
        code = await asyncio.to_thread(stop_daemon, daemon)
        stopped_in = time.monotonic() - began
    assert code == 0 and stopped_in < 10, (
        f"SIGTERM while waiting for the database: {code} in {stopped_in:.1f}s"
    )
    log = daemon.log()
    assert password not in log


# --- RabbitMQ ----------------------------------------------------------------------------------


class TLSRabbitMQ(PrivateRabbitMQ):
    tls_port: int
    tls_dir: Path


@pytest.fixture(scope="module")
def tls_rabbitmq(pki: TestPKI) -> Iterator[TLSRabbitMQ]:
    """A private node with an amqps listener on 127.0.0.1:tls_port (and the plain one)."""
    tls = pki.install_for(PrivateRabbitMQ.user)
    port = free_port()
    node = TLSRabbitMQ(
        extra_config=(
            f"listeners.ssl.default = 127.0.0.1:{port}\n"
            f"ssl_options.cacertfile = {tls / 'ca.pem'}\n"
            f"ssl_options.certfile = {tls / 'server.pem'}\n"
            f"ssl_options.keyfile = {tls / 'server.key'}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )
    )
    node.tls_port, node.tls_dir = port, tls
    try:
        node.start()
        yield node
    finally:
        node.destroy()
        shutil.rmtree(tls, ignore_errors=True)


def _amqps(node: TLSRabbitMQ, cafile: Path | None = None) -> str:
    url = f"amqps://guest:guest@localhost:{node.tls_port}/"
    return url if cafile is None else f"{url}?cafile={quote(str(cafile), safe='')}"


def _tls_connections(node: TLSRabbitMQ) -> list[tuple[str, str, str]]:
    out = node.ctl("list_connections", "user", "ssl", "ssl_protocol", "--quiet", "--no-table-headers")
    return [tuple(line.split("\t")) for line in out.strip().splitlines()]  # type: ignore[misc]


async def test_broker_amqps_with_the_ca_file_round_trips(
    tls_rabbitmq: TLSRabbitMQ, pki: TestPKI, own_database: str, tmp_path: Path
) -> None:
    node = tls_rabbitmq
    with pytest.raises(BrokerUnreachable, match=CERT_FAILURE):  # the client really verifies
        await RelationClient.connect(_amqps(node), timeout=10)

    daemon = DaemonProcess(_amqps(node), own_database, tmp_path, amqp_ca_file=str(pki.ca))
    try:
        daemon.start()
        await daemon.wait_ready()
        async with await RelationClient.connect(_amqps(node, pki.ca), timeout=15) as client:
            model = await client.create_model(f"amqps-{uuid.uuid4().hex[:8]}")
            assert model.name in [m.name for m in await client.list_models()]
            connections = await asyncio.to_thread(_tls_connections, node)
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()
    assert len(connections) >= 2, connections  # the daemon's and the client's
    assert all(ssl == "true" and protocol.startswith("tlsv1.") for _, ssl, protocol in connections), (
        connections
    )


async def test_broker_certificate_from_another_ca_is_refused_and_logged(
    tls_rabbitmq: TLSRabbitMQ, pki: TestPKI, own_database: str, tmp_path: Path
) -> None:
    daemon = DaemonProcess(_amqps(tls_rabbitmq), own_database, tmp_path, amqp_ca_file=str(pki.other_ca))
    try:
        daemon.start()
        readyz = await wait_readyz(daemon, 503, timeout=15)
        assert readyz["broker_ok"] is False and readyz["database_ok"] is True
        deadline = time.monotonic() + 10
        failures: list[dict[str, Any]] = []
        while not failures and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            failures = [line for line in daemon.log_lines() if CERT_FAILURE in str(line.get("error", ""))]
        assert failures, f"no certificate failure logged:\n{daemon.log()}"
        assert failures[0]["level"] == "error"
        assert failures[0]["event"].startswith(
            "broker TLS failed (check RELATIOND_AMQP_URL, RELATIOND_AMQP_CA_FILE"
        )
        assert (await wait_readyz(daemon, 503, timeout=1))["broker_ok"] is False
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()
    assert "guest:guest" not in daemon.log()
