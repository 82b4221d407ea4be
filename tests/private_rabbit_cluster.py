"""A private three-node RabbitMQ cluster for tests and the HA demo: kill, freeze and thaw its nodes.

Built on :class:`tests.private_services.PrivateRabbitMQ`: each node has its own name
(``relationd-cluster-<port>@localhost``), AMQP and distribution ports, mnesia and log directories
under one cluster directory, and runs as the ``rabbitmq`` user sharing the machine's Erlang cookie
(``/var/lib/rabbitmq/.erlang.cookie``), so ``rabbitmqctl -n <node>`` reaches it. The machine's own
RabbitMQ (5672) is never addressed: every ``rabbitmqctl`` call names one of these nodes.

The nodes boot in parallel, then nodes 2..n ``join_cluster`` node 1. The configuration is
deploy/README.md's: ``cluster_partition_handling = autoheal`` and ``net_ticktime = 10``.

As a script (the one-command HA demo uses it)::

    python -m tests.private_rabbit_cluster start DIR [--nodes 3]   # prints the URL list, writes DIR/cluster.json
    python -m tests.private_rabbit_cluster urls DIR                # the comma-separated URL list
    python -m tests.private_rabbit_cluster kill DIR N              # kill -9 node N (1-based)
    python -m tests.private_rabbit_cluster stop DIR                # stops every node by pid, removes DIR

As a fixture: ``private_rabbit_cluster`` -> :class:`PrivateRabbitCluster`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.private_services import PrivateRabbitMQ, free_port

CLUSTER_CONFIG = "cluster_partition_handling = autoheal\nnet_ticktime = 10\n"


class ClusterNode(PrivateRabbitMQ):
    """One node of the cluster, in a directory the cluster chose (so a script can find it again)."""

    def __init__(self, directory: Path, port: int | None = None, dist_port: int | None = None) -> None:
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.dir = directory
        self.node = f"relationd-cluster-{self.port}@localhost"
        self.started_in = 0.0
        self.restarts = 0
        self.proc = None
        self.frozen = False
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = warning\n" + CLUSTER_CONFIG
        )
        _chown_tree(directory, self.user)

    def kill(self) -> None:
        """kill -9 the node's Erlang VM (a crash: no goodbye to its peers or clients)."""
        pid = self.beam_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
        (self.dir / "rabbit.pid").unlink(missing_ok=True)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP the VM: its sockets stay open but nothing answers (a hung machine)."""
        pid = self.beam_pid()
        assert pid is not None, f"{self.node} is not running"
        os.kill(pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        pid = self.beam_pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        self.frozen = False

    def alive(self) -> bool:
        pid = self.beam_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "port": self.port,
            "dist_port": self.dist_port,
            "dir": str(self.dir),
            "url": self.url,
            "pid": self.beam_pid(),
        }


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


class PrivateRabbitCluster:
    """``size`` private RabbitMQ nodes clustered together; ``.urls`` lists them, node 1 first."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        self.nodes = [ClusterNode(directory / f"node-{i + 1}") for i in range(size)]
        self.formed_in = 0.0

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url_list(self) -> str:
        """The nodes' URLs as one comma-separated value (RELATIOND_AMQP_URL, relctl --amqp-url)."""
        return ",".join(self.urls)

    def start(self) -> None:
        """Boot every node at once, then join nodes 2..n to node 1; wait until all n are running."""
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node, timeout=120)
            node.ctl("start_app", timeout=120)
        self.wait_running(len(self.nodes))
        self.formed_in = time.monotonic() - began
        self.save()

    def running_nodes(self, via: ClusterNode | None = None) -> list[str]:
        """The running nodes as one live node sees them."""
        node = via or next(n for n in self.nodes if n.alive() and not n.frozen)
        status = json.loads(node.ctl("cluster_status", "--formatter", "json", timeout=30))
        return list(status.get("running_nodes", []))

    def wait_running(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if len(self.running_nodes()) >= count:
                    return
            except (subprocess.SubprocessError, StopIteration):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not report {count} running nodes in {timeout}s")
            time.sleep(0.5)

    def node_named(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.node == name)

    def queue_leader(self, vhost: str, queue: str) -> ClusterNode:
        """The node that leads quorum queue ``queue`` in ``vhost`` now."""
        via = next(n for n in self.nodes if n.alive() and not n.frozen)
        rows = json.loads(
            via.ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json", timeout=30)
        )
        leader = next(r["leader"] for r in rows if r["name"] == queue)
        return self.node_named(leader)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against a live node of the cluster (never the machine's own node)."""
        via = next(n for n in self.nodes if n.alive() and not n.frozen)
        return via.ctl(*args, timeout=timeout)

    def save(self) -> None:
        state = {"nodes": [n.describe() for n in self.nodes], "urls": self.url_list}
        (self.dir / "cluster.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> PrivateRabbitCluster:
        state = json.loads((directory / "cluster.json").read_text())
        cluster = cls.__new__(cls)
        cluster.dir = directory
        cluster.formed_in = 0.0
        cluster.nodes = [
            ClusterNode(Path(n["dir"]), port=n["port"], dist_port=n["dist_port"]) for n in state["nodes"]
        ]
        return cluster

    def destroy(self) -> None:
        """Stop every node by its pid (thawing a frozen one first) and remove the directory."""
        for node in self.nodes:
            pid = node.beam_pid()
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
            node.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_rabbit_cluster() -> Iterator[PrivateRabbitCluster]:
    # Under /tmp itself: the rabbitmq user cannot enter pytest's root-only temporary directories.
    directory = Path(tempfile.mkdtemp(prefix="relationd-rmq-cluster-", dir="/tmp"))
    cluster = PrivateRabbitCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.private_rabbit_cluster", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start a cluster in DIR (created; must not hold one already)")
    start.add_argument("dir", type=Path)
    start.add_argument("--nodes", type=int, default=3)
    for action in ("urls", "stop", "status"):
        sub.add_parser(action).add_argument("dir", type=Path)
    kill = sub.add_parser("kill", help="kill -9 node N (1-based)")
    kill.add_argument("dir", type=Path)
    kill.add_argument("n", type=int)
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    if args.action == "start":
        if (directory / "cluster.json").exists():
            parser.error(f"{directory} already holds a cluster: stop it first")
        cluster = PrivateRabbitCluster(directory, args.nodes)
        try:
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        print(f"cluster of {args.nodes} formed in {cluster.formed_in:.1f}s", file=sys.stderr)
        print(cluster.url_list)
        return 0
    cluster = PrivateRabbitCluster.load(directory)
    if args.action == "urls":
        print(cluster.url_list)
    elif args.action == "status":
        for node in cluster.nodes:
            print(node.node, node.url, "up" if node.alive() else "down")
    elif args.action == "kill":
        cluster.nodes[args.n - 1].kill()
    elif args.action == "stop":
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
