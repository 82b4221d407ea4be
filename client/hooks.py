"""Change events as Juju's relation hooks, for one unit, in the uniter's order, once each.

:class:`UnitHooks` is a pure state machine: feed it a model's change events in sequence order
and it returns the hooks the unit would run. It keeps no clock and does no I/O. Its state is the
unit's small view, what Juju's uniter keeps: the relations created, the remote units joined with
the settings hash each last relation-changed saw, the application bags' hashes seen, and the log
position. :meth:`UnitHooks.to_state` gives it as JSON for the caller to persist and
:meth:`UnitHooks.from_state` takes it back; :meth:`UnitHooks.resync` compares it with a snapshot
of the unit's current state (``contracts.snapshot``) and returns the hooks for the difference,
so a restart costs the size of the unit's relations, not the age of the model.
The live stream (log, snapshot and broker) is :mod:`client.hook_stream`.

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

A resync emits, for the difference, created, then joined + changed, then changed (settings
whose hash differs from the one seen), then departed, then broken: the same rules hold, though
several changes made while the unit was away become one hook, as in Juju.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from contracts.snapshot import ModelSnapshot

CREATED = "relation-created"
JOINED = "relation-joined"
CHANGED = "relation-changed"
DEPARTED = "relation-departed"
BROKEN = "relation-broken"

STATE_VERSION = 1

# A hook as the handlers build it: (hook, relation, remote unit, remote application).
_Out = tuple[str, "_Relation", str | None, str]


class StateError(ValueError):
    """A saved hook state that cannot be used: not JSON of this version, or another unit's."""


@dataclass(frozen=True, slots=True)
class Hook:
    hook: str
    relation_id: int
    endpoint: str
    remote_app: str
    remote_unit: str | None
    seq: int
    index: int
    # The unit's view once this hook has run (JSON-serialisable): persist it, resume with it.
    state: dict[str, Any] | None = field(default=None, compare=False, repr=False)

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hook:
        return cls(
            d["hook"],
            d["relation_id"],
            d["endpoint"],
            d["remote_app"],
            d["remote_unit"],
            d["seq"],
            d["index"],
        )


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
    # Remote units in scope that the unit can see -> their settings hash (None: never written).
    in_scope: dict[str, str | None] = field(default_factory=dict)
    # Joined remote units -> the settings hash their last relation-changed saw.
    joined: dict[str, str | None] = field(default_factory=dict)
    joined_by: dict[str, str | None] = field(default_factory=dict)
    # Application bags' hashes now, and those the unit's hooks saw (while it is in scope).
    app_hash: dict[str, str | None] = field(default_factory=dict)
    app_seen: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Relation:
        return cls(**d)

    def view(self) -> dict[str, Any]:
        """What the unit knows of the relation; a broken one is only known to be broken."""
        if self.broken:
            return {"id": self.id, "endpoint": self.endpoint, "remote_app": self.remote_app, "broken": True}
        d = self.to_dict()
        del d["joined_by"], d["app_hash"]
        return d


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
        self.known = False  # the unit's own "added" event (or a snapshot of it) was seen
        self.last_seq = 0

    @property
    def is_leader(self) -> bool:
        return self.leaders.get(self.app) == self.unit

    def apply(self, event: dict[str, Any]) -> list[Hook]:
        """The hooks caused by one event (events must come in ``seq`` order, without gaps)."""
        self.last_seq = event["seq"]
        out: list[_Out] = []
        ns, kind, key, payload = event["namespace"], event["kind"], event["key"], event["payload"]
        if ns == "unit":
            self._unit(kind, key, payload)
        elif ns == "application" and kind == "leader":
            self._leader(key["application"], payload.get("leader"))
        elif ns == "relation":
            out = self._relation(kind, key, payload)
        else:
            rel = self.relations.get(key.get("relation_id", -1))
            if rel is not None and not rel.broken:
                if ns == "relation_unit":
                    out = self._scope(rel, kind, key["unit"], event.get("command_id"))
                elif ns == "relation_unit_setting":
                    out = self._unit_settings(rel, key["unit"], payload.get("hash"), event.get("command_id"))
                elif ns == "relation_application_setting":
                    out = self._app_settings(rel, key["application"], payload.get("hash"))
        return _hooks(out, event["seq"], 0)

    def run(self, events: Iterable[dict[str, Any]], after: tuple[int, int] | None = None) -> Iterator[Hook]:
        """Every hook of ``events`` positioned after ``after`` (resume point), in order."""
        for event in events:
            for hook in self.apply(event):
                if after is None or hook.position > after:
                    yield hook

    # ---- the unit's view: persisted, restored, compared with a snapshot --------------------

    def view(self) -> dict[str, Any]:
        """What the unit knows, without the bookkeeping: equal views, equal futures."""
        return {
            "leader": self.is_leader,
            "relations": {rid: rel.view() for rid, rel in sorted(self.relations.items())},
        }

    def to_state(
        self, position: tuple[int, int] | None = None, pending: Iterable[Hook] = ()
    ) -> dict[str, Any]:
        """The machine as JSON: ``position`` is the last hook handed out, ``pending`` the hooks of
        the same event still to run (the machine has already applied that event)."""
        mine = self.principal_of.get(self.unit)
        container = {self.unit, mine} - {None}
        principal_of = (
            {u: p for u, p in self.principal_of.items() if p in container or u == self.unit}
            if self.known
            else dict(self.principal_of)
        )
        return {
            "version": STATE_VERSION,
            "unit": self.unit,
            "seq": self.last_seq,
            "position": list(position) if position is not None else None,
            "pending": [h.to_dict() for h in pending],
            "known": self.known,
            "leader": self.leaders.get(self.app),
            "principal_of": principal_of,
            "relations": [rel.to_dict() for _, rel in sorted(self.relations.items())],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], unit: str | None = None) -> tuple[UnitHooks, list[Hook]]:
        """The machine and the hooks still pending, from :meth:`to_state`. Raises StateError."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise StateError(f"hook state version {_get(state, 'version')!r} is not {STATE_VERSION}")
        if unit is not None and state.get("unit") != unit:
            raise StateError(f"hook state is for unit {state.get('unit')!r}, not {unit!r}")
        try:
            machine = cls(state["unit"])
            machine.last_seq = int(state["seq"])
            machine.known = bool(state["known"])
            machine.leaders[machine.app] = state["leader"]
            machine.principal_of = dict(state["principal_of"])
            for d in state["relations"]:
                rel = _Relation.from_dict(d)
                machine.relations[rel.id] = rel
            pending = [Hook.from_dict(h) for h in state["pending"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"hook state is malformed: {exc!r}") from None
        return machine, pending

    def resync(self, snapshot: ModelSnapshot, after: tuple[int, int] | None = None) -> list[Hook]:
        """Take the unit's view from ``snapshot`` and return the hooks for the difference, in the
        uniter's order: created, joined + changed, changed, departed, broken. Their position is
        the snapshot's seq (after ``after``, the last position handed out, when that is the same).
        """
        self.last_seq = snapshot.seq
        self.known = True
        self.leaders[self.app] = self.unit if snapshot.leader else None
        if snapshot.principal is not None:
            self.principal_of = {u: snapshot.principal for u in snapshot.container if u != snapshot.principal}
        else:
            self.principal_of = {u: self.unit for u in snapshot.container if u != self.unit}
        new = {r.id: rel for r in snapshot.relations if (rel := self._from_snapshot(r)) is not None}
        created: list[_Out] = []
        joins: list[_Out] = []
        changes: list[_Out] = []
        departs: list[_Out] = []
        brokens: list[_Out] = []
        for rid in sorted(self.relations.keys() | new.keys()):
            old, rel = self.relations.get(rid), new.get(rid)
            if old is not None and old.broken:
                if rel is not None:
                    new[rid] = old  # broken stays broken until the relation is gone
                continue
            if rel is None:
                assert old is not None
                departs += [(DEPARTED, old, u, old.remote_app) for u in sorted(old.joined)]
                brokens.append((BROKEN, old, None, old.remote_app))
                continue
            if old is None:
                created.append((CREATED, rel, None, rel.remote_app))
                old = _Relation(rel.id, rel.endpoint, rel.remote_app, rel.peer, rel.container)
            for u in sorted(rel.joined):
                if u not in old.joined:
                    joins += [(JOINED, rel, u, rel.remote_app), (CHANGED, rel, u, rel.remote_app)]
                elif old.joined[u] != rel.joined[u]:
                    changes.append((CHANGED, rel, u, rel.remote_app))
            for app, seen in sorted(rel.app_seen.items()):
                if app in old.app_seen and old.app_seen[app] != seen:
                    changes.append((CHANGED, rel, None, app))
            departs += [(DEPARTED, rel, u, rel.remote_app) for u in sorted(old.joined) if u not in rel.joined]
            if rel.broken:
                brokens.append((BROKEN, rel, None, rel.remote_app))
        self.relations = new
        base = after[1] + 1 if after is not None and after[0] == snapshot.seq else 0
        return _hooks(created + joins + changes + departs + brokens, snapshot.seq, base)

    def _from_snapshot(self, r: Any) -> _Relation | None:
        sides = parse_key(r.key)
        mine = [ep for app, ep in sides if app == self.app]
        if not mine:
            return None
        others = [app for app, _ in sides if app != self.app]
        rel = _Relation(
            id=r.id,
            endpoint=mine[0],
            remote_app=others[0] if others else self.app,
            peer=len(sides) == 1,
            container=r.scope == "container",
            dying=r.life != "alive",
            local_in_scope=bool(r.in_scope),
            in_scope={u.name: u.settings_hash for u in r.units},
            app_hash={b.application: b.settings_hash for b in r.application_settings},
        )
        if rel.local_in_scope:
            rel.joined = dict(rel.in_scope)
            rel.app_seen = {app: rel.app_hash.get(app) for app in self._followed_apps(rel)}
        rel.broken = rel.dying and not rel.joined
        return rel

    # ---- per namespace -------------------------------------------------------------------

    def _unit(self, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> None:
        if kind == "added":
            if key["unit"] == self.unit:
                self.known = True
            if payload.get("principal"):
                self.principal_of[key["unit"]] = payload["principal"]
        elif kind == "removed":
            self.principal_of.pop(key["unit"], None)

    def _leader(self, app: str, leader: str | None) -> None:
        was = self.is_leader
        self.leaders[app] = leader
        if app != self.app or was == self.is_leader:
            return
        for rel in self.relations.values():
            if rel.local_in_scope and not rel.broken:
                if self.is_leader:
                    rel.app_seen[app] = rel.app_hash.get(app)  # a new leader reads its bag as it is
                else:
                    rel.app_seen.pop(app, None)

    def _followed_apps(self, rel: _Relation) -> list[str]:
        """The application bags whose changes the unit runs relation-changed for."""
        apps = [rel.remote_app] if rel.remote_app != self.app else []
        return [*apps, self.app] if self.is_leader else apps

    def _relation(self, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> list[_Out]:
        rid = key["relation_id"]
        if kind == "created":
            sides = parse_key(key["key"])
            mine = [ep for app, ep in sides if app == self.app]
            if not mine:
                return []
            others = [app for app, _ in sides if app != self.app]
            new = _Relation(
                id=rid,
                endpoint=mine[0],
                remote_app=others[0] if others else self.app,
                peer=len(sides) == 1,
                container=payload.get("scope") == "container",
            )
            self.relations[rid] = new
            return [(CREATED, new, None, new.remote_app)]
        rel = self.relations.get(rid)
        if rel is None:
            return []
        if kind == "removed":
            del self.relations[rid]
        if rel.broken:
            return []
        if kind == "life" and payload.get("life") == "dying":
            rel.dying = True
            return self._maybe_broken(rel)
        if kind == "removed":
            rel.dying = True
            out: list[_Out] = [(DEPARTED, rel, u, rel.remote_app) for u in sorted(rel.joined)]
            rel.joined.clear()
            return out + self._maybe_broken(rel)
        return []

    def _visible(self, rel: _Relation, unit: str) -> bool:
        if unit == self.unit or unit.rpartition("/")[0] != rel.remote_app:
            return False
        if not rel.container or rel.peer:
            return True
        mine, theirs = self.principal_of.get(self.unit), self.principal_of.get(unit)
        return mine == unit or theirs == self.unit or (mine is not None and mine == theirs)

    def _scope(self, rel: _Relation, kind: str, unit: str, command: str | None) -> list[_Out]:
        out: list[_Out] = []
        if unit == self.unit:
            if kind == "entered" and not rel.local_in_scope:
                rel.local_in_scope = True
                rel.app_seen = {app: rel.app_hash.get(app) for app in self._followed_apps(rel)}
                for remote in sorted(rel.in_scope.keys() - rel.joined.keys()):
                    out += self._join(rel, remote, command)
            elif kind == "left" and rel.local_in_scope:
                rel.local_in_scope = False
                rel.app_seen = {}
                out = [(DEPARTED, rel, u, rel.remote_app) for u in sorted(rel.joined)]
                rel.joined.clear()
                out += self._maybe_broken(rel)
            return out
        if not self._visible(rel, unit):
            return []
        if kind == "entered":
            rel.in_scope.setdefault(unit, None)
            if rel.local_in_scope and unit not in rel.joined:
                out = self._join(rel, unit, command)
        elif kind == "left":
            rel.in_scope.pop(unit, None)
            if unit in rel.joined:
                del rel.joined[unit]
                out = [(DEPARTED, rel, unit, rel.remote_app), *self._maybe_broken(rel)]
        return out

    def _join(self, rel: _Relation, unit: str, command: str | None) -> list[_Out]:
        rel.joined[unit] = rel.in_scope.get(unit)
        rel.joined_by[unit] = command
        return [(JOINED, rel, unit, rel.remote_app), (CHANGED, rel, unit, rel.remote_app)]

    def _unit_settings(self, rel: _Relation, unit: str, sha: str | None, command: str | None) -> list[_Out]:
        if unit not in rel.in_scope:
            return []
        rel.in_scope[unit] = sha
        if unit not in rel.joined:
            return []
        rel.joined[unit] = sha
        if command is not None and rel.joined_by.get(unit) == command:
            return []  # written with the entry: the first relation-changed covers it
        return [(CHANGED, rel, unit, rel.remote_app)]

    def _app_settings(self, rel: _Relation, app: str, sha: str | None) -> list[_Out]:
        rel.app_hash[app] = sha
        if not rel.local_in_scope or app not in self._followed_apps(rel):
            return []
        rel.app_seen[app] = sha
        return [(CHANGED, rel, None, app)]

    def _maybe_broken(self, rel: _Relation) -> list[_Out]:
        if rel.dying and not rel.joined and not rel.broken:
            rel.broken = True
            return [(BROKEN, rel, None, rel.remote_app)]
        return []


def _hooks(out: list[_Out], seq: int, base: int) -> list[Hook]:
    return [
        Hook(hook, rel.id, rel.endpoint, app, unit, seq, base + i)
        for i, (hook, rel, unit, app) in enumerate(out)
    ]


def _get(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, dict) else None


def with_state(hooks: list[Hook], machine: UnitHooks, **extra: Any) -> Iterator[Hook]:
    """Each hook with the machine's state once it has run (the rest of its hooks pending)."""
    for i, hook in enumerate(hooks):
        yield replace(hook, state=machine.to_state(hook.position, hooks[i + 1 :]) | extra)


async def follow_hooks(
    url: str,
    model: str,
    unit: str,
    *,
    after: tuple[int, int] | None = None,
    state: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> AsyncIterator[Hook]:
    """The unit's hooks, live, for ever; each carries the ``state`` to resume from. See
    :class:`client.hook_stream.HookStream` for where it starts (``state``, ``after`` or neither).
    """
    from client.hook_stream import HookStream  # the stream needs the broker client; the machine not

    stream = HookStream(url, model, unit, after=after, state=state, timeout=timeout)
    try:
        async for hook in stream:
            yield hook
    finally:
        await stream.close()
