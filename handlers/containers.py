"""Containers: in a container-scoped relation a unit sees only the units of its own container.

A container is a principal unit and the subordinate units created for it (Juju's per-container
relation scope). Peer relations are seen whole, as client/hooks.py joins them.
"""

from __future__ import annotations

from contracts.charm import Scope
from handlers.rows import Relation, Unit


def per_container(rel: Relation) -> bool:
    """Whether units of the relation see only their own container's units in it."""
    return rel.scope == Scope.container and not rel.is_peer


def of_unit(unit: Unit) -> str:
    """The unit's container: its principal unit's uuid, or its own for a principal unit."""
    return unit.principal_uuid or unit.uuid


def seen_from(rel: Relation, unit: Unit) -> str | None:
    """The container ``unit`` is limited to in the relation, or None when it sees the whole scope."""
    return of_unit(unit) if per_container(rel) else None
