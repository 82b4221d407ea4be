"""The hot statements' cached plans stay index lookups when they were made while a table was small.

A pooled session plans each statement once (database.POOL_SESSION) and keeps that plan until the
table's next analyze; the relay's session keeps its plans too. A plan made early in a database's
life, then run while the table grows, must not scan the whole table: the end of every command
stores its reply in processed_command, and every relay read looks up change_event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from daemon import applier, outbox
from daemon.database import POOL_SESSION
from handlers import settings_bag
from tests.conftest import ADMIN_DSN
from tests.harness import create_database, drop_database


@pytest.fixture
async def young_database() -> AsyncIterator[str]:
    """A database of its own without autovacuum, so that no analyze runs unless the test asks."""
    url = await create_database("relationd_plans", ADMIN_DSN)
    conn = await asyncpg.connect(url)
    try:
        for table in ("processed_command", "change_event", "outbox"):
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    finally:
        await conn.close()
    yield url
    await drop_database(url, ADMIN_DSN)


async def kept_plan(conn: Any, sql: str, args: str, grow: str) -> str:
    """The plan a session keeps for ``sql``: planned (generically) and run now, then shown after
    ``grow`` has filled its tables."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    await conn.execute(f"PREPARE hot AS {sql}")
    await conn.execute(f"EXECUTE hot({args})")
    await conn.execute(grow)
    rows = await conn.fetch(f"EXPLAIN EXECUTE hot({args})")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("one_model", [True, False], ids=["one-model", "models"])
@pytest.mark.parametrize("one_reply", [True, False], ids=["one-reply", "replies"])
@pytest.mark.parametrize("bags", [None, settings_bag.EACH], ids=["no-bags", "bags"])
async def test_replies_are_stored_by_index_in_a_plan_made_while_the_table_was_small(
    young_database: str, one_model: bool, one_reply: bool, bags: str | None
) -> None:
    """The forms of the end of a command (applier._FINISH), without settings bags to store and
    with bags stored set-wise (here none: a bag needs its owner's row); the form storing one bag
    stores its reply as the form without bags does."""
    conn = await asyncpg.connect(young_database, server_settings=dict(POOL_SESSION))
    commands = (
        "INSERT INTO processed_command (command_id, command_type, body_sha256) "
        "SELECT 'c' || g, 'set_unit_settings', 'x' FROM generate_series({}, {}) g"
    )
    model = "gen_random_uuid()" if one_model else "ARRAY[gen_random_uuid()]"
    args = (
        f"{model}, '{{a}}', '{{b}}', '{{c}}', ARRAY['{{}}']::jsonb[], ARRAY['{{}}']::jsonb[], "
        "'{c7}', '{c7}', ARRAY['{}']::jsonb[]"
    )
    if bags is not None:
        args += ", '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'"
    try:
        await conn.execute(commands.format(1, 20))
        await conn.execute("ANALYZE processed_command")
        async with conn.transaction():
            plan = await kept_plan(
                conn, applier._FINISH[one_model, one_reply, bags], args, commands.format(21, 5000)
            )
    finally:
        await conn.close()
    assert "processed_command_pkey" in plan, plan
    assert "Seq Scan on processed_command" not in plan, plan


async def test_the_relays_read_looks_events_up_by_index_in_a_plan_made_while_the_log_was_small(
    young_database: str,
) -> None:
    conn = await asyncpg.connect(young_database, server_settings=dict(outbox.RELAY_SESSION))
    events = (
        "INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key) "
        "SELECT gen_random_uuid(), 1, 'relation', 'changed', 'm.relation', '{{}}' "
        "FROM generate_series(1, {})"
    )
    try:
        await conn.execute(events.format(10))
        await conn.execute("ANALYZE change_event")
        await conn.execute("INSERT INTO outbox SELECT event_id FROM change_event")
        plan = await kept_plan(conn, outbox._PENDING, "100, '{}'::bigint[]", events.format(5000))
    finally:
        await conn.close()
    assert "change_event_pkey" in plan, plan
    assert "Seq Scan on change_event" not in plan, plan
