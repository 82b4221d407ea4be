"""Which handler applies which command type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from handlers import (
    access,
    applications,
    events,
    integrate,
    models,
    relations,
    scope,
    settings,
    snapshot,
    status,
)
from handlers.outcome import Outcome

Handler = Callable[[Any, Any], Awaitable[Outcome]]
ActorHandler = Callable[[Any, Any, access.Actor], Awaitable[Outcome]]

# Handlers that act on what the acting user is: (connection, command, actor).
ACTOR_HANDLERS: dict[str, ActorHandler] = {
    "create_model": models.create_model,
    "list_models": access.list_models,
    "remove_model": access.remove_model,
    "grant": access.grant,
    "revoke": access.revoke,
    "list_access": access.list_access,
}

# Handlers of the relation domain: (connection, command).
HANDLERS: dict[str, Handler] = {
    "deploy": applications.deploy,
    "add_units": applications.add_units,
    "set_leader": applications.set_leader,
    "remove_unit": applications.remove_unit,
    "remove_application": applications.remove_application,
    "list_applications": applications.list_applications,
    "application_endpoints": applications.application_endpoints,
    "integrate": integrate.integrate,
    "remove_relation": relations.remove_relation,
    "get_relation": relations.get_relation,
    "list_relations": relations.list_relations,
    "relation_ids": relations.relation_ids,
    "relation_endpoint_uuid": relations.relation_endpoint_uuid,
    "unit_relations": relations.unit_relations,
    "enter_scope": scope.enter_scope,
    "leave_scope": scope.leave_scope,
    "relation_units": scope.relation_units,
    "set_unit_settings": settings.set_unit_settings,
    "set_application_settings": settings.set_application_settings,
    "get_unit_settings": settings.get_unit_settings,
    "get_application_settings": settings.get_application_settings,
    "set_relation_status": status.set_relation_status,
    "events_after": events.events_after,
    "snapshot": snapshot.snapshot,
}
