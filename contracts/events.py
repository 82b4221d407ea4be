"""Change events: what watchers receive on the events exchange and from replay.

Namespaces are named after what changed, as Juju's watcher namespaces are named after tables.
They, the kinds and the routing key format are part of the public contract.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Namespace(StrEnum):
    model = "model"
    model_access = "model_access"
    application = "application"
    unit = "unit"
    application_endpoint = "application_endpoint"
    relation = "relation"
    relation_status = "relation_status"
    relation_unit = "relation_unit"
    relation_unit_setting = "relation_unit_setting"
    relation_application_setting = "relation_application_setting"


# The kinds each namespace emits.
KINDS: dict[Namespace, tuple[str, ...]] = {
    Namespace.model: ("created", "removed"),
    Namespace.model_access: ("granted", "revoked"),
    Namespace.application: ("deployed", "life", "leader", "removed"),
    Namespace.unit: ("added", "life", "removed"),
    Namespace.application_endpoint: ("created", "removed"),
    Namespace.relation: ("created", "life", "removed"),
    Namespace.relation_status: ("changed",),
    Namespace.relation_unit: ("entered", "left"),
    Namespace.relation_unit_setting: ("changed",),
    Namespace.relation_application_setting: ("changed",),
}

NO_RELATION = "_"


def routing_key(model_uuid: str, namespace: str, relation_id: int | None) -> str:
    """``<model-uuid>.<namespace>.<relation-id or _>``.

    Bind ``<model>.#`` for one model, ``*.<namespace>.*`` for one namespace everywhere,
    ``<model>.*.<id>`` for one relation.
    """
    rel = NO_RELATION if relation_id is None else str(relation_id)
    return f"{model_uuid}.{namespace}.{rel}"


def binding_key(model_uuid: str | None, namespace: str | None, relation_id: int | None) -> str:
    """The topic binding that selects one model, namespace and/or relation (None = any)."""
    parts = [model_uuid or "*", namespace or "*", "*" if relation_id is None else str(relation_id)]
    return ".".join(parts)


class ChangeEvent(BaseModel):
    """One committed change. ``event_id`` only grows; ``seq`` is gapless per model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: int
    model_uuid: str
    seq: int
    namespace: Namespace
    kind: str
    key: dict[str, Any]
    payload: dict[str, Any]
    command_id: str | None = None
    created_at: datetime

    @property
    def relation_id(self) -> int | None:
        value = self.key.get("relation_id")
        return value if isinstance(value, int) else None

    @property
    def routing_key(self) -> str:
        return routing_key(self.model_uuid, self.namespace, self.relation_id)
