"""A private pg_auto_failover set for failover tests: a monitor, a primary and a synchronous
standby, on free ports and in a temporary directory, never the machine's own PostgreSQL.

pg_autoctl refuses to run as root, so every node runs as the ``postgres`` OS user, each
``pg_autoctl run`` in a session (process group) of its own: ``kill`` (SIGKILL), ``freeze``
(SIGSTOP) and ``thaw`` (SIGCONT) act on the whole node (keeper, postmaster and backends) as a
machine loss or a machine that stops answering would; ``rejoin`` runs the killed node's keeper
again, which rewinds it and makes it the new standby. ``destroy`` stops every node by its process
group and removes the directory. Needs the Debian packages ``postgresql-15-auto-failover`` and
``pg-auto-failover-cli`` (scripts/ensure-services installs them); the fixture skips without them.

Timers (pg_auto_failover's defaults promote the standby ~50 s after a primary is lost; these
measured 6-8 s on this machine, with the keeper's partition timeout below the monitor's demote
timeout so that a primary cut off from monitor and standby stops writing before the standby is
promoted):

* monitor (``pgautofailover.*``, ``MONITOR_TIMERS``): health check every 1 s, 1 s timeout, 1 retry
  after 0.5 s; a node is unhealthy after 3 s; the standby is promoted 3 s after the primary was
  asked to demote (default 30 s); 2 s start-up grace.
* keeper (``KEEPER_TIMERS``): network partition 2 s (default 20), promotion catch-up 5 s (30),
  WAL receiver check 2 s (5).

The standby's base backup waits for a checkpoint of the primary, which a quiet primary may take
its time over (~94 s was seen): one is asked for every second while the standby is created.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import create_schema_database
from tests.private_services import PG_BIN, _as_user, _owned_tmpdir, free_port

PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"
USER = "postgres"

MONITOR_TIMERS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "3000",
    "pgautofailover.startup_grace_period": "2000",
}
KEEPER_TIMERS = {
    "timeout.network_partition_timeout": "2",
    "timeout.prepare_promotion_catchup": "5",
    "timeout.prepare_promotion_walreceiver": "2",
}


def available() -> bool:
    return Path(PG_AUTOCTL).exists() and (PG_BIN / "pg_ctl").exists()


def pss_bytes(pids: list[int]) -> int:
    """The proportional set size of these processes: memory shared between them counted once."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def process_group(pgid: int) -> list[int]:
    """The pids of a process group and of all their descendants: PostgreSQL's backends, WAL
    sender and other children each call setsid(), so they are in groups of their own."""
    parents: dict[int, int] = {}
    group: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        if int(fields[3]) == pgid:
            group.append(pid)
    found = set(group)
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


@dataclass
class Node:
    """One pg_autoctl service: the monitor or a PostgreSQL node."""

    name: str
    port: int
    pgdata: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    frozen: bool = False

    def pids(self) -> list[int]:
        """Every process of the node's session (runuser, pg_autoctl, postgres and its children)."""
        return [] if self.proc is None else process_group(self.proc.pid)

    def signal(self, sig: int) -> None:
        """Signal every process of the node. A kill stops them all first, so that no backend
        outlives its postmaster long enough to tell its client (a machine lost says nothing)."""
        pids = self.pids()
        for s in ([signal.SIGSTOP] if sig == signal.SIGKILL else []) + [sig]:
            for pid in pids:
                try:
                    os.kill(pid, s)
                except ProcessLookupError:
                    pass


class PgAutoFailoverSet:
    """Monitor + ``node1`` (first primary) + ``node2`` (synchronous standby)."""

    def __init__(self) -> None:
        self.dir = _owned_tmpdir("relationd-pgaf-", USER)
        self.monitor = self._node("monitor")
        self.nodes = {name: self._node(name) for name in ("node1", "node2")}
        self.started_in = 0.0
        self.url: str = ""

    def _node(self, name: str) -> Node:
        return Node(name, free_port(), self.dir / name, self.dir / f"{name}.log")

    @property
    def monitor_url(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover?sslmode=disable"

    def url_for(self, database: str) -> str:
        """The multi-host DSN a daemon gets: both nodes, the primary found by session attrs."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values())
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def _env(self) -> dict[str, str]:
        # pg_autoctl keeps its state and configuration under XDG_* (else in the postgres user's
        # home, shared with the machine's own services).
        return {
            "PATH": f"{PG_BIN}:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "XDG_DATA_HOME": str(self.dir / "share"),
            "XDG_RUNTIME_DIR": str(self.dir / "run"),
        }

    def _autoctl(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*_as_user(USER), PG_AUTOCTL, *args],
            env=self._env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_autoctl {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def psql(self, port: int, sql: str, database: str = "postgres", timeout: float = 10) -> str:
        argv = ["-X", "-At", "-h", "127.0.0.1", "-p", str(port), "-d", database, "-c", sql]
        done = subprocess.run(
            [*_as_user(USER), str(PG_BIN / "psql"), *argv],
            env=self._env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return done.stdout.strip()

    def _run(self, node: Node) -> None:
        """Start the node's keeper (or the monitor) in a process group of its own."""
        log = node.log.open("ab")
        node.proc = subprocess.Popen(
            [*_as_user(USER), PG_AUTOCTL, "run", "--pgdata", str(node.pgdata)],
            env=self._env(),
            cwd=self.dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait(self, what: str, check: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                last = exc
            time.sleep(0.2)
        raise TimeoutError(
            f"{what} not reached in {timeout}s (last: {last}); states {self._states_or_error()}"
        )

    def _states_or_error(self) -> object:
        try:
            return self.states()
        except Exception as exc:
            return exc

    def start(self) -> None:
        began = time.monotonic()
        common = ["--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", str(PG_BIN / "pg_ctl")]
        m = self.monitor
        self._autoctl("create", "monitor", "--pgdata", str(m.pgdata), "--pgport", str(m.port), *common)
        self._autoctl("config", "set", "--pgdata", str(m.pgdata), "postgresql.listen_addresses", "127.0.0.1")
        self._run(m)
        self._wait("monitor up", lambda: self.psql(m.port, "SELECT 1", "pg_auto_failover") == "1", 60)
        for name, value in MONITOR_TIMERS.items():
            self.psql(m.port, f"ALTER SYSTEM SET {name} = '{value}'", "pg_auto_failover")
        self.psql(m.port, "SELECT pg_reload_conf()", "pg_auto_failover")
        first = True
        for node in self.nodes.values():
            forcing = None if first else self._force_checkpoints(self.nodes["node1"].port)
            try:
                self._autoctl(
                    "create", "postgres", "--pgdata", str(node.pgdata), "--pgport", str(node.port),
                    "--listen", "127.0.0.1", "--name", node.name, "--monitor", self.monitor_url,
                    *common, timeout=240,
                )  # fmt: skip
            finally:
                if forcing is not None:
                    forcing.set()
            for name, value in KEEPER_TIMERS.items():
                self._autoctl("config", "set", "--pgdata", str(node.pgdata), name, value)
            self._run(node)
            if first:
                self._wait("node1 single", lambda: self.states().get("node1") == ("single", "single"), 90)
            first = False
        self.wait_states({"node1": "primary", "node2": "secondary"}, 120)
        self.started_in = time.monotonic() - began

    def _force_checkpoints(self, port: int) -> threading.Event:
        """Ask ``port`` for a checkpoint every second until the event is set (base backups)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(1.0):
                try:
                    self.psql(port, "CHECKPOINT")
                except Exception:
                    pass

        threading.Thread(target=loop, daemon=True).start()
        return stop

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported, assigned) state according to the monitor."""
        out = self.psql(
            self.monitor.port,
            "SELECT nodename, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid",
            "pg_auto_failover",
            timeout=5,
        )
        states = {}
        for line in out.splitlines():
            name, reported, goal = line.split("|")
            states[name] = (reported, goal)
        return states

    def wait_states(self, expected: dict[str, str], timeout: float) -> float:
        """Wait until each named node reports and is assigned the expected state; seconds taken.
        ``a|b`` accepts either (``primary|wait_primary``: a primary whose standby is not back)."""
        began = time.monotonic()

        def reached() -> bool:
            states = self.states()
            for name, want in expected.items():
                ok = set(want.split("|"))
                reported, goal = states.get(name, ("", ""))
                if reported not in ok or goal not in ok:
                    return False
            return True

        self._wait(f"states {expected}", reached, timeout)
        return time.monotonic() - began

    def primary(self) -> str:
        for name, (reported, goal) in self.states().items():
            if reported in ("primary", "wait_primary", "single") and goal == reported:
                return name
        raise RuntimeError(f"no primary: {self.states()}")

    def standby_of(self, name: str) -> str:
        return next(n for n in self.nodes if n != name)

    def kill(self, name: str) -> None:
        """kill -9 every process of the node, as a machine lost."""
        node = self.nodes[name]
        node.signal(signal.SIGKILL)
        if node.proc is not None:
            node.proc.wait(30)
        node.proc = None

    def freeze(self, name: str) -> None:
        self.nodes[name].signal(signal.SIGSTOP)
        self.nodes[name].frozen = True

    def thaw(self, name: str) -> None:
        self.nodes[name].signal(signal.SIGCONT)
        self.nodes[name].frozen = False

    def rejoin(self, name: str, timeout: float = 180) -> float:
        """Run a killed node's keeper again and wait until it is the new primary's standby; the
        seconds that took. Its rewind may wait for a checkpoint of the new primary, so one is
        asked for every second meanwhile."""
        began = time.monotonic()
        primary = self.standby_of(name)
        forcing = self._force_checkpoints(self.nodes[primary].port)
        try:
            self._run(self.nodes[name])
            self.wait_states({name: "secondary", primary: "primary"}, timeout)
        finally:
            forcing.set()
        return time.monotonic() - began

    def wait_writable(self, name: str, timeout: float) -> float:
        """Seconds until ``name`` accepts a write."""
        began = time.monotonic()
        port = self.nodes[name].port

        # Promoted is not yet writable: pg_auto_failover keeps a new primary read-only
        # (default_transaction_read_only) until the old one is known to be demoted.
        check = "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"

        def writable() -> bool:
            return self.psql(port, check, timeout=2) == "t"

        self._wait(f"{name} writable", writable, timeout)
        return time.monotonic() - began

    def memory_bytes(self) -> int:
        """Proportional set size of every process of the set (shared memory counted once)."""
        return pss_bytes([pid for node in [self.monitor, *self.nodes.values()] for pid in node.pids()])

    async def create_database(self, name: str = "relationd") -> str:
        """A database with relationd's schema on the primary (the standby gets it by replication)."""
        url = self.url_for(name)
        await create_schema_database(self.url_for("postgres"), name, url)
        self.url = url
        return url

    def destroy(self) -> None:
        """Stop every node by its process group (SIGTERM: pg_autoctl stops its postgres), then
        SIGKILL what is left, and remove the directory."""
        nodes = [*self.nodes.values(), self.monitor]
        for node in nodes:
            if node.frozen:
                self.thaw(node.name)
            if node.proc is not None:
                try:
                    os.killpg(node.proc.pid, signal.SIGTERM)  # pg_autoctl stops its postgres
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for node in nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            node.signal(signal.SIGKILL)
            for pid in node.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        # A postgres whose keeper was killed first may have left its own process group.
        for node in nodes:
            pid_file = node.pgdata / "postmaster.pid"
            try:
                pid = int(pid_file.read_text().split()[0])
                if Path(f"/proc/{pid}/cmdline").read_bytes().find(str(node.pgdata).encode()) >= 0:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg_failover_set() -> Iterator[PgAutoFailoverSet]:
    if not available():
        pytest.fail(
            "pg_auto_failover is not installed: run scripts/ensure-services (it installs postgresql-15-auto-failover)"
        )
    pgaf = PgAutoFailoverSet()
    try:
        pgaf.start()
        yield pgaf
    finally:
        pgaf.destroy()


@pytest.fixture
async def private_pg_failover(private_pg_failover_set: PgAutoFailoverSet) -> AsyncIterator[PgAutoFailoverSet]:
    """The set with a ``relationd`` database carrying the schema (``.url``, a multi-host DSN)."""
    await private_pg_failover_set.create_database("relationd")
    yield private_pg_failover_set
