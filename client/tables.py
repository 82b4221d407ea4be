"""Readable output for relctl: one rendering per kind of result, printed with rich.

Machine output (``--json``) does not come through here; it is the result's JSON as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from contracts.events import ChangeEvent
from contracts.replies import (
    AccessInfo,
    ApplicationInfo,
    DeployResult,
    EndpointInfo,
    ModelInfo,
    RelationInfo,
    UnitRelationInfo,
)


def console(stderr: bool = False) -> Console:
    """A terminal's own width; when piped, wide enough that no table row wraps."""
    out = Console(highlight=False, stderr=stderr)
    if not out.is_terminal:
        out = Console(highlight=False, stderr=stderr, width=200)
    return out


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _none(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def models(out: Console, rows: list[ModelInfo]) -> None:
    table = _table("Model", "UUID")
    for m in rows:
        table.add_row(m.name, m.uuid)
    out.print(table)


def endpoints(out: Console, rows: Iterable[EndpointInfo]) -> None:
    table = _table("Endpoint", "Role", "Interface", "Scope", "Limit", "Optional")
    for e in rows:
        table.add_row(
            e.name, e.role.value, e.interface, e.scope.value, _none(e.limit), "yes" if e.optional else ""
        )
    out.print(table)


def deployed(out: Console, result: DeployResult) -> None:
    units = ", ".join(result.units) or "no units"
    kind = "subordinate " if result.subordinate else ""
    out.print(f"Deployed {kind}application {result.application} ({units})")
    endpoints(out, result.endpoints)
    for peer in result.peer_relations:
        out.print(f"Peer relation {peer.id}: {peer.key}")


def relation_type(rel: RelationInfo) -> str:
    """As `juju status --relations` names them: peer, subordinate (container scope), regular."""
    if len(rel.endpoints) == 1:
        return "peer"
    return "subordinate" if rel.scope.value == "container" else "regular"


def _side(rel: RelationInfo, role: str) -> str:
    if len(rel.endpoints) == 1:
        e = rel.endpoints[0]
        return f"{e.application}:{e.name}"
    return next((f"{e.application}:{e.name}" for e in rel.endpoints if e.role.value == role), "-")


def relations(out: Console, rows: list[RelationInfo]) -> None:
    table = _table("Id", "Provider", "Requirer", "Interface", "Type", "Status", "Life", "Message")
    for rel in rows:
        table.add_row(
            str(rel.id),
            _side(rel, "provider"),
            _side(rel, "requirer"),
            rel.interface,
            relation_type(rel),
            rel.status,
            rel.life,
            rel.message,
        )
    out.print(table)


def relation(out: Console, rel: RelationInfo) -> None:
    facts = _table("", "")
    facts.show_header = False
    for name, value in (
        ("Relation", f"{rel.id} ({rel.key})"),
        ("UUID", rel.uuid),
        ("Interface", rel.interface),
        ("Type", relation_type(rel)),
        ("Life", rel.life),
        ("Status", rel.status + (f": {rel.message}" if rel.message else "")),
        ("In scope", ", ".join(rel.units_in_scope) or "-"),
    ):
        facts.add_row(Text(name, style="bold"), value)
    out.print(facts)
    out.print()
    table = _table("Application", "Endpoint", "Role", "Interface", "Scope", "Limit", "Endpoint UUID")
    for e in rel.endpoints:
        table.add_row(
            e.application,
            e.name,
            e.role.value,
            e.interface,
            e.scope.value,
            _none(e.limit),
            e.relation_endpoint_uuid,
        )
    out.print(table)


def applications(out: Console, rows: list[ApplicationInfo]) -> None:
    table = _table("Application", "Life", "Subordinate", "Leader", "Units")
    for a in rows:
        table.add_row(a.name, a.life, "yes" if a.subordinate else "", _none(a.leader), " ".join(a.units))
    out.print(table)


def unit_relations(out: Console, rows: list[UnitRelationInfo]) -> None:
    table = _table("Id", "Endpoint", "Key", "In scope", "Suspended", "Life")
    for r in rows:
        table.add_row(
            str(r.id),
            r.endpoint,
            r.key,
            "yes" if r.in_scope else "no",
            "yes" if r.suspended else "no",
            r.life,
        )
    out.print(table)


def access(out: Console, rows: list[AccessInfo]) -> None:
    table = _table("Model", "User", "Access")
    for a in rows:
        table.add_row(a.model, a.user, _none(a.level))
    out.print(table)


def settings(out: Console, bag: dict[str, str]) -> None:
    """As relation-get prints a bag: ``key: value`` lines, sorted."""
    for key in sorted(bag):
        out.print(f"{key}: {bag[key]}", markup=False, soft_wrap=True)


def lines(out: Console, values: Iterable[Any]) -> None:
    for value in values:
        out.print(str(value), markup=False, soft_wrap=True)


def _summary(key: dict[str, Any]) -> str:
    """The parts of an event key a person reads: names and ids, not UUIDs."""
    parts = [f"{k}={v}" for k, v in key.items() if not k.endswith("uuid")]
    return " ".join(parts) or " ".join(f"{k}={v}" for k, v in key.items())


def event(out: Console, e: ChangeEvent) -> None:
    out.print(
        f"{e.seq:>6}  {e.created_at:%H:%M:%S}  {e.namespace.value:<28} {e.kind:<9} {_summary(e.key)}",
        markup=False,
        soft_wrap=True,
    )
