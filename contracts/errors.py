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


class ApplicationNotFound(RelationdError):
    """No application of that name in the model."""

    code = ErrorCode.ApplicationNotFound


class ApplicationNotAlive(RelationdError):
    """The application is dying or dead: no new units or relations for it."""

    code = ErrorCode.ApplicationNotAlive


class UnitNotFound(RelationdError):
    """No unit of that name in the model."""

    code = ErrorCode.UnitNotFound


class RelationNotFound(RelationdError):
    """No relation with that id or UUID (or those two endpoints) in the model."""

    code = ErrorCode.RelationNotFound


class RelationEndpointNotFound(RelationdError):
    """The application has no endpoint of that name, or takes no part in the relation."""

    code = ErrorCode.RelationEndpointNotFound


class RelationUnitNotFound(RelationdError):
    """The unit is not in the relation's scope and left no archived settings there; or, read
    as ``as_unit`` in a container-scoped relation, it is in another container."""

    code = ErrorCode.RelationUnitNotFound


class ApplicationNotFoundForRelation(RelationdError):
    """The named application takes no part in the relation (settings given or read for a
    third application)."""

    code = ErrorCode.ApplicationNotFoundForRelation


class UnitNotInRelation(RelationdError):
    """The unit's application takes no part in the relation."""

    code = ErrorCode.UnitNotInRelation


class CompatibleEndpointsNotFound(RelationdError):
    """integrate found no pair of endpoints of matching interface and opposite roles."""

    code = ErrorCode.CompatibleEndpointsNotFound


class AmbiguousRelation(RelationdError):
    """integrate (or remove_relation by endpoints) matches more than one pair of endpoints."""

    code = ErrorCode.AmbiguousRelation


class RelationAlreadyExists(RelationdError):
    """integrate names two endpoints that are already related."""

    code = ErrorCode.RelationAlreadyExists


class EndpointQuotaLimitExceeded(RelationdError):
    """integrate would exceed an endpoint's declared limit of relations."""

    code = ErrorCode.EndpointQuotaLimitExceeded


class ContainerScopeRequiresSubordinate(RelationdError):
    """A container-scoped relation needs a subordinate application on one side."""

    code = ErrorCode.ContainerScopeRequiresSubordinate


class CannotEnterScopeNotAlive(RelationdError):
    """The unit or the relation is dying or dead: it cannot enter the relation's scope."""

    code = ErrorCode.CannotEnterScopeNotAlive


class CannotEnterScopeSubordinateNotAlive(RelationdError):
    """A principal unit entering a container-scoped relation would create a subordinate
    of an application that is not alive."""

    code = ErrorCode.CannotEnterScopeSubordinateNotAlive


class PotentialRelationUnitNotValid(RelationdError):
    """The unit cannot be in the relation's scope: in a container-scoped relation, a
    subordinate of another principal."""

    code = ErrorCode.PotentialRelationUnitNotValid


class RelationNotAlive(RelationdError):
    """The relation is dying or dead. Reserved: Juju names it, no command returns it yet."""

    code = ErrorCode.RelationNotAlive


class RelationStatusTransitionNotValid(RelationdError):
    """set_relation_status asks for a status that may not follow the current one, or for
    error without a message."""

    code = ErrorCode.RelationStatusTransitionNotValid


class NotLeader(RelationdError):
    """The unit must lead its application for this (application settings, relation status)."""

    code = ErrorCode.NotLeader


class ModelNotFound(RelationdError):
    """No model of that name or UUID (answered before access is checked)."""

    code = ErrorCode.ModelNotFound


class Unauthorized(RelationdError):
    """The command carries no user_id and the daemon does not accept anonymous commands; also
    raised by clients whose credentials the broker refuses."""

    code = ErrorCode.Unauthorized


class PermissionDenied(RelationdError):
    """The acting user lacks the access level the command needs on its model."""

    code = ErrorCode.PermissionDenied


class InvalidCommand(RelationdError):
    """The message is not a valid command: bad JSON, unknown or missing field, a value out of
    bounds, a command id used for another command, or headers that do not decode."""

    code = ErrorCode.InvalidCommand


class UnknownCommand(RelationdError):
    """The command's ``type`` names no command."""

    code = ErrorCode.UnknownCommand


class PayloadTooLarge(RelationdError):
    """The message body, or a settings bag after the write, is over its size limit."""

    code = ErrorCode.PayloadTooLarge


class Internal(RelationdError):
    """An unexpected failure applying the command; ``details.error_id`` names it in the log.
    Also what a client makes of a code it does not know."""

    code = ErrorCode.Internal


class RateLimited(RelationdError):
    """Too many of the sender's commands wait in this daemon instance; resend the same command
    id after ``details.retry_after`` seconds (nothing was applied or stored)."""

    code = ErrorCode.RateLimited


class ModelAlreadyExists(RelationdError):
    """create_model names a model that exists."""

    code = ErrorCode.ModelAlreadyExists


class ApplicationAlreadyExists(RelationdError):
    """deploy names an application the model already has."""

    code = ErrorCode.ApplicationAlreadyExists


class CannotRemovePeerRelation(RelationdError):
    """remove_relation names a peer relation, which lives as long as its application."""

    code = ErrorCode.CannotRemovePeerRelation


class SubordinateUnitsNotAddable(RelationdError):
    """Units are asked of a subordinate application; its units come with relations to
    principals."""

    code = ErrorCode.SubordinateUnitsNotAddable


class EventsExpired(RelationdError):
    """A replay from a position whose events retention has deleted; ``details.oldest_kept_seq``
    names the oldest kept. Read a snapshot and follow from its seq instead."""

    code = ErrorCode.EventsExpired


ERROR_CLASSES: dict[ErrorCode, type[RelationdError]] = {
    cls.code: cls for cls in RelationdError.__subclasses__()
}
"""The exception class of each code, for rebuilding a reply's error (client side)."""
if set(ERROR_CLASSES) != set(ErrorCode):
    raise RuntimeError(f"codes without an error class: {set(ErrorCode) - set(ERROR_CLASSES)}")


def error_from_dict(body: dict[str, Any]) -> RelationdError:
    """Rebuild the typed exception from a reply's ``error`` object (client side)."""
    try:
        cls = ERROR_CLASSES[ErrorCode(body["code"])]
    except (KeyError, ValueError):
        cls = Internal
    return cls(str(body.get("message", "")), **dict(body.get("details") or {}))
