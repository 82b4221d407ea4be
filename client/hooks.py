"""Change events as Juju's relation hooks, for one unit, in the uniter's order, once each.

:class:`UnitHooks` is a pure state machine: feed it a model's change events in sequence order
and it returns the hooks the unit would run. It keeps no clock and does no I/O, so a consumer
that restarts replays the log from the start and skips the hooks it already handled (each hook
has a position ``(seq, index)``: the event that caused it and its place among that event's hooks).

Rules (after Juju's uniter):
- ``relation-created`` when a relation the unit's application takes part in appears (peers too);
- ``relation-joined`` then a first ``relation-changed`` for each remote unit in scope, once the
  unit itself is in scope; a settings write in the same command as the entry is part of that
  first ``relation-changed``;
- ``relation-changed`` when a joined remote unit's settings or the remote application's settings
  change (events come only when a bag's hash changes), and for the unit's own application's
  settings only while it is the leader;
- ``relation-departed`` when a joined remote unit leaves scope, or for every joined remote unit
  when the unit itself leaves;
- ``relation-broken`` once the relation is dying and the unit has departed every remote unit.
A subordinate unit sees only its principal across a container-scoped relation, and a principal
only its own subordinate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CREATED = "relation-created"
JOINED = "relation-joined"
CHANGED = "relation-changed"
DEPARTED = "relation-departed"
BROKEN = "relation-broken"


@dataclass(frozen=True, slots=True)
class Hook:
    hook: str
    relation_id: int
    endpoint: str
    remote_app: str
    remote_unit: str | None
    seq: int
    index: int

    @property
    def position(self) -> tuple[int, int]:
        return (self.seq, self.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "relation_id": self.relation_id,
            "endpoint": self.endpoint,
            "remote_app": self.remote_app,
            "remote_unit": self.remote_unit,
            "seq": self.seq,
            "index": self.index,
        }


@dataclass(slots=True)
class _Relation:
    id: int
    endpoint: str
    remote_app: str
    peer: bool
    container: bool
    dying: bool = False
    broken: bool = False
    local_in_scope: bool = False
    in_scope: set[str] = field(default_factory=set)
    joined: set[str] = field(default_factory=set)
    joined_by: dict[str, str | None] = field(default_factory=dict)


def parse_key(key: str) -> list[tuple[str, str]]:
    """``wordpress:db mysql:db`` -> [("wordpress", "db"), ("mysql", "db")]; peers have one."""
    return [tuple(part.split(":", 1)) for part in key.split()]  # type: ignore[misc]


class UnitHooks:
    """The hooks one unit runs, derived from its model's change events."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.app = unit.rpartition("/")[0]
        self.relations: dict[int, _Relation] = {}
        self.principal_of: dict[str, str] = {}
        self.leaders: dict[str, str | None] = {}
        self.last_seq = 0

    @property
    def is_leader(self) -> bool:
        return self.leaders.get(self.app) == self.unit

    def apply(self, event: dict[str, Any]) -> list[Hook]:
        """The hooks caused by one event (events must come in ``seq`` order, without gaps)."""
        self.last_seq = event["seq"]
        out: list[tuple[str, _Relation, str | None, str]] = []
        ns, kind, key, payload = event["namespace"], event["kind"], event["key"], event["payload"]
        if ns == "unit":
            self._unit(kind, key, payload)
        elif ns == "application" and kind == "leader":
            self.leaders[key["application"]] = payload.get("leader")
        elif ns == "relation":
            out = self._relation(kind, key, payload)
        else:
            rel = self.relations.get(key.get("relation_id", -1))
            if rel is not None and not rel.broken:
                if ns == "relation_unit":
                    out = self._scope(rel, kind, key["unit"], event.get("command_id"))
                elif ns == "relation_unit_setting":
                    out = self._unit_settings(rel, key["unit"], event.get("command_id"))
                elif ns == "relation_application_setting":
                    out = self._app_settings(rel, key["application"])
        return [
            Hook(hook, rel.id, rel.endpoint, app, unit, event["seq"], i)
            for i, (hook, rel, unit, app) in enumerate(out)
        ]

    def run(self, events: Iterable[dict[str, Any]], after: tuple[int, int] | None = None) -> Iterator[Hook]:
        """Every hook of ``events`` positioned after ``after`` (resume point), in order."""
        for event in events:
            for hook in self.apply(event):
                if after is None or hook.position > after:
                    yield hook

    # ---- per namespace -------------------------------------------------------------------

    def _unit(self, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> None:
        if kind == "added" and payload.get("principal"):
            self.principal_of[key["unit"]] = payload["principal"]
        elif kind == "removed":
            self.principal_of.pop(key["unit"], None)

    def _relation(self, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> list[Any]:
        rid = key["relation_id"]
        if kind == "created":
            sides = parse_key(key["key"])
            mine = [ep for app, ep in sides if app == self.app]
            if not mine:
                return []
            others = [app for app, _ in sides if app != self.app]
            rel = _Relation(
                id=rid,
                endpoint=mine[0],
                remote_app=others[0] if others else self.app,
                peer=len(sides) == 1,
                container=payload.get("scope") == "container",
            )
            self.relations[rid] = rel
            return [(CREATED, rel, None, rel.remote_app)]
        rel = self.relations.get(rid)
        if rel is None or rel.broken:
            return []
        if kind == "life" and payload.get("life") == "dying":
            rel.dying = True
            return self._maybe_broken(rel)
        if kind == "removed":
            rel.dying = True
            out = [(DEPARTED, rel, u, rel.remote_app) for u in sorted(rel.joined)]
            rel.joined.clear()
            out += self._maybe_broken(rel)
            del self.relations[rid]
            return out
        return []

    def _visible(self, rel: _Relation, unit: str) -> bool:
        if unit == self.unit or unit.rpartition("/")[0] != rel.remote_app:
            return False
        if not rel.container or rel.peer:
            return True
        mine, theirs = self.principal_of.get(self.unit), self.principal_of.get(unit)
        return mine == unit or theirs == self.unit or (mine is not None and mine == theirs)

    def _scope(self, rel: _Relation, kind: str, unit: str, command: str | None) -> list[Any]:
        out: list[Any] = []
        if unit == self.unit:
            if kind == "entered" and not rel.local_in_scope:
                rel.local_in_scope = True
                for remote in sorted(rel.in_scope - rel.joined):
                    out += self._join(rel, remote, command)
            elif kind == "left" and rel.local_in_scope:
                rel.local_in_scope = False
                out = [(DEPARTED, rel, u, rel.remote_app) for u in sorted(rel.joined)]
                rel.joined.clear()
                out += self._maybe_broken(rel)
            return out
        if not self._visible(rel, unit):
            return []
        if kind == "entered":
            rel.in_scope.add(unit)
            if rel.local_in_scope and unit not in rel.joined:
                out = self._join(rel, unit, command)
        elif kind == "left":
            rel.in_scope.discard(unit)
            if unit in rel.joined:
                rel.joined.discard(unit)
                out = [(DEPARTED, rel, unit, rel.remote_app), *self._maybe_broken(rel)]
        return out

    def _join(self, rel: _Relation, unit: str, command: str | None) -> list[Any]:
        rel.joined.add(unit)
        rel.joined_by[unit] = command
        return [(JOINED, rel, unit, rel.remote_app), (CHANGED, rel, unit, rel.remote_app)]

    def _unit_settings(self, rel: _Relation, unit: str, command: str | None) -> list[Any]:
        if unit not in rel.joined:
            return []
        if command is not None and rel.joined_by.get(unit) == command:
            return []  # written with the entry: the first relation-changed covers it
        return [(CHANGED, rel, unit, rel.remote_app)]

    def _app_settings(self, rel: _Relation, app: str) -> list[Any]:
        if not rel.local_in_scope:
            return []
        if app == self.app and not self.is_leader:
            return []
        if app != self.app and app != rel.remote_app:
            return []
        return [(CHANGED, rel, None, app)]

    def _maybe_broken(self, rel: _Relation) -> list[Any]:
        if rel.dying and not rel.joined and not rel.broken:
            rel.broken = True
            return [(BROKEN, rel, None, rel.remote_app)]
        return []


async def follow_hooks(
    url: str,
    model: str,
    unit: str,
    *,
    after: tuple[int, int] | None = None,
    timeout: float = 30.0,
) -> AsyncIterator[Hook]:
    """The unit's hooks, live, for ever: the model's log is replayed from the start to rebuild the
    unit's view, hooks up to ``after`` (a :attr:`Hook.position`) are skipped, the rest yielded as
    their events arrive. Resuming with the last position handled neither repeats nor skips a hook.
    """
    from client.watch import Watch  # the watcher needs the broker client; the state machine not

    machine = UnitHooks(unit)
    async with Watch(url, model, after=0, timeout=timeout) as events:
        async for event in events:
            for hook in machine.apply(event.model_dump(mode="json")):
                if after is None or hook.position > after:
                    yield hook
