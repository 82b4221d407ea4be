"""Stable error codes and the typed exceptions that carry them.

Clients match on ``code``; the message names the thing at fault. Codes after Juju's relation
domain errors; the extensions at the end cover conditions Juju leaves unnamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """Every error code a reply can carry. Part of the public contract: never rename."""

    ApplicationNotFound = "ApplicationNotFound"
    ApplicationNotAlive = "ApplicationNotAlive"
    UnitNotFound = "UnitNotFound"
    RelationNotFound = "RelationNotFound"
    RelationEndpointNotFound = "RelationEndpointNotFound"
    RelationUnitNotFound = "RelationUnitNotFound"
    ApplicationNotFoundForRelation = "ApplicationNotFoundForRelation"
    UnitNotInRelation = "UnitNotInRelation"
    CompatibleEndpointsNotFound = "CompatibleEndpointsNotFound"
    AmbiguousRelation = "AmbiguousRelation"
    RelationAlreadyExists = "RelationAlreadyExists"
    EndpointQuotaLimitExceeded = "EndpointQuotaLimitExceeded"
    ContainerScopeRequiresSubordinate = "ContainerScopeRequiresSubordinate"
    CannotEnterScopeNotAlive = "CannotEnterScopeNotAlive"
    CannotEnterScopeSubordinateNotAlive = "CannotEnterScopeSubordinateNotAlive"
    PotentialRelationUnitNotValid = "PotentialRelationUnitNotValid"
    RelationNotAlive = "RelationNotAlive"
    RelationStatusTransitionNotValid = "RelationStatusTransitionNotValid"
    NotLeader = "NotLeader"
    ModelNotFound = "ModelNotFound"
    Unauthorized = "Unauthorized"
    PermissionDenied = "PermissionDenied"
    # Transport.
    InvalidCommand = "InvalidCommand"
    UnknownCommand = "UnknownCommand"
    PayloadTooLarge = "PayloadTooLarge"
    Internal = "Internal"
    # Too many of the sender's commands waiting in a daemon instance; resend the same command id
    # after details.retry_after seconds (nothing was applied or stored).
    RateLimited = "RateLimited"
    # Extensions: conditions SPEC.md implies but Juju's relation domain does not name.
    ModelAlreadyExists = "ModelAlreadyExists"
    ApplicationAlreadyExists = "ApplicationAlreadyExists"
    CannotRemovePeerRelation = "CannotRemovePeerRelation"
    SubordinateUnitsNotAddable = "SubordinateUnitsNotAddable"
    # Replay from a position whose events retention has deleted: details name the oldest kept seq;
    # read a snapshot and follow from its seq instead.
    EventsExpired = "EventsExpired"


class RelationdError(Exception):
    """An error with a stable code, raised by handlers and re-raised by clients."""

    code: ClassVar[ErrorCode] = ErrorCode.Internal

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def _error_class(code: ErrorCode) -> type[RelationdError]:
    return type(code.value, (RelationdError,), {"code": code, "__doc__": f"Error {code.value}."})


ERROR_CLASSES: dict[ErrorCode, type[RelationdError]] = {c: _error_class(c) for c in ErrorCode}

# Named aliases so callers can write ``except RelationNotFound`` and type checkers see classes.
ApplicationNotFound = ERROR_CLASSES[ErrorCode.ApplicationNotFound]
ApplicationNotAlive = ERROR_CLASSES[ErrorCode.ApplicationNotAlive]
UnitNotFound = ERROR_CLASSES[ErrorCode.UnitNotFound]
RelationNotFound = ERROR_CLASSES[ErrorCode.RelationNotFound]
RelationEndpointNotFound = ERROR_CLASSES[ErrorCode.RelationEndpointNotFound]
RelationUnitNotFound = ERROR_CLASSES[ErrorCode.RelationUnitNotFound]
ApplicationNotFoundForRelation = ERROR_CLASSES[ErrorCode.ApplicationNotFoundForRelation]
UnitNotInRelation = ERROR_CLASSES[ErrorCode.UnitNotInRelation]
CompatibleEndpointsNotFound = ERROR_CLASSES[ErrorCode.CompatibleEndpointsNotFound]
AmbiguousRelation = ERROR_CLASSES[ErrorCode.AmbiguousRelation]
RelationAlreadyExists = ERROR_CLASSES[ErrorCode.RelationAlreadyExists]
EndpointQuotaLimitExceeded = ERROR_CLASSES[ErrorCode.EndpointQuotaLimitExceeded]
ContainerScopeRequiresSubordinate = ERROR_CLASSES[ErrorCode.ContainerScopeRequiresSubordinate]
CannotEnterScopeNotAlive = ERROR_CLASSES[ErrorCode.CannotEnterScopeNotAlive]
CannotEnterScopeSubordinateNotAlive = ERROR_CLASSES[ErrorCode.CannotEnterScopeSubordinateNotAlive]
PotentialRelationUnitNotValid = ERROR_CLASSES[ErrorCode.PotentialRelationUnitNotValid]
RelationNotAlive = ERROR_CLASSES[ErrorCode.RelationNotAlive]
RelationStatusTransitionNotValid = ERROR_CLASSES[ErrorCode.RelationStatusTransitionNotValid]
NotLeader = ERROR_CLASSES[ErrorCode.NotLeader]
ModelNotFound = ERROR_CLASSES[ErrorCode.ModelNotFound]
Unauthorized = ERROR_CLASSES[ErrorCode.Unauthorized]
PermissionDenied = ERROR_CLASSES[ErrorCode.PermissionDenied]
InvalidCommand = ERROR_CLASSES[ErrorCode.InvalidCommand]
UnknownCommand = ERROR_CLASSES[ErrorCode.UnknownCommand]
PayloadTooLarge = ERROR_CLASSES[ErrorCode.PayloadTooLarge]
Internal = ERROR_CLASSES[ErrorCode.Internal]
RateLimited = ERROR_CLASSES[ErrorCode.RateLimited]
ModelAlreadyExists = ERROR_CLASSES[ErrorCode.ModelAlreadyExists]
ApplicationAlreadyExists = ERROR_CLASSES[ErrorCode.ApplicationAlreadyExists]
CannotRemovePeerRelation = ERROR_CLASSES[ErrorCode.CannotRemovePeerRelation]
SubordinateUnitsNotAddable = ERROR_CLASSES[ErrorCode.SubordinateUnitsNotAddable]
EventsExpired = ERROR_CLASSES[ErrorCode.EventsExpired]


def error_from_dict(body: dict[str, Any]) -> RelationdError:
    """Rebuild the typed exception from a reply's ``error`` object (client side)."""
    try:
        cls = ERROR_CLASSES[ErrorCode(body["code"])]
    except (KeyError, ValueError):
        cls = Internal
    return cls(str(body.get("message", "")), **dict(body.get("details") or {}))
