"""Helpers for the production-service tests (readiness, TLS, restricted broker users).

* ``own_vhost`` / ``own_database``: a vhost on the shared broker and a database (with the schema)
  on the shared server that only the test's own daemon uses, removed afterwards. A daemon must not
  share a database with another daemon on another broker: one outbox relay publishes every
  instance's events, to its own broker only.
* ``wait_readyz``: poll ``/readyz`` until it answers the wanted status, bounded.
* ``TestPKI``: a throw-away CA and a server certificate for ``localhost`` / ``127.0.0.1`` made
  with the ``openssl`` CLI, plus an unrelated CA that must not verify it.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AMQP_URL
from tests.harness import (
    DaemonProcess,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    vhost_url,
)


@pytest.fixture
async def own_vhost() -> AsyncIterator[str]:
    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    url = await create_database("relationd_svc")
    yield url
    await drop_database(url)


async def wait_readyz(daemon: DaemonProcess, status: int, timeout: float) -> dict[str, Any]:
    """Poll /readyz until it answers ``status``; its JSON body. TimeoutError with the last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            code, body = await asyncio.to_thread(daemon.http, "/readyz")
            last = (code, body)
            if code == status:
                return dict(json.loads(body))
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"/readyz did not answer {status} in {timeout}s; last: {last}\n{daemon.log()}")
        await asyncio.sleep(0.1)


def stop_daemon(daemon: DaemonProcess) -> int | None:
    """SIGTERM and wait (its exit code); kill it if it does not stop. None when it never ran."""
    if daemon.proc is None:
        return None
    if daemon.proc.poll() is not None:
        return daemon.proc.returncode
    try:
        return daemon.terminate(30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        return None


class TestPKI:
    """``ca.pem`` signs ``server.pem`` (key ``server.key``; SAN DNS:localhost, IP:127.0.0.1);
    ``other-ca.pem`` is a CA that signed nothing here."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = directory / "ca.pem"
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"
        self.other_ca = directory / "other-ca.pem"

    @classmethod
    def make(cls, directory: Path) -> TestPKI:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("the openssl CLI is missing (apt-get install openssl)")
        pki = cls(directory)

        def run(*args: str) -> None:
            done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"openssl {' '.join(args)}:\n{done.stderr}"

        for name in ("ca", "other-ca"):
            run(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=relationd test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            )  # fmt: skip
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
        (directory / "server.ext").write_text(
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
        )
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "server.ext", "-out", "server.pem")  # fmt: skip
        return pki

    def install_for(self, user: str) -> Path:
        """Copies of the server's certificate, key and CA that ``user`` (a service) may read, in a
        new directory it owns (the key mode 0600, as PostgreSQL demands)."""
        target = Path(tempfile.mkdtemp(prefix=f"relationd-tls-{user}-", dir="/tmp"))
        for path in (self.ca, self.cert, self.key):
            shutil.copyfile(path, target / path.name)
        (target / self.key.name).chmod(0o600)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            for path in [target, *target.iterdir()]:
                os.chown(path, pw.pw_uid, pw.pw_gid)
        target.chmod(0o755)
        return target
