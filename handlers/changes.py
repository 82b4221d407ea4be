"""Builders for the changes each namespace emits, so every handler keys them the same way."""

from __future__ import annotations

from typing import Any

from contracts.events import Namespace
from contracts.names import unit_application
from handlers.outcome import Change
from handlers.rows import RelationKey


def relation(model_uuid: str, rel: RelationKey, kind: str, **payload: Any) -> Change:
    return Change(model_uuid, Namespace.relation, kind, _relation_key(rel), payload)


def relation_status(model_uuid: str, rel: RelationKey, status: str, message: str) -> Change:
    return Change(
        model_uuid,
        Namespace.relation_status,
        "changed",
        _relation_key(rel),
        {"status": status, "message": message},
    )


def relation_unit(model_uuid: str, rel: RelationKey, unit: str, kind: str, endpoint: str) -> Change:
    key = _relation_key(rel) | {"unit": unit, "application": unit_application(unit)}
    return Change(model_uuid, Namespace.relation_unit, kind, key, {"endpoint": endpoint})


def unit_settings(model_uuid: str, rel: RelationKey, unit: str, sha256: str) -> Change:
    key = _relation_key(rel) | {"unit": unit, "application": unit_application(unit)}
    return Change(model_uuid, Namespace.relation_unit_setting, "changed", key, {"hash": sha256})


def application_settings(model_uuid: str, rel: RelationKey, application: str, sha256: str) -> Change:
    key = _relation_key(rel) | {"application": application}
    return Change(model_uuid, Namespace.relation_application_setting, "changed", key, {"hash": sha256})


def application(model_uuid: str, name: str, kind: str, **payload: Any) -> Change:
    return Change(model_uuid, Namespace.application, kind, {"application": name}, payload)


def application_endpoints(model_uuid: str, name: str, kind: str, **payload: Any) -> Change:
    return Change(model_uuid, Namespace.application_endpoint, kind, {"application": name}, payload)


def unit(model_uuid: str, name: str, kind: str, **payload: Any) -> Change:
    key = {"unit": name, "application": unit_application(name)}
    return Change(model_uuid, Namespace.unit, kind, key, payload)


def _relation_key(rel: RelationKey) -> dict[str, Any]:
    return {"relation_uuid": rel.uuid, "relation_id": rel.relation_id, "key": rel.key}
