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

import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from contracts import commands as c
from contracts.commands import access_help, errors_help
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


M = TypeVar("M", bound=Callable[..., Any])


def sends(command: type[c.AnyCommand]) -> Callable[[M], M]:
    """Mark a method as the one sending ``command``, and complete its docstring with the access
    and the error codes the command declares (``contracts.commands.declare``)."""

    def mark(method: M) -> M:
        own = inspect.cleandoc(method.__doc__ or "")
        method.__doc__ = "\n\n".join(filter(None, (own, access_help(command), errors_help(command))))
        method.command = command  # type: ignore[attr-defined]
        return method

    return mark


class RelationCommands:
    """The typed command methods. Subclasses provide ``call``."""

    async def call(
        self, body: dict[str, Any], *, command_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def _run(
        self,
        command_class: type[c.AnyCommand],
        fields: dict[str, Any],
        command_id: str | None,
        timeout: float | None,
    ) -> Any:
        command = build_command({"type": command_class.model_fields["type"].default, **fields})
        wire = command.model_dump(mode="json", exclude_none=True)
        result = await self.call(wire, command_id=command_id, timeout=timeout)
        return RESULT_ADAPTERS[wire["type"]].validate_python(result)

    # ---- models and access ----------------------------------------------------------------

    @sends(c.CreateModel)
    async def create_model(
        self, name: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> ModelInfo:
        """Create a model; the caller becomes its admin."""
        return cast(ModelInfo, await self._run(c.CreateModel, {"name": name}, command_id, timeout))

    @sends(c.ListModels)
    async def list_models(
        self, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[ModelInfo]:
        """The models the caller may see, by name."""
        return cast(list[ModelInfo], await self._run(c.ListModels, {}, command_id, timeout))

    @sends(c.RemoveModel)
    async def remove_model(
        self, model: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> ModelInfo:
        """Remove a model and all it holds (admin)."""
        return cast(ModelInfo, await self._run(c.RemoveModel, {"model": model}, command_id, timeout))

    @sends(c.Grant)
    async def grant(
        self,
        model: str,
        user: str,
        level: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> AccessInfo:
        """Give ``user`` ``level`` (read, write, admin) on a model."""
        body = {"model": model, "user": user, "level": level}
        return cast(AccessInfo, await self._run(c.Grant, body, command_id, timeout))

    @sends(c.Revoke)
    async def revoke(
        self,
        model: str,
        user: str,
        level: str = "read",
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> AccessInfo:
        """Take ``level`` away from ``user``."""
        body = {"model": model, "user": user, "level": level}
        return cast(AccessInfo, await self._run(c.Revoke, body, command_id, timeout))

    @sends(c.ListAccess)
    async def list_access(
        self, model: str | None = None, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[AccessInfo]:
        """Who has what on ``model``, or on every model the caller administers."""
        return cast(list[AccessInfo], await self._run(c.ListAccess, {"model": model}, command_id, timeout))

    # ---- applications and units -----------------------------------------------------------

    @sends(c.Deploy)
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
        """Deploy ``application`` from charm metadata (a parsed metadata.yaml or charmcraft.yaml)."""
        body = {"model": model, "application": application, "charm": charm, "units": units}
        return cast(DeployResult, await self._run(c.Deploy, body, command_id, timeout))

    @sends(c.AddUnits)
    async def add_units(
        self,
        model: str,
        application: str,
        count: int = 1,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> UnitsResult:
        """Add ``count`` units."""
        body = {"model": model, "application": application, "count": count}
        return cast(UnitsResult, await self._run(c.AddUnits, body, command_id, timeout))

    @sends(c.SetLeader)
    async def set_leader(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LeaderResult:
        """Make ``unit`` its application's leader."""
        body = {"model": model, "unit": unit}
        return cast(LeaderResult, await self._run(c.SetLeader, body, command_id, timeout))

    @sends(c.RemoveUnit)
    async def remove_unit(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LifeResult:
        """Make ``unit`` dying (dead and removed once nothing holds it)."""
        body = {"model": model, "unit": unit}
        return cast(LifeResult, await self._run(c.RemoveUnit, body, command_id, timeout))

    @sends(c.RemoveApplication)
    async def remove_application(
        self, model: str, application: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> LifeResult:
        """Make an application, its units and relations dying."""
        body = {"model": model, "application": application}
        return cast(LifeResult, await self._run(c.RemoveApplication, body, command_id, timeout))

    # ---- relations -----------------------------------------------------------------------

    @sends(c.Integrate)
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
        """Relate two ``app[:endpoint]``s, optionally with initial application settings by app."""
        body: dict[str, Any] = {"model": model, "endpoints": [endpoint1, endpoint2]}
        if settings:
            body["settings"] = settings
        return cast(RelationInfo, await self._run(c.Integrate, body, command_id, timeout))

    @sends(c.RemoveRelation)
    async def remove_relation(
        self,
        model: str,
        relation: RelationRef | None = None,
        endpoints: tuple[str, str] | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> RelationLifeResult:
        """Make a relation dying, named by id/UUID or by its two endpoints."""
        body = {
            "model": model,
            "relation": relation,
            "endpoints": list(endpoints) if endpoints else None,
        }
        return cast(RelationLifeResult, await self._run(c.RemoveRelation, body, command_id, timeout))

    @sends(c.EnterScope)
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
        """``unit`` enters the relation's scope (settings, if given, replace its bag)."""
        body = {
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(ScopeResult, await self._run(c.EnterScope, body, command_id, timeout))

    @sends(c.LeaveScope)
    async def leave_scope(
        self,
        model: str,
        relation: RelationRef,
        unit: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> ScopeResult:
        """``unit`` leaves the relation's scope (idempotent)."""
        body = {"model": model, "relation": relation, "unit": unit}
        return cast(ScopeResult, await self._run(c.LeaveScope, body, command_id, timeout))

    @sends(c.SetUnitSettings)
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
        """Merge into ``unit``'s settings ("" deletes a key)."""
        body = {
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(SettingsResult, await self._run(c.SetUnitSettings, body, command_id, timeout))

    @sends(c.SetApplicationSettings)
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
        """The leader ``unit`` merges into its application's settings."""
        body = {
            "model": model,
            "relation": relation,
            "unit": unit,
            "settings": settings,
        }
        return cast(SettingsResult, await self._run(c.SetApplicationSettings, body, command_id, timeout))

    @sends(c.SetRelationStatus)
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
        """The leader ``unit`` sets the relation's status."""
        body = {
            "model": model,
            "relation": relation,
            "unit": unit,
            "status": status,
            "message": message,
        }
        return cast(StatusResult, await self._run(c.SetRelationStatus, body, command_id, timeout))

    # ---- reads ---------------------------------------------------------------------------

    @sends(c.ListApplications)
    async def list_applications(
        self, model: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[ApplicationInfo]:
        """Applications with their units, leader and life."""
        return cast(
            list[ApplicationInfo],
            await self._run(c.ListApplications, {"model": model}, command_id, timeout),
        )

    @sends(c.GetRelation)
    async def get_relation(
        self,
        model: str,
        relation: RelationRef,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> RelationInfo:
        """One relation with its endpoints and units in scope."""
        body = {"model": model, "relation": relation}
        return cast(RelationInfo, await self._run(c.GetRelation, body, command_id, timeout))

    @sends(c.ListRelations)
    async def list_relations(
        self,
        model: str,
        application: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> list[RelationInfo]:
        """Every relation of the model, or of one application."""
        body = {"model": model, "application": application}
        return cast(list[RelationInfo], await self._run(c.ListRelations, body, command_id, timeout))

    @sends(c.ApplicationEndpoints)
    async def application_endpoints(
        self, model: str, application: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[EndpointInfo]:
        """An application's endpoints."""
        body = {"model": model, "application": application}
        return cast(list[EndpointInfo], await self._run(c.ApplicationEndpoints, body, command_id, timeout))

    @sends(c.RelationIds)
    async def relation_ids(
        self, model: str, endpoint: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[int]:
        """Ids of the relations on ``app:endpoint`` (or on any endpoint of ``app``)."""
        body = {"model": model, "endpoint": endpoint}
        return cast(list[int], await self._run(c.RelationIds, body, command_id, timeout))

    @sends(c.RelationUnits)
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
        """Units in the relation's scope, optionally of one application; with ``as_unit``, as that unit sees
        them (in a container-scoped relation, its own container's only)."""
        body = {
            "model": model,
            "relation": relation,
            "application": application,
            "as_unit": as_unit,
        }
        return cast(list[str], await self._run(c.RelationUnits, body, command_id, timeout))

    @sends(c.GetUnitSettings)
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
        """A unit's settings (a unit that left: its last ones); with ``as_unit`` the read is checked as that
        unit's (in a container-scoped relation, its own container's units only)."""
        body = {
            "model": model,
            "relation": relation,
            "unit": unit,
            "as_unit": as_unit,
        }
        return cast(dict[str, str], await self._run(c.GetUnitSettings, body, command_id, timeout))

    @sends(c.GetApplicationSettings)
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
        """An application's settings; with ``as_unit`` the read is checked as that unit's."""
        body = {
            "model": model,
            "relation": relation,
            "application": application,
            "as_unit": as_unit,
        }
        return cast(dict[str, str], await self._run(c.GetApplicationSettings, body, command_id, timeout))

    @sends(c.RelationEndpointUuid)
    async def relation_endpoint_uuid(
        self,
        model: str,
        relation: RelationRef,
        application: str,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """The relation endpoint UUID of ``application`` in a relation."""
        body = {
            "model": model,
            "relation": relation,
            "application": application,
        }
        return cast(str, await self._run(c.RelationEndpointUuid, body, command_id, timeout))

    @sends(c.UnitRelations)
    async def unit_relations(
        self, model: str, unit: str, *, command_id: str | None = None, timeout: float | None = None
    ) -> list[UnitRelationInfo]:
        """The relations of ``unit``'s application, with scope and suspension."""
        return cast(
            list[UnitRelationInfo],
            await self._run(c.UnitRelations, {"model": model, "unit": unit}, command_id, timeout),
        )

    @sends(c.EventsAfter)
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
            "model": model,
            "after": after,
            "limit": limit,
            "namespace": namespace,
            "relation_id": relation_id,
        }
        return cast(list[ChangeEvent], await self._run(c.EventsAfter, body, command_id, timeout))

    @sends(c.Snapshot)
    async def snapshot(
        self,
        model: str,
        unit: str | None = None,
        *,
        command_id: str | None = None,
        timeout: float | None = None,
    ) -> ModelSnapshot:
        """What ``unit`` (or a watcher of the whole model) needs to know now, with the log position (``seq``)
        it corresponds to: follow events after ``seq`` to stay current."""
        body = {"model": model, "unit": unit}
        return cast(ModelSnapshot, await self._run(c.Snapshot, body, command_id, timeout))
