"""The snapshot read's result: what a unit (or a watcher of a model) needs to know now, and the
log position it corresponds to.

A consumer that lost its place in the log (or never had one) reads a snapshot, works out what
changed since its own record, and follows the events with ``seq`` greater than the snapshot's.
Settings travel as hashes only: a consumer that needs the values reads them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.charm import Role, Scope


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnapshotEndpoint(_Part):
    application: str
    name: str
    role: Role
    interface: str


class UnitInScope(_Part):
    """A unit in a relation's scope and the hash of its settings there (None: never written)."""

    name: str
    settings_hash: str | None


class ApplicationBag(_Part):
    """The hash of an application's settings in a relation (None: never written)."""

    application: str
    settings_hash: str | None


class SnapshotRelation(_Part):
    id: int
    uuid: str
    key: str
    life: str
    status: str
    message: str
    scope: Scope
    peer: bool
    endpoints: list[SnapshotEndpoint]
    in_scope: bool | None = Field(
        default=None, description="Whether the snapshot's unit is in scope (None for a model's snapshot)."
    )
    units: list[UnitInScope] = Field(
        default_factory=list,
        description="Units in scope: for a unit, the others it can see (its own container only "
        "in a container-scoped relation); for a model, all of them.",
    )
    application_settings: list[ApplicationBag] = Field(default_factory=list)


class ModelSnapshot(_Part):
    model_uuid: str
    seq: int = Field(description="The model's last event seq at the snapshot: follow from seq + 1.")
    unit: str | None = None
    leader: bool | None = Field(default=None, description="Whether the unit leads its application.")
    principal: str | None = Field(default=None, description="The unit's principal, for a subordinate.")
    container: list[str] = Field(
        default_factory=list,
        description="The units of the unit's container: its principal and the principal's subordinates.",
    )
    relations: list[SnapshotRelation]
