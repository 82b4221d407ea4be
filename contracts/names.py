"""Validated name types, after Juju's naming rules, shared by commands and results."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

APPLICATION_RE = r"^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$"
ENDPOINT_RE = r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$"
MODEL_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
UNIT_RE = r"^([a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*)/(0|[1-9][0-9]{0,8})$"
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def matches(pattern: str, text: str) -> bool:
    """Whether all of ``text`` matches ``pattern``. Python's ``re.match`` lets a ``$`` match
    before a trailing newline; pydantic's patterns (Rust's regex) do not, and neither does this."""
    return re.fullmatch(pattern, text) is not None


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in the canonical lower-case form, and nothing else."""
    return matches(UUID_RE, text)


ApplicationName = Annotated[str, StringConstraints(pattern=APPLICATION_RE, max_length=63)]
EndpointName = Annotated[str, StringConstraints(pattern=ENDPOINT_RE, max_length=63)]
InterfaceName = Annotated[str, StringConstraints(pattern=ENDPOINT_RE, max_length=63)]


def _not_uuid(value: str) -> str:
    if is_uuid(value):
        raise ValueError("must not have the form of a UUID: a model is named by its name or its UUID")
    return value


# A model name: never UUID-shaped, or commands naming the model by it would look up a UUID.
ModelName = Annotated[str, StringConstraints(pattern=MODEL_RE, max_length=63), AfterValidator(_not_uuid)]
UnitName = Annotated[str, StringConstraints(pattern=UNIT_RE, max_length=73)]
Uuid = Annotated[str, StringConstraints(pattern=UUID_RE)]


def _model_ref(value: str) -> str:
    if matches(MODEL_RE, value) or is_uuid(value):
        return value
    raise ValueError("must be a model name (lower-case letters, digits, '-') or a model UUID")


# A model named by its name or its UUID.
ModelRef = Annotated[str, Field(max_length=63), AfterValidator(_model_ref)]
# A relation named by its integer id or its UUID.
RelationRef = Annotated[int, Field(ge=0, le=2**62)] | Uuid


def split_endpoint(ref: str) -> tuple[str, str | None]:
    """Split ``app[:endpoint]`` into its parts."""
    app, _, endpoint = ref.partition(":")
    return app, (endpoint or None)


def unit_application(unit: str) -> str:
    """The application name of a unit name ``app/N``."""
    return unit.rpartition("/")[0]


def _endpoint_ref(value: str) -> str:
    before, colon, after = value.partition(":")
    if colon and not (before and after):
        # `wp:`, `:db` and `:` are invalid, as in Juju; `wp:` is not `wp` with no endpoint.
        raise ValueError(f"{value!r}: both application and endpoint must be given around ':'")
    app, endpoint = split_endpoint(value)
    if not matches(APPLICATION_RE, app):
        raise ValueError(f"{value!r}: application part must be a valid application name")
    if endpoint is not None and not matches(ENDPOINT_RE, endpoint):
        raise ValueError(f"{value!r}: endpoint part must be a valid endpoint name")
    return value


# ``application[:endpoint]``, as `juju integrate` takes it.
EndpointRef = Annotated[str, Field(max_length=127), AfterValidator(_endpoint_ref)]
