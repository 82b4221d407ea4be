"""What each command's ok reply carries in ``result``, by command type.

One table shared by the client (to parse replies into typed results) and the AsyncAPI document
(to give every reply its schema), so the two cannot disagree.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from contracts.events import ChangeEvent
from contracts.replies import (
    AccessInfo,
    ApplicationInfo,
    DeployResult,
    EndpointInfo,
    LeaderResult,
    LifeResult,
    ModelInfo,
    RelationInfo,
    RelationLifeResult,
    ScopeResult,
    SettingsResult,
    StatusResult,
    UnitRelationInfo,
    UnitsResult,
)
from contracts.snapshot import ModelSnapshot

RESULT_TYPES: dict[str, Any] = {
    "create_model": ModelInfo,
    "list_models": list[ModelInfo],
    "remove_model": ModelInfo,
    "grant": AccessInfo,
    "revoke": AccessInfo,
    "list_access": list[AccessInfo],
    "deploy": DeployResult,
    "add_units": UnitsResult,
    "set_leader": LeaderResult,
    "remove_unit": LifeResult,
    "remove_application": LifeResult,
    "integrate": RelationInfo,
    "remove_relation": RelationLifeResult,
    "enter_scope": ScopeResult,
    "leave_scope": ScopeResult,
    "set_unit_settings": SettingsResult,
    "set_application_settings": SettingsResult,
    "set_relation_status": StatusResult,
    "list_applications": list[ApplicationInfo],
    "get_relation": RelationInfo,
    "list_relations": list[RelationInfo],
    "application_endpoints": list[EndpointInfo],
    "relation_ids": list[int],
    "relation_units": list[str],
    "get_unit_settings": dict[str, str],
    "get_application_settings": dict[str, str],
    "relation_endpoint_uuid": str,
    "unit_relations": list[UnitRelationInfo],
    "events_after": list[ChangeEvent],
    "snapshot": ModelSnapshot,
}

RESULT_ADAPTERS: dict[str, TypeAdapter[Any]] = {name: TypeAdapter(t) for name, t in RESULT_TYPES.items()}
