"""One typed method per relationd command, mixed into :class:`client.rpc.RelationClient`.

Each method builds its command from ``contracts.commands`` (so a bad argument is refused here
with ``InvalidCommand``, before anything is sent), sends it, and parses the result into the
``contracts.replies`` model of that command (``contracts.results.RESULT_TYPES``). A refusal is
raised as the typed exception of its code (``contracts.errors``); no reply in time raises
``DaemonUnreachable``.

Every method takes ``command_id`` and ``timeout``. Sending a command again with the same
``command_id`` is safe: the daemon applies it once and answers every copy with the same reply
(reads change nothing, so their id only names the call in the daemon's log).
"""

from __future__ import annotations

import json
from typing import Any, cast

from pydantic import ValidationError

from contracts import commands as c
from contracts.errors import InvalidCommand
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
from contracts.results import RESULT_ADAPTERS
from contracts.snapshot import ModelSnapshot

RelationRef = int | str


class InvalidArgument(InvalidCommand):
    """A command refused by the client itself, before sending it: an argument the daemon would
    refuse (same code, InvalidCommand)."""


def build_command(body: dict[str, Any]) -> c.AnyCommand:
    """Validate a command body as the daemon will (JSON rules); raise InvalidArgument if it fails."""
    try:
        command: c.AnyCommand = c.COMMAND_ADAPTER.validate_json(json.dumps(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"][1:]) or "body"
        raise InvalidArgument(f"{field}: {first['msg']}", field=field) from None
    return command


class RelationCommands:
    """The typed command methods. Subclasses provide ``call``."""

    async def call(
        self, body: dict[str, Any], *, command_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def _run(self, body: dict[str, Any], command_id: str | None, timeout: float | None) -> Any:
        command = build_command(body)
        wire = command.model_dump(mode="json", exclude_none=True)
        result = await self.call(wire, command_id=command_id, timeout=timeout)
        return RESULT_ADAPTERS[wire["type"]].validate_python(result)

    # ---- models and access ----------------------------------------------------------------

    async def create_model(
        self, name: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> ModelInfo:
        """Create a model; the caller becomes its admin. Raises ModelAlreadyExists."""
        return cast(ModelInfo, await self._run({"type": "create_model", "name": name}, command_id, timeout))

    async def list_models(
        self, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[ModelInfo]:
        """The models the caller may see, by name."""
        return cast(list[ModelInfo], await self._run({"type": "list_models"}, command_id, timeout))

    async def remove_model(
        self, model: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> ModelInfo:
        """Remove a model and all it holds (admin). Raises ModelNotFound, PermissionDenied."""
        return cast(ModelInfo, await self._run({"type": "remove_model", "model": model}, command_id, timeout))

    async def grant(
        self,
        model: str,
        user: str,
        level: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> AccessInfo:
        """Give ``user`` ``level`` (read, write, admin) on a model. Raises ModelNotFound,
        PermissionDenied."""
        body = {"type": "grant", "model": model, "user": user, "level": level}
        return cast(AccessInfo, await self._run(body, command_id, timeout))

    async def revoke(
        self,
        model: str,
        user: str,
        level: str = "read",
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> AccessInfo:
        """Take ``level`` away from ``user``. Raises ModelNotFound, PermissionDenied."""
        body = {"type": "revoke", "model": model, "user": user, "level": level}
        return cast(AccessInfo, await self._run(body, command_id, timeout))

    async def list_access(
        self, model: str | None = None, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[AccessInfo]:
        """Who has what on ``model``, or on every model the caller administers."""
        return cast(
            list[AccessInfo], await self._run({"type": "list_access", "model": model}, command_id, timeout)
        )

    # ---- applications and units -----------------------------------------------------------

    async def deploy(
        self,
        model: str,
        application: str,
        charm: dict[str, Any],
        units: int = 0,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> DeployResult:
        """Deploy ``application`` from charm metadata (a parsed metadata.yaml or charmcraft.yaml).

        Raises ModelNotFound, ApplicationAlreadyExists, SubordinateUnitsNotAddable, InvalidCommand.
        """
        body = {"type": "deploy", "model": model, "application": application, "charm": charm, "units": units}
        return cast(DeployResult, await self._run(body, command_id, timeout))

    async def add_units(
        self,
        model: str,
        application: str,
        count: int = 1,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> UnitsResult:
        """Add ``count`` units. Raises ModelNotFound, ApplicationNotFound, ApplicationNotAlive,
        SubordinateUnitsNotAddable."""
        body = {"type": "add_units", "model": model, "application": application, "count": count}
        return cast(UnitsResult, await self._run(body, command_id, timeout))

    async def set_leader(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LeaderResult:
        """Make ``unit`` its application's leader. Raises ModelNotFound, UnitNotFound."""
        body = {"type": "set_leader", "model": model, "unit": unit}
        return cast(LeaderResult, await self._run(body, command_id, timeout))

    async def remove_unit(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LifeResult:
        """Make ``unit`` dying (dead and removed once nothing holds it). Raises ModelNotFound,
        UnitNotFound."""
        body = {"type": "remove_unit", "model": model, "unit": unit}
        return cast(LifeResult, await self._run(body, command_id, timeout))

    async def remove_application(
        self, model: str, application: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LifeResult:
        """Make an application, its units and relations dying. Raises ModelNotFound,
        ApplicationNotFound."""
        body = {"type": "remove_application", "model": model, "application": application}
        return cast(LifeResult, await self._run(body, command_id, timeout))

    # ---- relations -----------------------------------------------------------------------

    async def integrate(
        self,
        model: str,
        endpoint1: str,
        endpoint2: str,
        settings: dict[str, dict[str, str]] | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> RelationInfo:
        """Relate two ``app[:endpoint]``s, optionally with initial application settings by app.

        Raises ModelNotFound, ApplicationNotFound, ApplicationNotAlive, CompatibleEndpointsNotFound,
        AmbiguousRelation, RelationAlreadyExists, ContainerScopeRequiresSubordinate,
        EndpointQuotaLimitExceeded.
        """
        body: dict[str, Any] = {"type": "integrate", "model": model, "endpoints": [endpoint1, endpoint2]}
        if settings:
            body["settings"] = settings
        return cast(RelationInfo, await self._run(body, command_id, timeout))

    async def remove_relation(
        self,
        model: str,
        relation: RelationRef | None = None,
        endpoints: tuple[str, str] | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> RelationLifeResult:
        """Make a relation dying, named by id/UUID or by its two endpoints.

        Raises ModelNotFound, RelationNotFound, CannotRemovePeerRelation.
        """
        body = {
            "type": "remove_relation",
            "model": model,
            "relation": relation,
            "endpoints": list(endpoints) if endpoints else None,
        }
        return cast(RelationLifeResult, await self._run(body, command_id, timeout))

    async def enter_scope(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        settings: dict[str, str] | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> ScopeResult:
        """``unit`` enters the relation's scope (settings, if given, replace its bag).

        Raises ModelNotFound, RelationNotFound, UnitNotFound, UnitNotInRelation,
        CannotEnterScopeNotAlive, CannotEnterScopeSubordinateNotAlive, PotentialRelationUnitNotValid.
        """
        body = {
            "type": "enter_scope",
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(ScopeResult, await self._run(body, command_id, timeout))

    async def leave_scope(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> ScopeResult:
        """``unit`` leaves the relation's scope (idempotent). Raises ModelNotFound,
        RelationNotFound, UnitNotFound."""
        body = {"type": "leave_scope", "model": model, "relation": relation, "unit": unit}
        return cast(ScopeResult, await self._run(body, command_id, timeout))

    async def set_unit_settings(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        settings: dict[str, str],
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> SettingsResult:
        """Merge into ``unit``'s settings ("" deletes a key). Raises RelationNotFound,
        UnitNotFound, RelationUnitNotFound, PayloadTooLarge."""
        body = {
            "type": "set_unit_settings",
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(SettingsResult, await self._run(body, command_id, timeout))

    async def set_application_settings(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        settings: dict[str, str],
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> SettingsResult:
        """The leader ``unit`` merges into its application's settings. Raises NotLeader,
        RelationNotFound, UnitNotFound, UnitNotInRelation, PayloadTooLarge."""
        body = {
            "type": "set_application_settings",
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(SettingsResult, await self._run(body, command_id, timeout))

    async def set_relation_status(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        status: str,
        message: str = "",
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> StatusResult:
        """The leader ``unit`` sets the relation's status. Raises NotLeader, RelationNotFound,
        RelationStatusTransitionNotValid."""
        body = {
            "type": "set_relation_status",
            "model": model,
            "relation": relation,
            "unit": unit,
            "status": status,
            "message": message,
        }
        return cast(StatusResult, await self._run(body, command_id, timeout))

    # ---- reads ---------------------------------------------------------------------------

    async def list_applications(
        self, model: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[ApplicationInfo]:
        """Applications with their units, leader and life. Raises ModelNotFound."""
        return cast(
            list[ApplicationInfo],
            await self._run({"type": "list_applications", "model": model}, command_id, timeout),
        )

    async def get_relation(
        self,
        model: str,
        relation: RelationRef,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> RelationInfo:
        """One relation with its endpoints and units in scope. Raises RelationNotFound."""
        body = {"type": "get_relation", "model": model, "relation": relation}
        return cast(RelationInfo, await self._run(body, command_id, timeout))

    async def list_relations(
        self,
        model: str,
        application: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> list[RelationInfo]:
        """Every relation of the model, or of one application. Raises ApplicationNotFound."""
        body = {"type": "list_relations", "model": model, "application": application}
        return cast(list[RelationInfo], await self._run(body, command_id, timeout))

    async def application_endpoints(
        self, model: str, application: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[EndpointInfo]:
        """An application's endpoints. Raises ApplicationNotFound."""
        body = {"type": "application_endpoints", "model": model, "application": application}
        return cast(list[EndpointInfo], await self._run(body, command_id, timeout))

    async def relation_ids(
        self, model: str, endpoint: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[int]:
        """Ids of the relations on ``app:endpoint`` (or on any endpoint of ``app``).

        Raises ApplicationNotFound, RelationEndpointNotFound.
        """
        body = {"type": "relation_ids", "model": model, "endpoint": endpoint}
        return cast(list[int], await self._run(body, command_id, timeout))

    async def relation_units(
        self,
        model: str,
        relation: RelationRef,
        application: str | None = None,
        as_unit: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> list[str]:
        """Units in the relation's scope, optionally of one application; with ``as_unit``, as that
        unit sees them (in a container-scoped relation, its own container's only).

        Raises RelationNotFound, UnitNotFound, UnitNotInRelation, ApplicationNotFoundForRelation.
        """
        body = {
            "type": "relation_units",
            "model": model,
            "relation": relation,
            "application": application,
            "as_unit": as_unit,
        }
        return cast(list[str], await self._run(body, command_id, timeout))

    async def get_unit_settings(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        as_unit: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, str]:
        """A unit's settings (a unit that left: its last ones); with ``as_unit`` the read is
        checked as that unit's (in a container-scoped relation, its own container's units only).

        Raises RelationNotFound, UnitNotFound, UnitNotInRelation, RelationUnitNotFound.
        """
        body = {
            "type": "get_unit_settings",
            "model": model,
            "relation": relation,
            "unit": unit,
            "as_unit": as_unit,
        }
        return cast(dict[str, str], await self._run(body, command_id, timeout))

    async def get_application_settings(
        self,
        model: str,
        relation: RelationRef,
        application: str,
        as_unit: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, str]:
        """An application's settings; with ``as_unit`` the read is checked as that unit's.

        Raises RelationNotFound, ApplicationNotFound, ApplicationNotFoundForRelation,
        UnitNotInRelation, NotLeader.
        """
        body = {
            "type": "get_application_settings",
            "model": model,
            "relation": relation,
            "application": application,
            "as_unit": as_unit,
        }
        return cast(dict[str, str], await self._run(body, command_id, timeout))

    async def relation_endpoint_uuid(
        self,
        model: str,
        relation: RelationRef,
        application: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """The relation endpoint UUID of ``application`` in a relation.

        Raises ApplicationNotFound, RelationNotFound, RelationEndpointNotFound.
        """
        body = {
            "type": "relation_endpoint_uuid",
            "model": model,
            "relation": relation,
            "application": application,
        }
        return cast(str, await self._run(body, command_id, timeout))

    async def unit_relations(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[UnitRelationInfo]:
        """The relations of ``unit``'s application, with scope and suspension. Raises UnitNotFound."""
        return cast(
            list[UnitRelationInfo],
            await self._run({"type": "unit_relations", "model": model, "unit": unit}, command_id, timeout),
        )

    async def events_after(
        self,
        model: str,
        after: int = 0,
        *,
        limit: int = 1000,
        namespace: str | None = None,
        relation_id: int | None = None,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> list[ChangeEvent]:
        """At most ``limit`` change events with ``seq > after``, in order (replay).

        For a stream that replays and then follows live, see :func:`client.watch.watch`.
        """
        body = {
            "type": "events_after",
            "model": model,
            "after": after,
            "limit": limit,
            "namespace": namespace,
            "relation_id": relation_id,
        }
        return cast(list[ChangeEvent], await self._run(body, command_id, timeout))

    async def snapshot(
        self,
        model: str,
        unit: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> ModelSnapshot:
        """What ``unit`` (or a watcher of the whole model) needs to know now, with the log position
        (``seq``) it corresponds to: follow events after ``seq`` to stay current.

        Raises ModelNotFound, UnitNotFound.
        """
        body = {"type": "snapshot", "model": model, "unit": unit}
        return cast(ModelSnapshot, await self._run(body, command_id, timeout))
