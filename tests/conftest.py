"""Fixtures shared by every test: a fresh PostgreSQL database per run, the real broker.

Each test run creates its own database (``relationd_test_<random>``), applies schema.sql, and
drops it at the end; tests never depend on data left by a person or another run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from daemon.migrate import apply_schema
from handlers.db import init_connection
from tests.domain import Domain

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("RELATIOND_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("RELATIOND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"relationd_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _dsn_for(name)
    conn = await asyncpg.connect(url)
    try:
        await apply_schema(conn)
    finally:
        await conn.close()
    yield url
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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
