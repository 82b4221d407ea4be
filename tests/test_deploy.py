"""deploy/ works as deploy/README.md says: the unit verifies, the broker definitions load and grant
what each user needs and no more, and the PostgreSQL role is least-privilege yet can migrate.

The broker and database tests use uniquely named vhosts, users, roles and databases and remove
them afterwards, so the machine's broker and server are left as they were.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq
import asyncpg
import pytest

from contracts import topology
from daemon.broker import queue_specs
from daemon.settings import Settings
from tests.conftest import ADMIN_DSN, AMQP_URL
from tests.service_support import own_database, stop_daemon, wait_readyz

__all__ = ["own_database"]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "relationd.service"
INSTALL_BIN = "/opt/relationd/.venv/bin/"


# --- systemd unit ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """systemd-analyze, installing the `systemd` package when it is missing and we are root."""
    exe = shutil.which("systemd-analyze")
    if exe:
        return exe
    if os.geteuid() != 0:
        pytest.skip("systemd-analyze is missing and only root may install it (apt-get install systemd)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "systemd"]):
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    exe = shutil.which("systemd-analyze")
    assert exe, "installed the systemd package, yet systemd-analyze is not on PATH"
    return exe


def _exec_paths(unit_text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^Exec\w+=[-+!@:]*(\S+)", unit_text, re.MULTILINE)}


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """An alternate root holding the shipped unit byte for byte, systemd's own units, and an
    executable at every Exec path the unit names (so verify can check they exist and run)."""
    text = UNIT.read_text()
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copyfile(UNIT, tmp_path / "etc/systemd/system/relationd.service")
    units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(units, tmp_path / "usr/lib/systemd/system", symlinks=True)
    for exe in _exec_paths(text):
        stub = tmp_path / exe.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return tmp_path


def _verify(systemd_analyze: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze, "verify", "--man=no", f"--root={root}", "relationd.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unit_runs_relationd_from_the_install_prefix() -> None:
    text = UNIT.read_text()
    assert _exec_paths(text) == {INSTALL_BIN + "relationd"}
    assert re.search(rf"^ExecStartPre={re.escape(INSTALL_BIN)}relationd migrate$", text, re.MULTILINE)
    assert re.search(rf"^ExecStart={re.escape(INSTALL_BIN)}relationd run$", text, re.MULTILINE)


def test_unit_verifies_without_a_warning(systemd_analyze: str, unit_root: Path) -> None:
    done = _verify(systemd_analyze, unit_root)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_verify_reports_a_misspelled_directive(systemd_analyze: str, unit_root: Path) -> None:
    """The check above can fail: verify exits 0 on an unknown key, but says so on stderr."""
    unit = unit_root / "etc/systemd/system/relationd.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    done = _verify(systemd_analyze, unit_root)
    assert "Unknown key 'ProtectSystm'" in done.stderr


def test_unit_hardening_keeps_exposure_low(systemd_analyze: str, unit_root: Path) -> None:
    done = subprocess.run(
        [
            systemd_analyze,
            "security",
            "--offline=yes",
            f"--root={unit_root}",
            "--threshold=20",  # "2.0 OK" on systemd's 0-10 scale; the unit scores about 1.2
            "--no-pager",
            "/etc/systemd/system/relationd.service",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


# --- environment file example ------------------------------------------------------------------


def _example_settings() -> dict[str, str]:
    text = (DEPLOY / "relationd.env.example").read_text()
    return dict(re.findall(r"^#(RELATIOND_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE))


def test_env_example_names_every_setting() -> None:
    documented = set(_example_settings())
    settings = {f"RELATIOND_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from deploy/relationd.env.example"
    extra = documented - settings - {"RELATIOND_ENV_FILE", "RELATIOND_SCHEMA_FILE"}
    assert extra == set(), "deploy/relationd.env.example documents settings that do not exist"


def test_definitions_declare_the_queues_as_the_daemon_does_by_default() -> None:
    """The broker refuses a redeclaration whose arguments differ, so the shipped definitions must
    hold exactly what a daemon with default settings declares, and the dead-letter policy the same
    bounds (it also bounds a classic dead-letter queue left by an older relationd)."""
    shipped = json.loads((DEPLOY / "rabbitmq/definitions.json").read_text())
    queues = {q["name"]: q["arguments"] for q in shipped["queues"]}
    dead, command = queue_specs(Settings())
    assert queues == {command.name: command.arguments, dead.name: dead.arguments}
    (policy,) = shipped["policies"]
    assert re.fullmatch(policy["pattern"], topology.DEAD_LETTER_QUEUE)
    assert not re.search(policy["pattern"], topology.COMMAND_QUEUE)
    assert policy["definition"] == {
        "max-length": dead.arguments["x-max-length"],
        "max-length-bytes": dead.arguments["x-max-length-bytes"],
        "overflow": dead.arguments["x-overflow"],
        "message-ttl": dead.arguments["x-message-ttl"],
    }


def test_env_example_shows_the_true_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RELATIOND_"):
            monkeypatch.delenv(name)
    defaults = Settings()
    for name, value in _example_settings().items():
        if value and name not in ("RELATIOND_ENV_FILE", "RELATIOND_SCHEMA_FILE"):
            monkeypatch.setenv(name, value)
    assert json.loads(Settings().model_dump_json()) == json.loads(defaults.model_dump_json())
    assert Settings().amqp_url == defaults.amqp_url and Settings().database_url == defaults.database_url


# --- RabbitMQ definitions ----------------------------------------------------------------------


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    done = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or not check, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _hash_password(password: str) -> str:
    done = subprocess.run(
        [str(DEPLOY / "rabbitmq/hash-password")],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class Broker:
    """The shipped definitions, renamed for this run: vhost and both users get a unique suffix."""

    def __init__(self, suffix: str, definitions: Path) -> None:
        self.vhost = f"relationd-deploytest-{suffix}"
        self.daemon_user = f"relationd-deploytest-{suffix}"
        self.client_user = f"relationd-client-deploytest-{suffix}"
        self.passwords = {self.daemon_user: uuid.uuid4().hex, self.client_user: uuid.uuid4().hex}
        self.definitions = definitions
        self.first_apply = ""

    def rename(self, shipped: dict[str, Any]) -> dict[str, Any]:
        users = {"relationd": self.daemon_user, "relationd-client": self.client_user}
        out = json.loads(json.dumps(shipped))
        for vhost in out["vhosts"]:
            assert vhost["name"] == "relationd"
            vhost["name"] = self.vhost
        for user in out["users"]:
            user["name"] = users[user["name"]]
            user["password_hash"] = _hash_password(self.passwords[user["name"]])
        for kind in ("permissions", "topic_permissions"):
            for perm in out[kind]:
                perm["user"] = users[perm["user"]]
        for kind in ("permissions", "topic_permissions", "exchanges", "queues", "bindings", "policies"):
            for item in out[kind]:
                assert item["vhost"] == "relationd"
                item["vhost"] = self.vhost
        return out

    def apply(self) -> str:
        done = subprocess.run(
            [str(DEPLOY / "rabbitmq/apply-definitions"), str(self.definitions)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    def url(self, user: str) -> str:
        base = urlsplit(AMQP_URL)
        netloc = f"{quote(user, safe='')}:{self.passwords[user]}@{base.hostname}:{base.port or 5672}"
        return base._replace(netloc=netloc, path="/" + quote(self.vhost, safe="")).geturl()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if shutil.which("rabbitmqctl") is None and not Path("/usr/sbin/rabbitmqctl").exists():
        pytest.skip("rabbitmqctl is not installed (scripts/ensure-services installs RabbitMQ)")
    if os.geteuid() != 0:
        pytest.skip("rabbitmqctl needs root to reach the local node")
    shipped = json.loads((DEPLOY / "rabbitmq/definitions.json").read_text())
    b = Broker(uuid.uuid4().hex[:10], tmp_path_factory.mktemp("rabbitmq") / "definitions.json")
    b.definitions.write_text(json.dumps(b.rename(shipped)))
    try:
        b.first_apply = b.apply()
        yield b
    finally:  # deleting the vhost takes its queues, exchanges and permissions with it
        _rabbitmqctl("delete_vhost", b.vhost, check=False)
        for user in (b.daemon_user, b.client_user):
            _rabbitmqctl("delete_user", user, check=False)


def test_definitions_load_as_declared_and_reload_idempotently(broker: Broker) -> None:
    assert f"new users: {broker.daemon_user}, {broker.client_user}" in broker.first_apply
    again = broker.apply()
    assert "new users: none" in again and "password kept" in again

    queues = _rabbitmqctl("list_queues", "-p", broker.vhost, "name", "type", "durable", "arguments")
    commands = next(line for line in queues.splitlines() if line.startswith("relationd.commands\t"))
    assert "\tquorum\ttrue\t" in commands
    for arg in (
        '{"x-dead-letter-exchange","relationd.dead-letter"}',
        '{"x-delivery-limit",20}',
        '{"x-quorum-initial-group-size",3}',
    ):
        assert arg in commands
    # The dead-letter queue survives a node (quorum), is bounded and forgets (issue 15, part 7).
    dead = next(line for line in queues.splitlines() if line.startswith("relationd.dead-letter\t"))
    assert "\tquorum\ttrue\t" in dead
    for arg in (
        '{"x-max-length",10000}',
        '{"x-max-length-bytes",67108864}',
        '{"x-overflow","drop-head"}',
        '{"x-message-ttl",604800000}',
        '{"x-quorum-initial-group-size",3}',
    ):
        assert arg in dead, dead
    policies = _rabbitmqctl("list_queues", "-p", broker.vhost, "name", "policy")
    assert re.search(r"^relationd\.dead-letter\trelationd-dead-letter-bounds$", policies, re.MULTILINE)

    perms = _rabbitmqctl("list_permissions", "-p", broker.vhost).splitlines()
    assert sorted(perms[1:]) == sorted(
        [
            f"{broker.daemon_user}\t^relationd\\.\t^(relationd\\.|amq\\.default$)\t^relationd\\.",
            f"{broker.client_user}\t^amq\\.gen-\t^(amq\\.default|amq\\.gen-.*)$\t^(amq\\.gen-.*|relationd\\.events)$",
        ]
    )
    # The exchanges' types and durability are checked by redeclaring them as the daemon does.


async def _refused(channel_of: Any, action: Any) -> bool:
    """Run action on a fresh channel; True when the broker refuses it with ACCESS_REFUSED."""
    channel = await channel_of()
    try:
        await action(channel)
    except aiormq.exceptions.ChannelAccessRefused:
        return True
    finally:
        if not channel.is_closed:
            await channel.close()
    return False


async def test_daemon_user_declares_its_topology_and_nothing_else(broker: Broker) -> None:
    settings = Settings()
    async with await aio_pika.connect(broker.url(broker.daemon_user)) as conn:
        channel = await conn.channel(publisher_confirms=True)
        # What daemon/broker.py declares at every session start; a mismatch with the imported
        # objects (type, durability, arguments) would close the channel with PRECONDITION_FAILED.
        events = await channel.declare_exchange(
            topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead = await channel.declare_exchange(
            topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dlq, spec = queue_specs(settings)
        dead_queue = await channel.declare_queue(dlq.name, durable=True, arguments=dlq.arguments)
        await dead_queue.bind(dead, routing_key="")
        await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        await events.publish(aio_pika.Message(b"{}"), routing_key=f"{uuid.uuid4()}.relation-life.0")
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key="amq.gen-reply")

        assert await _refused(conn.channel, lambda ch: ch.declare_queue("other.queue", durable=True))

        async def bind_to_amq_fanout(ch: Any) -> None:  # read on a non-relationd exchange
            queue = await ch.declare_queue(f"relationd.deploytest-{uuid.uuid4().hex[:6]}", exclusive=True)
            await queue.bind("amq.fanout")

        assert await _refused(conn.channel, bind_to_amq_fanout)
        assert await _refused(
            conn.channel, lambda ch: ch.declare_exchange("other", aio_pika.ExchangeType.TOPIC)
        )


async def test_client_user_sends_commands_and_watches_events_only(broker: Broker) -> None:
    model = str(uuid.uuid4())
    async with await aio_pika.connect(broker.url(broker.client_user)) as conn:
        channel = await conn.channel(publisher_confirms=True)
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        assert replies.name.startswith("amq.gen-")
        await replies.bind(topology.EVENTS_EXCHANGE, routing_key=f"{model}.#")
        command = aio_pika.Message(
            b'{"type": "list_models"}',
            message_id=str(uuid.uuid4()),
            user_id=broker.client_user,
            reply_to=replies.name,
            correlation_id="1",
        )
        await channel.default_exchange.publish(command, routing_key=topology.COMMAND_QUEUE)

        async def consume_commands(ch: Any) -> None:
            queue = await ch.declare_queue(topology.COMMAND_QUEUE, passive=True)
            await queue.get(fail=False)

        async def publish_event(ch: Any) -> None:
            exchange = await ch.get_exchange(topology.EVENTS_EXCHANGE)
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=f"{model}.relation-life.0")

        async def bind_dead_letters(ch: Any) -> None:
            queue = await ch.declare_queue(exclusive=True)
            await queue.bind(topology.DEAD_LETTER_EXCHANGE, routing_key="")

        async def read_dead_letters(ch: Any) -> None:  # whole command bodies, settings included
            queue = await ch.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
            await queue.get(fail=False)

        assert await _refused(conn.channel, consume_commands)
        assert await _refused(conn.channel, bind_dead_letters)
        assert await _refused(conn.channel, read_dead_letters)
        assert await _refused(
            conn.channel,
            lambda ch: ch.declare_exchange(topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC),
        )
        assert await _refused(partial(conn.channel, publisher_confirms=True), publish_event)

    async with await aio_pika.connect(broker.url(broker.daemon_user)) as conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(topology.COMMAND_QUEUE, passive=True)
        message = await queue.get(timeout=5)
        assert message.user_id == broker.client_user
        await message.ack()


async def test_topic_permissions_limit_a_watcher_to_one_model(broker: Broker) -> None:
    """The deploy/README.md example: a watcher may bind only to its model's routing keys."""
    model = str(uuid.uuid4())
    _rabbitmqctl(
        "set_topic_permissions", "-p", broker.vhost, broker.client_user,
        topology.EVENTS_EXCHANGE, "^$", f"^{re.escape(model)}\\.",
    )  # fmt: skip
    try:
        async with await aio_pika.connect(broker.url(broker.client_user)) as conn:

            def bind(key: str) -> Any:
                async def action(ch: Any) -> None:
                    queue = await ch.declare_queue(exclusive=True)
                    await queue.bind(topology.EVENTS_EXCHANGE, routing_key=key)

                return action

            assert not await _refused(conn.channel, bind(f"{model}.#"))
            assert not await _refused(conn.channel, bind(f"{model}.relation-life.*"))
            assert await _refused(conn.channel, bind("#"))
            assert await _refused(conn.channel, bind(f"{uuid.uuid4()}.#"))
    finally:
        _rabbitmqctl("clear_topic_permissions", "-p", broker.vhost, broker.client_user)


async def test_relationd_and_its_client_work_as_the_least_privilege_users(
    broker: Broker, own_database: str, tmp_path: Path
) -> None:
    """The real daemon and client library, each as its own user: command, reply, event, and the
    library's watcher (which may only get the events exchange passively).

    A database of its own: with the session's daemon on the same database, either instance's
    outbox relay may publish this test's event, to its own vhost."""
    from client import watch
    from client.rpc import RelationClient
    from tests.harness import DaemonProcess

    daemon = DaemonProcess(broker.url(broker.daemon_user), own_database, tmp_path)
    daemon.start()
    try:
        await daemon.wait_ready()
        async with await aio_pika.connect(broker.url(broker.client_user)) as watcher:
            channel = await watcher.channel()
            events = await channel.declare_queue(exclusive=True)
            await events.bind(topology.EVENTS_EXCHANGE, routing_key="#")
            client = await RelationClient.connect(broker.url(broker.client_user), timeout=15)
            try:
                created = await client.call(
                    {"type": "create_model", "name": f"deploy-{uuid.uuid4().hex[:8]}"}
                )
            finally:
                await client.close()
            event = None
            for _ in range(100):  # the outbox relay publishes after the commit, within a poll
                event = await events.get(no_ack=True, fail=False)
                if event is not None:
                    break
                await asyncio.sleep(0.1)
            assert event is not None, f"no event within 10 s; daemon log:\n{daemon.log()}"
            assert json.loads(event.body)["model_uuid"] == created["uuid"]
        async with watch(broker.url(broker.client_user), created["name"], timeout=10) as events_of_model:
            first = await asyncio.wait_for(anext(aiter(events_of_model)), 10)
            assert (first.seq, first.namespace, first.kind) == (1, "model", "created")
            assert events_of_model.reconnects == 0
    finally:
        code = await asyncio.to_thread(daemon.terminate)
    assert code == 0, daemon.log()


async def test_a_daemon_declaring_other_queue_arguments_than_the_definitions_is_not_ready(
    broker: Broker, own_database: str, tmp_path: Path
) -> None:
    """The check above can fail: the imported command queue has x-delivery-limit 20, so a daemon
    set to 5 is refused (PRECONDITION_FAILED), stays unready and says what to compare."""
    from tests.harness import DaemonProcess

    daemon = DaemonProcess(broker.url(broker.daemon_user), own_database, tmp_path, delivery_limit=5)
    try:
        daemon.start()
        readyz = await wait_readyz(daemon, 503, timeout=15)
        assert readyz["broker_ok"] is False and readyz["database_ok"] is True
        refused: list[dict[str, Any]] = []
        for _ in range(50):
            refused = [line for line in daemon.log_lines() if "PRECONDITION_FAILED" in line.get("error", "")]
            if refused:
                break
            await asyncio.sleep(0.1)
        assert refused, daemon.log()
        assert refused[0]["level"] == "error" and "x-delivery-limit" in refused[0]["error"]
        assert "RELATIOND_DELIVERY_LIMIT" in refused[0]["event"]
    finally:
        code = await asyncio.to_thread(stop_daemon, daemon)
    assert code == 0, daemon.log()


# --- PostgreSQL setup --------------------------------------------------------------------------


def _dsn(user: str, database: str) -> str:
    parts = urlsplit(ADMIN_DSN)
    netloc = f"{quote(user, safe='')}@{parts.hostname}:{parts.port or 5432}"
    return parts._replace(netloc=netloc, path="/" + database).geturl()


def _password_matches(stored: str, password: str, role: str) -> bool:
    """Check a pg_authid.rolpassword (SCRAM-SHA-256 or md5) against a cleartext password."""
    if stored.startswith("md5"):
        return stored == "md5" + hashlib.md5((password + role).encode()).hexdigest()
    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored)
    assert m, f"unexpected password format {stored[:16]}..."
    iterations, salt, stored_key = int(m[1]), base64.b64decode(m[2]), base64.b64decode(m[3])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest() == stored_key


@pytest.fixture
async def pg_role() -> AsyncIterator[str]:
    name = f"relationd_deploytest_{uuid.uuid4().hex[:10]}"
    yield name
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await admin.close()


def _setup(role: str, password: str) -> str:
    done = subprocess.run(
        [str(DEPLOY / "postgres/setup"), "--role", role, "--database", role, "--admin-dsn", ADMIN_DSN],
        env={**os.environ, "RELATIOND_DB_PASSWORD": password},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_postgres_setup_makes_a_least_privilege_owner_that_can_migrate(pg_role: str) -> None:
    password = 'it\'s a \\ "hard" one; $HOME'
    await asyncio.to_thread(_setup, pg_role, "first")
    again = await asyncio.to_thread(_setup, pg_role, password)  # idempotent; changes the password
    assert f"role {pg_role} and database {pg_role} ready" in again

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        role = await admin.fetchrow("SELECT * FROM pg_authid WHERE rolname = $1", pg_role)
        owner = await admin.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", pg_role
        )
        public_connect = await admin.fetchval(
            "SELECT has_database_privilege('public', $1, 'CONNECT')", pg_role
        )
    finally:
        await admin.close()
    assert role["rolcanlogin"] and owner == pg_role and not public_connect
    flags = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")
    assert not any(role[f] for f in flags)
    assert _password_matches(role["rolpassword"], password, pg_role)

    conn = await asyncpg.connect(_dsn(pg_role, pg_role), password=password)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'CREATE DATABASE "{pg_role}_other"')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'CREATE ROLE "{pg_role}_other"')
    finally:
        await conn.close()

    url = _dsn(pg_role, pg_role).replace("@", f":{quote(password, safe='')}@", 1)
    migrated = await asyncio.to_thread(_migrate, url)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr


def _migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "migrate"],
        cwd=ROOT,
        env={**os.environ, "RELATIOND_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
