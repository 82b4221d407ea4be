"""A short scripted tour of relationd, through the client library only (``python -m client.demo``).

Against the daemon at ``RELATIOND_AMQP_URL`` (default: the local broker): a fresh model, wordpress,
mysql and the telegraf subordinate deployed from the charm metadata in ``client/demo_charms/``,
integrated, units entering scope (telegraf/0 is created by its principal's entry), settings
written and read as a remote unit would, a status set by a leader; then the relations table and
the change events a watcher saw. `make run` runs it once the daemon is ready.

Exit status: 0 done, 1 a command was refused, 3 the daemon could not be reached.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from importlib import resources
from typing import Any

import yaml
from rich.console import Console

from client import tables
from client.rpc import DEFAULT_AMQP_URL, DaemonUnreachable, RelationClient
from client.watch import Watch
from contracts.errors import RelationdError
from contracts.events import ChangeEvent


def demo_charm(name: str) -> dict[str, Any]:
    """The metadata of one of the demo charms (wordpress, mysql, telegraf)."""
    text = (resources.files("client") / "demo_charms" / f"{name}.yaml").read_text()
    meta: dict[str, Any] = yaml.safe_load(text)
    return meta


def heading(out: Console, title: str) -> None:
    out.print()
    out.print(f"[bold]== {title} ==[/]")


class Collector:
    """A watcher running in the background, keeping what it sees."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.events: list[ChangeEvent] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name="demo watcher")

    async def _run(self) -> None:
        async for event in self.watch:
            self.events.append(event)
            self.arrived.set()

    async def until(self, seq: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not self.events or self.events[-1].seq < seq:
                self.arrived.clear()
                await self.arrived.wait()

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.watch.close()


async def tour(url: str, out: Console) -> str:
    model = time.strftime("demo-%Y%m%d-%H%M%S")
    async with await RelationClient.connect(url, timeout=15) as c:
        heading(out, f"relationd demo: model {model}")
        info = await c.create_model(model)
        out.print(f"Created model [bold]{model}[/] ({info.uuid})")
        watcher = Collector(c.watch(model))
        try:
            heading(out, "Deploy")
            for app, units in (("mysql", 2), ("wordpress", 2), ("telegraf", 0)):
                result = await c.deploy(model, app, demo_charm(app), units=units)
                tables.deployed(out, result)
                out.print()
            tables.applications(out, await c.list_applications(model))

            heading(out, "Integrate")
            db = await c.integrate(model, "wordpress", "mysql")
            out.print(f"Relation {db.id}: {db.key} ({db.interface}, {db.status})")
            info_rel = await c.integrate(model, "telegraf", "wordpress")
            out.print(f"Relation {info_rel.id}: {info_rel.key} ({info_rel.interface}, container scope)")

            heading(out, "Enter scope and exchange settings")
            for unit in ("mysql/0", "wordpress/0", "wordpress/1"):
                await c.enter_scope(model, db.id, unit)
                out.print(f"{unit} entered relation {db.id}")
            for unit in ("wordpress/0", "wordpress/1"):
                entered = await c.enter_scope(model, info_rel.id, unit)
                created = ", ".join(entered.created_units)
                out.print(
                    f"{unit} entered relation {info_rel.id}" + (f", creating {created}" if created else "")
                )
            await c.set_unit_settings(model, db.id, "mysql/0", {"host": "10.0.0.5", "port": "3306"})
            await c.set_application_settings(
                model, db.id, "mysql/0", {"database": "wordpress", "user": "wp", "password": "s3cret"}
            )
            await c.set_unit_settings(model, db.id, "wordpress/0", {"hostname": "wp-0"})
            out.print("mysql/0 published host and port; its leader published the database and credentials")
            seen = await c.get_unit_settings(model, db.id, "mysql/0", as_unit="wordpress/0")
            app_bag = await c.get_application_settings(model, db.id, "mysql", as_unit="wordpress/0")
            out.print(f"wordpress/0 reads mysql/0: {seen}")
            out.print(f"wordpress/0 reads the mysql application: {app_bag}")
            status = await c.set_relation_status(model, db.id, "wordpress/0", "joined", "database ready")
            out.print(f"wordpress/0 (leader) set relation {status.id} to {status.status}: {status.message}")

            heading(out, "Relations")
            tables.relations(out, await c.list_relations(model))
            out.print()
            tables.relation(out, await c.get_relation(model, db.id))

            heading(out, "Change events (as a watcher saw them: replay, then live)")
            last = (await c.events_after(model, 0, limit=10000))[-1].seq
            await watcher.until(last)
            for event in watcher.events:
                tables.event(out, event)
        finally:
            await watcher.stop()
    out.print(f"Explore it: [bold]relctl -m {model} relations[/], relctl -m {model} show-relation {db.id}, ")
    out.print(f"relctl -m {model} relation-get -r {db.id} --as wordpress/0 mysql/0, relctl -m {model} watch")
    return model


def main() -> int:
    out = tables.console()
    url = os.environ.get("RELATIOND_AMQP_URL", DEFAULT_AMQP_URL)
    try:
        asyncio.run(tour(url, out))
    except DaemonUnreachable as exc:
        out.print(f"[red]demo: the daemon could not be reached:[/] {exc}")
        return 3
    except RelationdError as exc:
        out.print(f"[red]demo: refused:[/] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
