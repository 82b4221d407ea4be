"""Event retention: the oldest events go, a gapless suffix of each model's log stays, nothing in
the outbox is deleted, one instance prunes at a time, commands never wait for it, and a replay
from before what is kept is told so (EventsExpired), never given a gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from daemon.retention import _LOCK, prune_batch
from daemon.settings import Settings
from handlers.db import init_connection
from tests.domain import CommandFailed, Domain
from tests.harness import create_database, drop_database

WEEK = 7 * 86400.0


@pytest.fixture(scope="module")
async def retention_db() -> AsyncIterator[Any]:
    """A database of this module's own: pruning works on the whole log, not on one model's."""
    url = await create_database("relationd_retention")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4, init=init_connection)
    yield pool
    await pool.close()
    await drop_database(url)


@pytest.fixture
async def own_pool(retention_db: Any) -> Any:
    """The module's database with an empty log: what earlier tests left is expired and pruned."""
    async with retention_db.acquire() as conn:
        last = await conn.fetchval("SELECT COALESCE(max(event_id), 0) FROM change_event")
    await _age(retention_db, last)
    await _prune(retention_db)
    return retention_db


async def _model_with_events(pool: Any) -> Domain:
    d = Domain(pool)
    await d.new_model()
    await d.deploy("mysql", units=2)
    await d.deploy("wordpress", units=1)
    db = await d.integrate("wordpress", "mysql")
    for unit in ("wordpress/0", "mysql/0"):
        await d.run({"type": "enter_scope", "relation": db["id"], "unit": unit})
    return d


async def _age(pool: Any, up_to_event_id: int, days: int = 8) -> None:
    """Make the first events of the log old, and published (out of the outbox)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE change_event SET created_at = now() - make_interval(days => $2) WHERE event_id <= $1",
            up_to_event_id,
            days,
        )
        await conn.execute("DELETE FROM outbox WHERE event_id <= $1", up_to_event_id)


async def _prune(pool: Any, batch: int = 1000) -> int:
    total = 0
    async with pool.acquire() as conn:
        while (deleted := await prune_batch(conn, WEEK, batch)) and deleted:
            total += deleted
    return total


async def _event_ids(pool: Any, d: Domain) -> list[int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id FROM change_event WHERE model_uuid = $1 ORDER BY seq", d.model_uuid
        )
    return [r["event_id"] for r in rows]


async def test_old_published_events_go_oldest_first_and_a_replay_before_them_is_refused(
    own_pool: Any,
) -> None:
    a = await _model_with_events(own_pool)
    b = await _model_with_events(own_pool)
    a_ids, b_ids = await _event_ids(own_pool, a), await _event_ids(own_pool, b)
    await _age(own_pool, a_ids[5])  # a's events up to seq 6 are old, none of b's
    assert await _prune(own_pool, batch=2) == 6
    kept = await a.events(6)
    assert [e["seq"] for e in kept] == list(range(7, len(a_ids) + 1))
    for after in (0, 5):
        with pytest.raises(CommandFailed) as info:
            await a.events(after)
        assert info.value.code == "EventsExpired"
        assert info.value.reply["error"]["details"]["oldest_kept_seq"] == 7
        assert "seq 7" in info.value.message and a.model in info.value.message
    assert len(await b.events(0)) == len(b_ids)  # b's events are young: all kept


async def test_an_event_still_in_the_outbox_and_all_after_it_are_kept(own_pool: Any) -> None:
    d = await _model_with_events(own_pool)
    ids = await _event_ids(own_pool, d)
    await _age(own_pool, ids[-1])
    async with own_pool.acquire() as conn:
        await conn.execute("INSERT INTO outbox (event_id) VALUES ($1)", ids[3])  # not yet published
    assert await _prune(own_pool) == 3
    assert next(e["seq"] for e in await d.events(3)) == 4
    async with own_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", ids[3]) == 1


async def test_a_quiet_model_whose_every_event_expired_is_up_to_date_at_its_last_seq(own_pool: Any) -> None:
    d = await _model_with_events(own_pool)
    ids = await _event_ids(own_pool, d)
    await _age(own_pool, ids[-1])
    assert await _prune(own_pool) == len(ids)
    assert await d.events(len(ids)) == []
    with pytest.raises(CommandFailed) as info:
        await d.events(len(ids) - 1)
    assert info.value.reply["error"]["details"]["oldest_kept_seq"] == len(ids) + 1
    await d.run({"type": "add_units", "application": "mysql"})
    assert next(e["seq"] for e in await d.events(len(ids))) == len(ids) + 1


async def test_one_instance_prunes_at_a_time(own_pool: Any) -> None:
    d = await _model_with_events(own_pool)
    ids = await _event_ids(own_pool, d)
    await _age(own_pool, ids[-1])
    async with own_pool.acquire() as holder, holder.transaction():
        assert await holder.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK)
        async with own_pool.acquire() as conn:
            assert await prune_batch(conn, WEEK, 1000) is None
    assert len(await _event_ids(own_pool, d)) == len(ids)


async def test_commands_go_on_while_a_prune_batch_is_open(own_pool: Any) -> None:
    d = await _model_with_events(own_pool)
    ids = await _event_ids(own_pool, d)
    await _age(own_pool, ids[-1])
    async with own_pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK)
        from daemon.retention import _PRUNE

        assert await conn.fetchval(_PRUNE, 1000, WEEK) == len(ids)
        # The batch holds its row locks until it commits; commands on the model do not wait.
        await asyncio.wait_for(d.run({"type": "add_units", "application": "mysql"}), 10)
        await asyncio.wait_for(d.run({"type": "set_leader", "unit": "mysql/1"}), 10)


def test_the_retention_setting_takes_durations_or_off() -> None:
    assert Settings(event_retention="12h").event_retention == timedelta(hours=12)
    assert Settings(event_retention="90").event_retention == timedelta(seconds=90)
    assert Settings(event_retention="off").event_retention is None
    assert Settings().event_retention == timedelta(days=7)
    for bad in ("0", "7 weeks", "-1d"):
        with pytest.raises(ValidationError) as info:
            Settings(event_retention=bad)
        assert "event_retention" in str(info.value)
