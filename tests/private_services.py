"""Private PostgreSQL clusters and RabbitMQ nodes that a test may stop, kill and restart.

The machine's shared PostgreSQL (5432) and RabbitMQ (5672) serve other people's tests too, so a
test that restarts "the database" or "the broker" must never touch them. These helpers start a
throw-away cluster or node on free ports, in a temporary directory, as the service's own system
user (PostgreSQL refuses to run as root; the packaged RabbitMQ runs as ``rabbitmq`` and shares its
Erlang cookie), and remove everything in teardown, failed test or not.

Fixtures (function scope, so each test owns its instance):

* ``private_postgres`` -> :class:`PrivatePostgres` (``.url``, ``.admin_url``, ``.restart()``,
  ``.stop()``, ``.start()``, ``.kill()``, ``.create_database()``)
* ``private_rabbitmq`` -> :class:`PrivateRabbitMQ` (``.url``, ``.restart()``, ``.stop()``,
  ``.start()``)

``PrivatePostgres(options={...})`` adds ``-c name=value`` server settings (TLS, say) and
``PrivateRabbitMQ(extra_config="...")`` adds lines to the node's rabbitmq.conf; files they name must
be readable by the service's user (``postgres`` / ``rabbitmq``).

Start-up costs about 1-2 s for PostgreSQL (initdb + start) and 4-8 s for RabbitMQ on this
machine; ``started_in`` on each instance holds the measured figure.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness import create_schema_database

PG_BIN = Path(os.environ.get("RELATIOND_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_BIN = Path(os.environ.get("RELATIOND_TEST_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))
# The packaged node's cookie lives in the rabbitmq user's home; a private node shares it, so
# rabbitmqctl -n can reach it.
RABBIT_HOME = Path("/var/lib/rabbitmq")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str) -> list[str]:
    """Run a command as ``user`` when we are root; as ourselves otherwise."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", user, "--"]


def _owned_tmpdir(prefix: str, user: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(0o755)
    return path


def _wait_port(port: int, timeout: float, what: str, alive: object = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port} within {timeout}s")


class PrivatePostgres:
    """A PostgreSQL cluster of one test: initdb in a temporary directory, on a free port."""

    user = "postgres"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        self.port = free_port()
        self.dir = _owned_tmpdir("relationd-pg-", self.user)
        self.data = self.dir / "data"
        self.socket_dir = self.dir
        self.log = self.dir / "postgres.log"
        self.started_in = 0.0
        self.restarts = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*_as_user(self.user), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.dir,
        )

    def init(self) -> None:
        began = time.monotonic()
        self._run(
            str(PG_BIN / "initdb"),
            "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.start()
        self.started_in = time.monotonic() - began

    def start(self) -> None:
        options = (
            # fsync off is safe here: only PostgreSQL crashes, never the machine. synchronous_commit
            # stays on: with it off, an immediate stop loses commits the daemon was told of.
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        for name, value in self.options.items():
            options += " -c " + shlex.quote(f"{name}={value}")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "immediate", down_for: float = 0.0) -> None:
        """Stop (``immediate`` is a crash: no checkpoint, every connection cut), wait, start."""
        self.stop(mode)
        if down_for:
            time.sleep(down_for)
        self.start()
        self.restarts += 1

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists()

    async def create_database(self, name: str = "relationd") -> str:
        url = self.url_for(name)
        await create_schema_database(self.admin_url, name, url)
        return url

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except Exception:
                pid_file = self.data / "postmaster.pid"
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRabbitMQ:
    """A RabbitMQ node of one test (its own node name, ports, mnesia and logs)."""

    user = "rabbitmq"

    def __init__(self, extra_config: str = "") -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = _owned_tmpdir("relationd-rmq-", self.user)
        self.node = f"relationd-test-{self.port}@localhost"
        self.started_in = 0.0
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = warning\n" + extra_config
        )
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            for p in self.dir.iterdir():
                os.chown(p, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
            "HOME": str(RABBIT_HOME),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            [*_as_user(self.user), str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            cwd=self.dir,
        )
        return out.stdout

    def start(self) -> None:
        began = time.monotonic()
        log = (self.dir / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [*_as_user(self.user), str(RABBIT_BIN / "rabbitmq-server")],
            env=self._env(),
            cwd=self.dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.ctl("wait", "--timeout", "60", str(self.dir / "rabbit.pid"), timeout=90)
        _wait_port(self.port, 30, "private RabbitMQ")
        if not self.started_in:
            self.started_in = time.monotonic() - began

    def beam_pid(self) -> int | None:
        try:
            return int((self.dir / "rabbit.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node: SIGTERM is RabbitMQ's graceful shutdown (as `rabbitmqctl stop`, without
        the second the CLI takes to boot); SIGKILL is a crash."""
        if self.proc is None:
            return
        pid = self.beam_pid()
        try:
            if pid is None:
                raise ProcessLookupError
            os.kill(pid, sig)
        except OSError:
            try:
                self.ctl("stop", timeout=60)
            except Exception:
                self._kill()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self._kill()
        (self.dir / "rabbit.pid").unlink(missing_ok=True)
        self.proc = None

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(10)
        # The Erlang VM writes its own pid; kill that one too in case it left our process group.
        try:
            os.kill(int((self.dir / "rabbit.pid").read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()
        self.restarts += 1

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            self._kill()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres_cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
async def private_postgres(private_postgres_cluster: PrivatePostgres) -> AsyncIterator[PrivatePostgres]:
    """A private cluster with a ``relationd`` database carrying the schema (``.url``)."""
    pg = private_postgres_cluster
    pg.url = await pg.create_database("relationd")  # type: ignore[attr-defined]
    yield pg


@pytest.fixture
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ()
    try:
        node.start()
        yield node
    finally:
        node.destroy()
