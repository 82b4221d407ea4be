"""Replies and the typed results of commands.

A reply is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message"}}``,
published to the command's ``reply_to`` with its ``correlation_id``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.charm import Role, Scope


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Result):
    uuid: str
    name: str


class AccessInfo(_Result):
    model: str
    user: str
    level: str | None


class EndpointInfo(_Result):
    name: str
    role: Role
    interface: str
    scope: Scope
    limit: int | None
    optional: bool


class PeerRelationInfo(_Result):
    id: int
    key: str


class DeployResult(_Result):
    application: str
    subordinate: bool
    units: list[str]
    endpoints: list[EndpointInfo]
    peer_relations: list[PeerRelationInfo]


class UnitsResult(_Result):
    units: list[str]


class LeaderResult(_Result):
    leader: str


class LifeResult(_Result):
    name: str
    life: str


class ApplicationInfo(_Result):
    name: str
    life: str
    subordinate: bool
    leader: str | None
    units: list[str]


class RelationEndpointInfo(EndpointInfo):
    application: str
    relation_endpoint_uuid: str


class RelationInfo(_Result):
    id: int
    uuid: str
    key: str
    life: str
    status: str
    message: str
    scope: Scope
    interface: str
    endpoints: list[RelationEndpointInfo]
    units_in_scope: list[str] = Field(default_factory=list)


class RelationLifeResult(_Result):
    id: int
    life: str


class ScopeResult(_Result):
    id: int
    unit: str
    in_scope: bool
    created_units: list[str] = Field(default_factory=list)


class SettingsResult(_Result):
    changed: bool
    hash: str


class StatusResult(_Result):
    id: int
    status: str
    message: str


class UnitRelationInfo(_Result):
    id: int
    uuid: str
    key: str
    endpoint: str
    in_scope: bool
    suspended: bool
    life: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    details: dict[str, Any] | None = None


class OkReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: Literal[True] = True
    command_id: str
    type: str
    result: Any


class ErrorReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: Literal[False] = False
    command_id: str | None
    type: str | None
    error: ErrorBody
