"""What a handler returns: its result and the changes it caused, for the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.events import Namespace


@dataclass(frozen=True, slots=True)
class Change:
    """One change a watcher could care about; the daemon numbers it and writes it to the outbox."""

    model_uuid: str
    namespace: Namespace
    kind: str
    key: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def relation_id(self) -> int | None:
        value = self.key.get("relation_id")
        return value if isinstance(value, int) else None


@dataclass(slots=True)
class Outcome:
    result: Any
    changes: list[Change] = field(default_factory=list)
