"""The ids the schema's lookup tables give each named value: life, relation status, access level,
charm relation role and scope, one enum per table (tests/test_schema.py checks them against the
tables' rows).

SQL names them through these enums: as parameters where a value varies, and as a constant
formatted into the statement (``f"... life_id = {Life.dying:d}"``) where it does not, which keeps
the statement text, and so PostgreSQL's plans, what they were: a parameter in place of the
constant would stop a generic plan from using the partial indexes on dying rows (schema.sql).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Self


class StoredValue(IntEnum):
    """A lookup table row: the member's value is the row's id, its label the row's name."""

    @property
    def label(self) -> str:
        """The name the table stores (a member named after a Python keyword ends in ``_``)."""
        return self.name.rstrip("_")

    @classmethod
    def of(cls, label: str) -> Self:
        """The member whose label is ``label`` (a contract enum's value, e.g. ``Scope.global_``)."""
        return cls[label if label in cls.__members__ else f"{label}_"]


class Life(StoredValue):
    """Table ``life``: an application, unit or relation only moves forward through these."""

    alive = 0
    dying = 1
    dead = 2


class RelationStatusId(StoredValue):
    """Table ``relation_status_type``: contracts.commands.RelationStatus as stored."""

    joining = 0
    joined = 1
    broken = 2
    suspending = 3
    suspended = 4
    error = 5


class AccessLevelId(StoredValue):
    """Table ``access_level``: contracts.commands.AccessLevel as stored; a higher id allows more."""

    read = 0
    write = 1
    admin = 2


class RoleId(StoredValue):
    """Table ``charm_relation_role``: contracts.charm.Role as stored."""

    provider = 0
    requirer = 1
    peer = 2


class ScopeId(StoredValue):
    """Table ``charm_relation_scope``: contracts.charm.Scope as stored."""

    global_ = 0
    container = 1


LOOKUP_TABLES: dict[str, type[StoredValue]] = {
    "life": Life,
    "relation_status_type": RelationStatusId,
    "access_level": AccessLevelId,
    "charm_relation_role": RoleId,
    "charm_relation_scope": ScopeId,
}
