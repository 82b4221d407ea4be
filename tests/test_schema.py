"""schema.sql: idempotent to apply, and its constraints refuse impossible states on their own.

The constraint tests write SQL directly, bypassing the handlers, on rows the handlers created; each
runs in a transaction that fails (at the statement or at commit) and so leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.charm import Role, Scope
from contracts.commands import AccessLevel, RelationStatus
from daemon.migrate import SCHEMA_VERSION, apply_schema, migrations, schema_path, schema_version
from handlers.db import init_connection
from handlers.values import LOOKUP_TABLES, AccessLevelId, Life, RelationStatusId, RoleId, ScopeId
from tests.domain import Domain

ADMIN_DSN = os.environ.get("RELATIOND_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, column_name""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgdeferrable, tginitdeferred
        FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        ORDER BY 1""",
    "views": """
        SELECT viewname, md5(definition) FROM pg_views WHERE schemaname = 'public' ORDER BY 1""",
    "life": "SELECT id, value FROM life ORDER BY id",
    "status_types": "SELECT id, name FROM relation_status_type ORDER BY id",
    "roles": "SELECT id, name FROM charm_relation_role ORDER BY id",
    "scopes": "SELECT id, name FROM charm_relation_scope ORDER BY id",
    "access_levels": "SELECT id, name FROM access_level ORDER BY id",
    "versions": "SELECT version, applied_at FROM schema_version ORDER BY version",
    "models": "SELECT uuid::text, name FROM model ORDER BY name",
    "relation_sequences": "SELECT model_uuid::text, value FROM relation_sequence ORDER BY 1",
}


def _dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def scratch_url() -> AsyncIterator[str]:
    """An empty database of its own, dropped afterwards."""
    name = f"relationd_schema_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _dsn_for(name)
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _catalog(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in _CATALOG.items()}


def _pg_dump_schema(url: str) -> str:
    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, "pg_dump is needed to compare schema dumps"
    out = subprocess.run(
        [pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Recent pg_dump brackets its output with a random \restrict key; it is not schema.
    return "\n".join(
        line for line in out.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


async def test_schema_applied_twice_is_idempotent(scratch_url: str) -> None:
    conn = await asyncpg.connect(scratch_url)
    try:
        version = await apply_schema(conn)
        await conn.execute("INSERT INTO model (uuid, name) VALUES (gen_random_uuid(), 'kept')")
        await conn.execute(
            "INSERT INTO relation_sequence (model_uuid, value) SELECT uuid, 7 FROM model WHERE name = 'kept'"
        )
        first_dump = _pg_dump_schema(scratch_url)
        first_catalog = await _catalog(conn)

        assert await apply_schema(conn) == version

        second_dump = _pg_dump_schema(scratch_url)
        second_catalog = await _catalog(conn)
    finally:
        await conn.close()
    assert second_dump == first_dump
    assert second_catalog == first_catalog
    assert first_catalog["models"][0][1] == "kept"
    assert first_catalog["relation_sequences"][0][1] == 7
    assert "CREATE TABLE public.relation_endpoint" in first_dump


HISTORY = Path(__file__).parent / "schema_history"
_STRUCTURE = ("columns", "constraints", "indexes", "triggers", "functions", "views")
_LOOKUPS = ("life", "status_types", "roles", "scopes", "access_levels")


@asynccontextmanager
async def _scratch_database() -> AsyncIterator[str]:
    name = f"relationd_schema_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _dsn_for(name)
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _fresh_structure() -> dict[str, list[tuple[Any, ...]]]:
    async with _scratch_database() as url:
        conn = await asyncpg.connect(url)
        try:
            assert await apply_schema(conn) == SCHEMA_VERSION
            catalog = await _catalog(conn)
        finally:
            await conn.close()
    return {k: catalog[k] for k in (*_STRUCTURE, *_LOOKUPS)}


async def _seed(conn: Any) -> dict[str, Any]:
    """Rows every earlier version can hold: a model, its relation sequence, six events (every
    other one published where the version marked that in change_event) and a processed command."""
    model = str(uuid.uuid4())
    await conn.execute("INSERT INTO model (uuid, name) VALUES ($1, 'kept')", model)
    await conn.execute("INSERT INTO relation_sequence (model_uuid, value) VALUES ($1, 7)", model)
    marks_published = await conn.fetchval(
        "SELECT count(*) = 1 FROM information_schema.columns "
        "WHERE table_name = 'change_event' AND column_name = 'published_at'"
    )
    has_outbox = await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL")
    pending: set[int] = set()
    for seq in range(1, 7):
        event_id = await conn.fetchval(
            "INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key) "
            "VALUES ($1, $2, 'model', 'created', 'r', '{}'::jsonb) RETURNING event_id",
            model,
            seq,
        )
        if seq % 2:
            pending.add(event_id)
            if has_outbox:
                await conn.execute("INSERT INTO outbox (event_id) VALUES ($1)", event_id)
        elif marks_published:
            await conn.execute("UPDATE change_event SET published_at = now() WHERE event_id = $1", event_id)
    await conn.execute(
        """INSERT INTO processed_command (command_id, command_type, body_sha256, reply)
           VALUES ('old', 'add_units', 'x', '{"ok": true}'::jsonb)"""
    )
    return {"model": model, "pending": pending}


@pytest.mark.parametrize(
    ("frozen", "version"),
    [("version_1.sql", 1), ("version_2_first.sql", 2), ("version_2.sql", 2), ("version_3.sql", 3)],
)
async def test_every_earlier_version_migrates_to_the_current_schema(
    scratch_url: str, frozen: str, version: int
) -> None:
    """A database built by an earlier release's schema.sql (frozen under tests/schema_history),
    holding rows, migrates to exactly what schema.sql creates fresh, and keeps its rows: events,
    the pending ones now in the outbox, the model and its sequence, stored replies with no sender."""
    conn = await asyncpg.connect(scratch_url)
    try:
        await conn.execute((HISTORY / frozen).read_text())
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == version
        seeded = await _seed(conn)

        assert await apply_schema(conn) == SCHEMA_VERSION
        catalog = await _catalog(conn)
        versions = [r[0] for r in catalog["versions"]]
        events = await conn.fetchval("SELECT count(*) FROM change_event")
        outbox = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM outbox")}
        old = await conn.fetchrow(
            "SELECT sender, reply = '{\"ok\": true}'::jsonb AS kept FROM processed_command WHERE command_id = 'old'"
        )
    finally:
        await conn.close()
    fresh = await _fresh_structure()
    for part in (*_STRUCTURE, *_LOOKUPS):
        assert catalog[part] == fresh[part], part
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert catalog["models"] == [(seeded["model"], "kept")]
    assert catalog["relation_sequences"] == [(seeded["model"], 7)]
    assert events == 6
    assert outbox == seeded["pending"] and len(outbox) == 3
    assert old["sender"] is None and old["kept"]


async def test_a_fresh_database_is_stamped_at_the_current_version(scratch_url: str) -> None:
    conn = await asyncpg.connect(scratch_url)
    try:
        assert await schema_version(conn) is None
        await apply_schema(conn)
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_version")]
    finally:
        await conn.close()
    assert versions == [SCHEMA_VERSION]


def test_migrations_run_gapless_up_to_the_schema_version(tmp_path: Path) -> None:
    """Each migration file is one version, numbered in order; a stray or missing one is refused
    before anything is applied."""
    assert [m.version for m in migrations()] == list(range(2, SCHEMA_VERSION + 1))
    shutil.copy(schema_path(), tmp_path / "schema.sql")
    shutil.copytree(schema_path().parent / "migrations", tmp_path / "migrations")
    assert [m.path.name for m in migrations(tmp_path / "schema.sql")] == [m.path.name for m in migrations()]
    (tmp_path / "migrations" / f"{SCHEMA_VERSION + 2:04d}_later.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="gapless"):
        migrations(tmp_path / "schema.sql")
    (tmp_path / "migrations" / f"{SCHEMA_VERSION + 2:04d}_later.sql").unlink()
    (tmp_path / "migrations" / "0003_outbox.sql").unlink()
    with pytest.raises(ValueError, match="gapless"):
        migrations(tmp_path / "schema.sql")


async def test_the_named_values_are_the_lookup_tables_rows(scratch_url: str) -> None:
    """handlers/values.py names each lookup table's rows; SQL takes its ids from there, so an enum
    that drifted from its table would store the wrong life, status, level, role or scope."""
    conn = await asyncpg.connect(scratch_url)
    try:
        await apply_schema(conn)
        tables = {
            table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
            for table in LOOKUP_TABLES
        }
        dying_indexes = await conn.fetch(
            "SELECT tablename, indexdef FROM pg_indexes WHERE indexname LIKE '%\\_dying' ORDER BY 1"
        )
    finally:
        await conn.close()
    for table, values in LOOKUP_TABLES.items():
        assert tables[table] == [(v.value, v.label) for v in values], table
    assert [v.label for v in RelationStatusId] == [s.value for s in RelationStatus]
    assert [v.label for v in AccessLevelId] == [a.value for a in AccessLevel]
    assert [v.label for v in RoleId] == [r.value for r in Role]
    assert [v.label for v in ScopeId] == [s.value for s in Scope]
    # A partial index's predicate is a constant: the dying rows' indexes name Life.dying's id.
    assert [r["tablename"] for r in dying_indexes] == ["application", "relation", "unit"]
    for r in dying_indexes:
        assert r["indexdef"].endswith(f"WHERE (life_id = {Life.dying:d})"), r["indexdef"]
    assert ScopeId.of(Scope.global_) is ScopeId.global_ and Life.of("dying") is Life.dying


# ---- constraints, bypassing the handlers ----------------------------------------------------


@pytest.fixture
async def conn(pool: Any) -> AsyncIterator[Any]:
    async with pool.acquire() as c:
        yield c


async def _row(conn: Any, sql: str, *args: Any) -> Any:
    row = await conn.fetchrow(sql, *args)
    assert row is not None, sql
    return row


async def _ids(conn: Any, model_uuid: str, relation_id: int) -> dict[str, Any]:
    """The uuids around one relation of the domain's model."""
    rel = await _row(
        conn, "SELECT uuid FROM relation WHERE model_uuid = $1 AND relation_id = $2", model_uuid, relation_id
    )
    eps = await conn.fetch(
        """SELECT re.uuid, re.endpoint_uuid, re.application_uuid, re.position, a.name
           FROM relation_endpoint re JOIN application a
             ON a.model_uuid = re.model_uuid AND a.uuid = re.application_uuid
           WHERE re.model_uuid = $1 AND re.relation_uuid = $2 ORDER BY re.position""",
        model_uuid,
        rel["uuid"],
    )
    return {"relation": rel["uuid"], "endpoints": eps}


async def _unit(conn: Any, model_uuid: str, name: str) -> Any:
    return await _row(
        conn, "SELECT uuid, application_uuid FROM unit WHERE model_uuid = $1 AND name = $2", model_uuid, name
    )


async def _related(domain: Domain) -> dict[str, Any]:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    rel = await domain.integrate("wordpress", "mysql")
    return rel


async def test_a_third_relation_endpoint_is_refused(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    ids = await _ids(conn, m, rel["id"])
    mysql_ep = ids["endpoints"][1]
    other = await _row(
        conn,
        """SELECT endpoint_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'mysql' AND endpoint_name = 'db-admin'""",
        m,
    )

    for position in (0, 1, 2):
        with pytest.raises((asyncpg.UniqueViolationError, asyncpg.CheckViolationError)):
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO relation_endpoint
                       (model_uuid, uuid, relation_uuid, endpoint_uuid, application_uuid, position)
                       VALUES ($1, gen_random_uuid(), $2, $3, $4, $5)""",
                    m,
                    ids["relation"],
                    other["endpoint_uuid"],
                    mysql_ep["application_uuid"],
                    position,
                )


async def test_a_regular_relation_with_one_endpoint_is_refused_at_commit(domain: Domain, conn: Any) -> None:
    await _related(domain)
    m = domain.model_uuid
    wp_db = await _row(
        conn,
        """SELECT endpoint_uuid, application_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'wordpress' AND endpoint_name = 'cache'""",
        m,
    )

    with pytest.raises(asyncpg.CheckViolationError, match="needs 2"):
        async with conn.transaction():
            rel_uuid = str(uuid.uuid4())
            await conn.execute(
                """INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer)
                   VALUES ($1, $2, 900, 'wordpress:cache', false)""",
                m,
                rel_uuid,
            )
            await conn.execute(
                """INSERT INTO relation_endpoint
                   (model_uuid, uuid, relation_uuid, endpoint_uuid, application_uuid, position)
                   VALUES ($1, gen_random_uuid(), $2, $3, $4, 0)""",
                m,
                rel_uuid,
                wp_db["endpoint_uuid"],
                wp_db["application_uuid"],
            )

    assert (
        await conn.fetchval("SELECT count(*) FROM relation WHERE model_uuid = $1 AND relation_id = 900", m)
        == 0
    )


async def test_a_relation_without_endpoints_is_refused_at_commit(domain: Domain, conn: Any) -> None:
    m = domain.model_uuid

    with pytest.raises(asyncpg.CheckViolationError, match="has 0 endpoint"):
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer)
                   VALUES ($1, gen_random_uuid(), 901, 'ghost:peer', true)""",
                m,
            )


async def test_deleting_one_endpoint_of_a_relation_is_refused_at_commit(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    ids = await _ids(conn, domain.model_uuid, rel["id"])

    with pytest.raises(asyncpg.CheckViolationError, match="has 1 endpoint"):
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM relation_endpoint WHERE model_uuid = $1 AND uuid = $2",
                domain.model_uuid,
                ids["endpoints"][0]["uuid"],
            )


async def test_a_unit_cannot_be_in_scope_on_another_applications_endpoint(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    ids = await _ids(conn, m, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")
    wordpress_unit = await _unit(conn, m, "wordpress/0")

    for application_uuid in (wordpress_unit["application_uuid"], mysql_ep["application_uuid"]):
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO relation_unit
                       (model_uuid, uuid, relation_endpoint_uuid, application_uuid, unit_uuid)
                       VALUES ($1, gen_random_uuid(), $2, $3, $4)""",
                    m,
                    mysql_ep["uuid"],
                    application_uuid,
                    wordpress_unit["uuid"],
                )


@pytest.mark.parametrize("table", ["relation", "unit", "application"])
async def test_life_cannot_go_backwards(domain: Domain, conn: Any, table: str) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    await domain.run({"type": "remove_application", "application": "wordpress"})
    where = {
        "relation": ("relation_id", rel["id"]),
        "unit": ("name", "wordpress/0"),
        "application": ("name", "wordpress"),
    }[table]
    assert (
        await conn.fetchval(
            f"SELECT life_id FROM {table} WHERE model_uuid = $1 AND {where[0]} = $2", m, where[1]
        )
        == 1
    )

    with pytest.raises(asyncpg.CheckViolationError, match="cannot go back"):
        await conn.execute(
            f"UPDATE {table} SET life_id = 0 WHERE model_uuid = $1 AND {where[0]} = $2", m, where[1]
        )


async def test_a_relation_cannot_be_dead_with_units_in_scope(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})

    with pytest.raises(asyncpg.CheckViolationError, match="cannot be dead"):
        await conn.execute(
            "UPDATE relation SET life_id = 2 WHERE model_uuid = $1 AND relation_id = $2", m, rel["id"]
        )


async def test_an_endpoint_over_its_limit_is_refused_at_commit(domain: Domain, conn: Any) -> None:
    await domain.deploy("postgresql")
    await domain.deploy("ca-one", "self-signed-certificates")
    await domain.deploy("ca-two", "self-signed-certificates")
    await domain.integrate("postgresql:certificates", "ca-one")
    m = domain.model_uuid
    certs = await _row(
        conn,
        """SELECT endpoint_uuid, application_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'postgresql' AND endpoint_name = 'certificates'""",
        m,
    )
    ca_two = await _row(
        conn,
        """SELECT endpoint_uuid, application_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'ca-two' AND endpoint_name = 'certificates'""",
        m,
    )

    with pytest.raises(asyncpg.CheckViolationError, match="its limit is 1"):
        async with conn.transaction():
            rel_uuid = str(uuid.uuid4())
            await conn.execute(
                """INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer)
                   VALUES ($1, $2, 902, 'postgresql:certificates ca-two:certificates', false)""",
                m,
                rel_uuid,
            )
            for position, row in enumerate((certs, ca_two)):
                await conn.execute(
                    """INSERT INTO relation_endpoint
                       (model_uuid, uuid, relation_uuid, endpoint_uuid, application_uuid, position)
                       VALUES ($1, gen_random_uuid(), $2, $3, $4, $5)""",
                    m,
                    rel_uuid,
                    row["endpoint_uuid"],
                    row["application_uuid"],
                    position,
                )


@pytest.mark.parametrize(
    "table", ["relation_unit_setting", "relation_application_setting"], ids=["unit", "application"]
)
async def test_an_empty_setting_key_is_refused(domain: Domain, conn: Any, table: str) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})
    ids = await _ids(conn, m, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")
    if table == "relation_unit_setting":
        owner_column = "relation_unit_uuid"
        owner = await conn.fetchval(
            "SELECT uuid FROM relation_unit WHERE model_uuid = $1 AND relation_endpoint_uuid = $2",
            m,
            mysql_ep["uuid"],
        )
    else:
        owner_column, owner = "relation_endpoint_uuid", mysql_ep["uuid"]

    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            f"INSERT INTO {table} (model_uuid, {owner_column}, key, value) VALUES ($1, $2, '', 'x')", m, owner
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            f"INSERT INTO {table} (model_uuid, {owner_column}, key, value) VALUES ($1, $2, 'k', '')", m, owner
        )


async def test_relation_ids_are_unique_per_model(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)

    with pytest.raises(asyncpg.UniqueViolationError):
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO relation (model_uuid, uuid, relation_id, key, is_peer)
                   VALUES ($1, gen_random_uuid(), $2, 'another', true)""",
                domain.model_uuid,
                rel["id"],
            )


async def test_the_relation_sequence_cannot_go_backwards(domain: Domain, conn: Any) -> None:
    await _related(domain)

    with pytest.raises(asyncpg.CheckViolationError, match="cannot go back"):
        await conn.execute("UPDATE relation_sequence SET value = 0 WHERE model_uuid = $1", domain.model_uuid)


async def test_a_relation_cannot_point_into_another_model(domain: Domain, pool: Any, conn: Any) -> None:
    await _related(domain)
    other = Domain(pool)
    await other.new_model()
    await other.deploy("wordpress")
    foreign = await _row(
        conn,
        """SELECT endpoint_uuid, application_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'wordpress' AND endpoint_name = 'db'""",
        other.model_uuid,
    )
    rel_uuid = await conn.fetchval(
        "SELECT uuid FROM relation WHERE model_uuid = $1 AND key = 'wordpress:db mysql:db'", domain.model_uuid
    )

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "UPDATE relation_endpoint SET endpoint_uuid = $3, application_uuid = $4 "
            "WHERE model_uuid = $1 AND relation_uuid = $2 AND position = 0",
            domain.model_uuid,
            rel_uuid,
            foreign["endpoint_uuid"],
            foreign["application_uuid"],
        )


async def test_a_subordinate_unit_cannot_outlive_its_principal(domain: Domain, conn: Any) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("telegraf")
    rel = await domain.integrate("telegraf", "wordpress")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    principal = await _unit(conn, domain.model_uuid, "wordpress/0")

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with conn.transaction():
            await conn.execute("DELETE FROM relation_unit WHERE model_uuid = $1", domain.model_uuid)
            await conn.execute(
                "DELETE FROM unit WHERE model_uuid = $1 AND uuid = $2", domain.model_uuid, principal["uuid"]
            )


async def test_change_event_seq_is_unique_per_model(domain: Domain, conn: Any) -> None:
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            """INSERT INTO change_event (model_uuid, seq, namespace, kind, routing_key, key)
               VALUES ($1, 1, 'model', 'created', 'x', '{}')""",
            domain.model_uuid,
        )


async def test_init_connection_decodes_uuids_as_text(scratch_url: str) -> None:
    conn = await asyncpg.connect(scratch_url)
    try:
        await init_connection(conn)
        value = await conn.fetchval("SELECT '0d326f66-3ac0-41d3-81ef-54b93ee399a9'::uuid")
    finally:
        await conn.close()
    assert value == "0d326f66-3ac0-41d3-81ef-54b93ee399a9"


async def test_moving_a_relation_endpoint_onto_a_full_endpoint_is_refused_at_commit(
    domain: Domain, conn: Any
) -> None:
    await domain.deploy("postgresql")
    await domain.deploy("ca-one", "self-signed-certificates")
    await domain.integrate("postgresql:certificates", "ca-one")
    m = domain.model_uuid
    await domain.deploy("agent", metadata={"requires": {"cos-agent": "cos_agent"}})
    cos = await domain.integrate("agent", "postgresql")
    certs = await _row(
        conn,
        """SELECT endpoint_uuid FROM v_application_endpoint
           WHERE model_uuid = $1 AND application_name = 'postgresql' AND endpoint_name = 'certificates'""",
        m,
    )

    with pytest.raises(asyncpg.CheckViolationError, match="its limit is 1"):
        async with conn.transaction():
            await conn.execute(
                """UPDATE relation_endpoint SET endpoint_uuid = $3
                   WHERE model_uuid = $1 AND relation_uuid = $2 AND position = 1""",
                m,
                cos["uuid"],
                certs["endpoint_uuid"],
            )


async def test_a_unit_cannot_enter_the_scope_of_a_dead_relation(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    m = domain.model_uuid
    ids = await _ids(conn, m, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")
    mysql_unit = await _unit(conn, m, "mysql/0")

    with pytest.raises(asyncpg.CheckViolationError, match="dead"):
        async with conn.transaction():
            await conn.execute(
                "UPDATE relation SET life_id = 2 WHERE model_uuid = $1 AND uuid = $2", m, ids["relation"]
            )
            await conn.execute(
                """INSERT INTO relation_unit
                   (model_uuid, uuid, relation_endpoint_uuid, application_uuid, unit_uuid)
                   VALUES ($1, gen_random_uuid(), $2, $3, $4)""",
                m,
                mysql_ep["uuid"],
                mysql_unit["application_uuid"],
                mysql_unit["uuid"],
            )


async def test_a_subordinate_unit_needs_a_principal_and_a_principal_unit_has_none(
    domain: Domain, conn: Any
) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("telegraf")
    m = domain.model_uuid
    telegraf = await _row(conn, "SELECT uuid FROM application WHERE model_uuid = $1 AND name = 'telegraf'", m)
    wordpress0 = await _unit(conn, m, "wordpress/0")

    with pytest.raises(asyncpg.CheckViolationError, match="principal"):
        await conn.execute(
            """INSERT INTO unit (model_uuid, uuid, application_uuid, name, number)
               VALUES ($1, gen_random_uuid(), $2, 'telegraf/9', 9)""",
            m,
            telegraf["uuid"],
        )
    with pytest.raises(asyncpg.CheckViolationError, match="principal"):
        await conn.execute(
            """INSERT INTO unit (model_uuid, uuid, application_uuid, name, number, principal_uuid)
               VALUES ($1, gen_random_uuid(), $2, 'wordpress/9', 9, $3)""",
            m,
            wordpress0["application_uuid"],
            wordpress0["uuid"],
        )


async def test_a_subordinate_unit_cannot_be_the_principal_of_another(domain: Domain, conn: Any) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("telegraf")
    await domain.deploy("nrpe")
    rel = await domain.integrate("telegraf", "wordpress")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    m = domain.model_uuid
    nrpe = await _row(conn, "SELECT uuid FROM application WHERE model_uuid = $1 AND name = 'nrpe'", m)
    telegraf0 = await _unit(conn, m, "telegraf/0")

    with pytest.raises(asyncpg.CheckViolationError, match="principal"):
        await conn.execute(
            """INSERT INTO unit (model_uuid, uuid, application_uuid, name, number, principal_uuid)
               VALUES ($1, gen_random_uuid(), $2, 'nrpe/9', 9, $3)""",
            m,
            nrpe["uuid"],
            telegraf0["uuid"],
        )


async def test_unlinking_a_subordinate_from_its_principal_is_refused_unless_it_is_removed_too(
    domain: Domain, conn: Any
) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("telegraf")
    rel = await domain.integrate("telegraf", "wordpress")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    m = domain.model_uuid
    telegraf0 = await _unit(conn, m, "telegraf/0")

    with pytest.raises(asyncpg.CheckViolationError, match="needs a principal"):
        await conn.execute(
            "UPDATE unit SET principal_uuid = NULL WHERE model_uuid = $1 AND uuid = $2", m, telegraf0["uuid"]
        )
    async with conn.transaction():
        await conn.execute(
            "UPDATE unit SET principal_uuid = NULL WHERE model_uuid = $1 AND uuid = $2", m, telegraf0["uuid"]
        )
        await conn.execute("DELETE FROM application_leader WHERE model_uuid = $1", m)
        await conn.execute("DELETE FROM unit WHERE model_uuid = $1 AND uuid = $2", m, telegraf0["uuid"])

    assert (
        await conn.fetchval("SELECT count(*) FROM unit WHERE model_uuid = $1 AND name = 'telegraf/0'", m) == 0
    )


# ---- version 4: the departed units' settings archive ------------------------------------------


_ARCHIVE = """INSERT INTO relation_unit_archive (model_uuid, relation_endpoint_uuid, unit_name, container_uuid)
              VALUES ($1, $2, $3, gen_random_uuid())"""


async def test_a_unit_cannot_be_both_in_scope_and_archived(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})
    ids = await _ids(conn, domain.model_uuid, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")

    with pytest.raises(asyncpg.CheckViolationError, match="both in scope and archived"):
        async with conn.transaction():
            await conn.execute(_ARCHIVE, domain.model_uuid, mysql_ep["uuid"], "mysql/0")


async def test_a_unit_cannot_enter_scope_while_still_archived(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})
    await domain.run({"type": "leave_scope", "relation": rel["id"], "unit": "mysql/0"})
    m = domain.model_uuid
    ids = await _ids(conn, m, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")
    mysql_unit = await _unit(conn, m, "mysql/0")
    assert await conn.fetchval("SELECT count(*) FROM relation_unit_archive WHERE model_uuid = $1", m) == 1

    with pytest.raises(asyncpg.CheckViolationError, match="both in scope and archived"):
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO relation_unit
                   (model_uuid, uuid, relation_endpoint_uuid, application_uuid, unit_uuid)
                   VALUES ($1, gen_random_uuid(), $2, $3, $4)""",
                m,
                mysql_ep["uuid"],
                mysql_unit["application_uuid"],
                mysql_unit["uuid"],
            )


async def test_only_a_unit_of_the_endpoints_application_is_archived_there(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    ids = await _ids(conn, domain.model_uuid, rel["id"])
    mysql_ep = next(e for e in ids["endpoints"] if e["name"] == "mysql")

    with pytest.raises(asyncpg.CheckViolationError, match="wordpress/0 cannot be archived"):
        async with conn.transaction():
            await conn.execute(_ARCHIVE, domain.model_uuid, mysql_ep["uuid"], "wordpress/0")


async def test_the_archive_goes_with_its_relation(domain: Domain, conn: Any) -> None:
    rel = await _related(domain)
    await domain.run(
        {"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0", "settings": {"a": "1"}}
    )
    await domain.run({"type": "leave_scope", "relation": rel["id"], "unit": "mysql/0"})
    m = domain.model_uuid
    count = """SELECT (SELECT count(*) FROM relation_unit_archive WHERE model_uuid = $1),
                      (SELECT count(*) FROM relation_unit_setting_archive WHERE model_uuid = $1)"""
    assert tuple(await _row(conn, count, m)) == (1, 1)

    await conn.execute("DELETE FROM relation WHERE model_uuid = $1 AND relation_id = $2", m, rel["id"])

    assert tuple(await _row(conn, count, m)) == (0, 0)
