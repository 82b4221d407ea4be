"""Every command relationd accepts, one pydantic model each, told apart by ``type``.

A command is the JSON body of an AMQP message whose ``message_id`` is the command id. Unknown
fields are refused, types are strict, strings and maps are bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from contracts.charm import CharmMetadata
from contracts.errors import ErrorCode as E
from contracts.events import ChangeEvent
from contracts.names import (
    ApplicationName,
    EndpointRef,
    ModelName,
    ModelRef,
    RelationRef,
    UnitName,
)
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
from contracts.storable import BigIntCount, StorableText

SettingKey = Annotated[StorableText, StringConstraints(min_length=1, max_length=256)]
SettingValue = Annotated[StorableText, StringConstraints(max_length=65536)]
# A write to a settings bag: named keys are set, a key given "" is deleted, others stay.
Settings = Annotated[dict[SettingKey, SettingValue], Field(max_length=1000)]


class AccessLevel(StrEnum):
    """Model access, after Juju's: each level includes the ones before it."""

    read = "read"
    write = "write"
    admin = "admin"


# A broker user name, as RabbitMQ vouches for it in the message's user_id.
UserName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


class RelationStatus(StrEnum):
    joining = "joining"
    joined = "joined"
    broken = "broken"
    suspending = "suspending"
    suspended = "suspended"
    error = "error"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Reads run in a read-only transaction and are not deduplicated.
    read_only: ClassVar[bool] = False
    # Set by @declare: what the ok reply's result is, the access level the sender needs on the
    # command's model (None: any authenticated user) and every domain error code it may return.
    result_type: ClassVar[Any]
    access: ClassVar[AccessLevel | None]
    raises: ClassVar[frozenset[E]]


C = TypeVar("C", bound=type[_Command])

# What refusing access to a model's command can answer, added to each such declaration.
_ACCESS_ERRORS = (E.ModelNotFound, E.PermissionDenied)


def declare(result: Any, *, access: AccessLevel | None, raises: Iterable[E] = ()) -> Callable[[C], C]:
    """Declare a command's result type, needed access and domain error codes, in one place.

    A command that needs access to a model may also be refused with ModelNotFound and
    PermissionDenied; those are added here. Transport codes (InvalidCommand, Unauthorized,
    RateLimited, PayloadTooLarge of the body, Internal) can answer any command and are not listed.
    """

    def apply(cls: C) -> C:
        cls.result_type = result
        cls.access = access
        cls.raises = frozenset(raises) | (frozenset(_ACCESS_ERRORS) if access is not None else frozenset())
        return cls

    return apply


READ, WRITE, ADMIN = AccessLevel.read, AccessLevel.write, AccessLevel.admin


def declared_errors(cls: type[_Command]) -> list[str]:
    """The domain error codes ``cls`` declares, sorted: what the client, relctl and the AsyncAPI
    document list for it."""
    return sorted(code.value for code in cls.raises)


def access_help(cls: type[_Command]) -> str:
    """Who may send ``cls``, in a sentence."""
    if cls.access is None:
        return "Any authenticated user may send it."
    return f"Needs {cls.access.value} access to the model."


def errors_help(cls: type[_Command]) -> str:
    """``cls``'s declared error codes in a sentence ("" when it declares none)."""
    codes = declared_errors(cls)
    return f"Raises {', '.join(codes)}." if codes else ""


class _ModelCommand(_Command):
    model: ModelRef = Field(description="The model's name or UUID.")


# ---- models ---------------------------------------------------------------------------------


@declare(ModelInfo, access=None, raises=[E.ModelAlreadyExists])
class CreateModel(_Command):
    """Create a model (a tenant)."""

    type: Literal["create_model"] = "create_model"
    name: ModelName


@declare(list[ModelInfo], access=None)
class ListModels(_Command):
    """List every model."""

    type: Literal["list_models"] = "list_models"
    read_only: ClassVar[bool] = True


@declare(ModelInfo, access=ADMIN)
class RemoveModel(_ModelCommand):
    """Remove a model and everything in it (admin)."""

    type: Literal["remove_model"] = "remove_model"


# ---- access ---------------------------------------------------------------------------------


@declare(AccessInfo, access=ADMIN)
class Grant(_ModelCommand):
    """Give a broker user access to a model (admin). Raising a level never lowers it."""

    type: Literal["grant"] = "grant"
    user: UserName
    level: AccessLevel


@declare(AccessInfo, access=ADMIN)
class Revoke(_ModelCommand):
    """Take a level away, as `juju revoke` does: revoking write leaves read; read leaves none."""

    type: Literal["revoke"] = "revoke"
    user: UserName
    level: AccessLevel = AccessLevel.read


@declare(list[AccessInfo], access=None, raises=_ACCESS_ERRORS)
class ListAccess(_Command):
    """Who has what: on one model (admin), or on every model the caller administers."""

    type: Literal["list_access"] = "list_access"
    model: ModelRef | None = None
    read_only: ClassVar[bool] = True


# ---- applications and units -----------------------------------------------------------------


@declare(DeployResult, access=WRITE, raises=[E.ApplicationAlreadyExists, E.SubordinateUnitsNotAddable])
class Deploy(_ModelCommand):
    """Deploy an application from the relation parts of its charm metadata."""

    type: Literal["deploy"] = "deploy"
    application: ApplicationName
    charm: CharmMetadata
    units: int = Field(default=0, ge=0, le=1000)


@declare(
    UnitsResult,
    access=WRITE,
    raises=[E.ApplicationNotFound, E.ApplicationNotAlive, E.SubordinateUnitsNotAddable],
)
class AddUnits(_ModelCommand):
    """Add units to a principal application."""

    type: Literal["add_units"] = "add_units"
    application: ApplicationName
    count: int = Field(default=1, ge=1, le=1000)


@declare(LeaderResult, access=WRITE, raises=[E.UnitNotFound])
class SetLeader(_ModelCommand):
    """Make a unit its application's leader."""

    type: Literal["set_leader"] = "set_leader"
    unit: UnitName


@declare(LifeResult, access=WRITE, raises=[E.UnitNotFound])
class RemoveUnit(_ModelCommand):
    """Make a unit dying; it is removed once it is in no relation scope and has no subordinates."""

    type: Literal["remove_unit"] = "remove_unit"
    unit: UnitName


@declare(LifeResult, access=WRITE, raises=[E.ApplicationNotFound])
class RemoveApplication(_ModelCommand):
    """Make an application, its units and its relations dying."""

    type: Literal["remove_application"] = "remove_application"
    application: ApplicationName


# ---- relations ------------------------------------------------------------------------------


@declare(
    RelationInfo,
    access=WRITE,
    raises=[
        E.ApplicationNotFound,
        E.ApplicationNotAlive,
        E.CompatibleEndpointsNotFound,
        E.AmbiguousRelation,
        E.RelationAlreadyExists,
        E.ContainerScopeRequiresSubordinate,
        E.EndpointQuotaLimitExceeded,
        E.ApplicationNotFoundForRelation,
        E.PayloadTooLarge,
    ],
)
class Integrate(_ModelCommand):
    """Relate two applications: ``endpoints`` are two ``app[:endpoint]`` identifiers."""

    type: Literal["integrate"] = "integrate"
    endpoints: Annotated[list[EndpointRef], Field(min_length=2, max_length=2)]
    settings: Annotated[dict[ApplicationName, Settings], Field(max_length=2)] = Field(
        default_factory=dict, description="Initial application settings, by application name."
    )


@declare(
    RelationLifeResult,
    access=WRITE,
    raises=[
        E.RelationNotFound,
        E.ApplicationNotFound,
        E.AmbiguousRelation,
        E.CannotRemovePeerRelation,
        E.InvalidCommand,
    ],
)
class RemoveRelation(_ModelCommand):
    """Make a relation dying (status broken); removed once no unit is in its scope.

    Name it by ``relation`` (id or UUID) or by its two ``endpoints``.
    """

    type: Literal["remove_relation"] = "remove_relation"
    relation: RelationRef | None = None
    endpoints: Annotated[list[EndpointRef], Field(min_length=2, max_length=2)] | None = None


@declare(
    ScopeResult,
    access=WRITE,
    raises=[
        E.RelationNotFound,
        E.UnitNotFound,
        E.UnitNotInRelation,
        E.CannotEnterScopeNotAlive,
        E.CannotEnterScopeSubordinateNotAlive,
        E.PotentialRelationUnitNotValid,
        E.PayloadTooLarge,
    ],
)
class EnterScope(_ModelCommand):
    """A unit enters a relation's scope, optionally replacing its settings."""

    type: Literal["enter_scope"] = "enter_scope"
    relation: RelationRef
    unit: UnitName
    settings: Settings | None = None


@declare(ScopeResult, access=WRITE, raises=[E.RelationNotFound, E.UnitNotFound, E.UnitNotInRelation])
class LeaveScope(_ModelCommand):
    """A unit leaves a relation's scope."""

    type: Literal["leave_scope"] = "leave_scope"
    relation: RelationRef
    unit: UnitName


@declare(
    SettingsResult,
    access=WRITE,
    raises=[
        E.RelationNotFound,
        E.UnitNotFound,
        E.UnitNotInRelation,
        E.RelationUnitNotFound,
        E.PayloadTooLarge,
    ],
)
class SetUnitSettings(_ModelCommand):
    """Merge into a unit's settings in a relation (the unit must be in scope)."""

    type: Literal["set_unit_settings"] = "set_unit_settings"
    relation: RelationRef
    unit: UnitName
    settings: Settings


@declare(
    SettingsResult,
    access=WRITE,
    raises=[E.RelationNotFound, E.UnitNotFound, E.UnitNotInRelation, E.NotLeader, E.PayloadTooLarge],
)
class SetApplicationSettings(_ModelCommand):
    """Merge into the settings of ``unit``'s application in a relation; ``unit`` must lead."""

    type: Literal["set_application_settings"] = "set_application_settings"
    relation: RelationRef
    unit: UnitName
    settings: Settings


@declare(
    StatusResult,
    access=WRITE,
    raises=[
        E.RelationNotFound,
        E.UnitNotFound,
        E.UnitNotInRelation,
        E.NotLeader,
        E.RelationStatusTransitionNotValid,
    ],
)
class SetRelationStatus(_ModelCommand):
    """The leader ``unit`` sets the relation's status."""

    type: Literal["set_relation_status"] = "set_relation_status"
    relation: RelationRef
    unit: UnitName
    status: RelationStatus
    message: Annotated[StorableText, StringConstraints(max_length=1024)] = ""


# ---- reads ----------------------------------------------------------------------------------


class _Read(_ModelCommand):
    read_only: ClassVar[bool] = True


@declare(list[ApplicationInfo], access=READ)
class ListApplications(_Read):
    """Applications of a model with their units, leader and life."""

    type: Literal["list_applications"] = "list_applications"


@declare(RelationInfo, access=READ, raises=[E.RelationNotFound])
class GetRelation(_Read):
    """One relation's details, by id or UUID."""

    type: Literal["get_relation"] = "get_relation"
    relation: RelationRef


@declare(list[RelationInfo], access=READ, raises=[E.ApplicationNotFound])
class ListRelations(_Read):
    """All relations of a model, or of one application."""

    type: Literal["list_relations"] = "list_relations"
    application: ApplicationName | None = None


@declare(list[EndpointInfo], access=READ, raises=[E.ApplicationNotFound])
class ApplicationEndpoints(_Read):
    """An application's endpoints."""

    type: Literal["application_endpoints"] = "application_endpoints"
    application: ApplicationName


@declare(list[int], access=READ, raises=[E.ApplicationNotFound, E.RelationEndpointNotFound])
class RelationIds(_Read):
    """The ids of the relations on ``app:endpoint`` (``relation-ids``)."""

    type: Literal["relation_ids"] = "relation_ids"
    endpoint: EndpointRef


@declare(
    list[str],
    access=READ,
    raises=[E.RelationNotFound, E.UnitNotFound, E.UnitNotInRelation, E.ApplicationNotFoundForRelation],
)
class RelationUnits(_Read):
    """The units in a relation's scope, optionally of one application (``relation-list``).

    With ``as_unit``, as that unit sees them: in a container-scoped relation, only the units of
    its own container (a principal and its subordinates). Without it, every unit.
    """

    type: Literal["relation_units"] = "relation_units"
    relation: RelationRef
    application: ApplicationName | None = None
    as_unit: UnitName | None = None


@declare(
    dict[str, str],
    access=READ,
    raises=[E.RelationNotFound, E.UnitNotFound, E.UnitNotInRelation, E.RelationUnitNotFound],
)
class GetUnitSettings(_Read):
    """A unit's settings in a relation; ``as_unit`` checks the read as that unit's.

    A unit that left the scope is read from its archive: its last settings, until the relation is
    removed or it enters again. As ``as_unit``, in a container-scoped relation, only units of its
    own container are found.
    """

    type: Literal["get_unit_settings"] = "get_unit_settings"
    relation: RelationRef
    unit: UnitName
    as_unit: UnitName | None = None


@declare(
    dict[str, str],
    access=READ,
    raises=[
        E.RelationNotFound,
        E.ApplicationNotFound,
        E.ApplicationNotFoundForRelation,
        E.UnitNotFound,
        E.UnitNotInRelation,
        E.NotLeader,
    ],
)
class GetApplicationSettings(_Read):
    """An application's settings in a relation; ``as_unit`` checks the read as that unit's."""

    type: Literal["get_application_settings"] = "get_application_settings"
    relation: RelationRef
    application: ApplicationName
    as_unit: UnitName | None = None


@declare(
    str,
    access=READ,
    raises=[E.RelationNotFound, E.ApplicationNotFound, E.RelationEndpointNotFound],
)
class RelationEndpointUuid(_Read):
    """The relation endpoint UUID of an application in a relation."""

    type: Literal["relation_endpoint_uuid"] = "relation_endpoint_uuid"
    relation: RelationRef
    application: ApplicationName


@declare(list[UnitRelationInfo], access=READ, raises=[E.UnitNotFound])
class UnitRelations(_Read):
    """The relations a unit's application is in, with scope and suspension for the unit."""

    type: Literal["unit_relations"] = "unit_relations"
    unit: UnitName


@declare(list[ChangeEvent], access=READ, raises=[E.EventsExpired])
class EventsAfter(_Read):
    """The model's change events after sequence ``after`` (replay for watchers)."""

    type: Literal["events_after"] = "events_after"
    after: BigIntCount = 0
    limit: int = Field(default=1000, ge=1, le=10000)
    namespace: Annotated[StorableText, StringConstraints(max_length=64)] | None = None
    relation_id: BigIntCount | None = None


@declare(ModelSnapshot, access=READ, raises=[E.UnitNotFound])
class Snapshot(_Read):
    """What ``unit`` (or, without one, a watcher of the model) needs to know now, and the log
    position it corresponds to: relations, units in scope, settings hashes (resume without replay)."""

    type: Literal["snapshot"] = "snapshot"
    unit: UnitName | None = None


Command = Annotated[
    CreateModel
    | ListModels
    | RemoveModel
    | Grant
    | Revoke
    | ListAccess
    | Deploy
    | AddUnits
    | SetLeader
    | RemoveUnit
    | RemoveApplication
    | Integrate
    | RemoveRelation
    | EnterScope
    | LeaveScope
    | SetUnitSettings
    | SetApplicationSettings
    | SetRelationStatus
    | ListApplications
    | GetRelation
    | ListRelations
    | ApplicationEndpoints
    | RelationIds
    | RelationUnits
    | GetUnitSettings
    | GetApplicationSettings
    | RelationEndpointUuid
    | UnitRelations
    | EventsAfter
    | Snapshot,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)

COMMAND_TYPES: dict[str, type[_Command]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Command)[0])
}

AnyCommand = _Command
