"""Fixtures shared by every test: a fresh PostgreSQL database per run, the real broker.

Each test run creates its own database (``relationd_test_<random>``), applies schema.sql, and
drops it at the end; tests never depend on data left by a person or another run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from handlers.db import init_connection
from tests.declared_errors import recording
from tests.domain import Domain

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("RELATIOND_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("RELATIOND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session", autouse=True)
def raised_codes_are_declared() -> Iterator[None]:
    """Every error code a handler raises in this run (in-process: the domain suites) is among
    those its command declares (contracts.commands.declare); checked when the session ends."""
    with recording() as undeclared:
        yield
    assert not undeclared, f"handlers raised codes their commands do not declare: {undeclared}"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    from tests.harness import create_database, drop_database

    url = await create_database("relationd_test", ADMIN_DSN)
    yield url
    await drop_database(url, ADMIN_DSN)


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[Any]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=8, init=init_connection)
    yield p
    await p.close()


@pytest.fixture
async def domain(pool: Any) -> Domain:
    """A fresh model per test, and commands applied through the daemon's own applier."""
    d = Domain(pool)
    await d.new_model()
    return d


@pytest.fixture(scope="session")
async def amqp_url() -> AsyncIterator[str]:
    """A private vhost on the real broker for this test run."""
    from tests.harness import create_vhost, delete_vhost, vhost_url

    vhost = f"relationd-test-{uuid.uuid4().hex[:10]}"
    create_vhost(vhost)
    yield vhost_url(AMQP_URL, vhost)
    delete_vhost(vhost)


@pytest.fixture(scope="session")
async def daemon(amqp_url: str, database_url: str, tmp_path_factory: Any) -> AsyncIterator[Any]:
    """One relationd subprocess shared by the protocol tests."""
    from tests.harness import DaemonProcess

    d = DaemonProcess(amqp_url, database_url, tmp_path_factory.mktemp("daemon"))
    d.start()
    await d.wait_ready()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.terminate()


@pytest.fixture
async def client(daemon: Any, amqp_url: str) -> AsyncIterator[Any]:
    from client.rpc import RelationClient

    c = await RelationClient.connect(amqp_url, timeout=15)
    yield c
    await c.close()
