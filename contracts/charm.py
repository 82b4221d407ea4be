"""The relation parts of a charm's metadata.yaml / charmcraft.yaml.

Real metadata is accepted as it is: keys relationd does not use are ignored, and the short form
``provides: {website: http}`` (interface only) is understood.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.names import EndpointName, InterfaceName
from contracts.storable import IntegerCount, StorableText

IMPLICIT_ENDPOINT = "juju-info"


class Role(StrEnum):
    provider = "provider"
    requirer = "requirer"
    peer = "peer"


class Scope(StrEnum):
    global_ = "global"
    container = "container"


class RelationMeta(BaseModel):
    """One endpoint declaration: ``db: {interface: mysql, limit: 1, scope: container}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    interface: InterfaceName
    limit: IntegerCount | None = None
    optional: bool = False
    scope: Scope = Scope.global_

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"interface": value} if isinstance(value, str) else value


class CharmMetadata(BaseModel):
    """What relationd needs of a charm: its name, whether it is subordinate, its endpoints."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[StorableText, Field(max_length=128)] | None = None
    subordinate: bool = False
    provides: dict[EndpointName, RelationMeta] = Field(default_factory=dict, max_length=256)
    requires: dict[EndpointName, RelationMeta] = Field(default_factory=dict, max_length=256)
    peers: dict[EndpointName, RelationMeta] = Field(default_factory=dict, max_length=256)

    @field_validator("provides", "requires", "peers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _names_unique(self) -> CharmMetadata:
        seen: set[str] = set()
        for group in (self.provides, self.requires, self.peers):
            for name in group:
                if name in seen:
                    raise ValueError(f"endpoint {name!r} is declared more than once")
                seen.add(name)
        if IMPLICIT_ENDPOINT in self.provides:
            raise ValueError(f"endpoint {IMPLICIT_ENDPOINT!r} is implicit and cannot be provided")
        # As in Juju, the name is reserved but for a subordinate's container-scoped requirer: any
        # other declaration would take the name from the implicit provider every application has.
        if IMPLICIT_ENDPOINT in self.peers:
            raise ValueError(f"endpoint {IMPLICIT_ENDPOINT!r} is reserved and cannot be a peer endpoint")
        required = self.requires.get(IMPLICIT_ENDPOINT)
        if required is not None and not (self.subordinate and required.scope == Scope.container):
            raise ValueError(
                f"endpoint {IMPLICIT_ENDPOINT!r} is reserved: only a subordinate charm may require it, "
                "with scope container"
            )
        return self

    def endpoints(self) -> list[tuple[str, Role, RelationMeta]]:
        """Every endpoint with its role, the implicit ``juju-info`` provider included.

        A charm that declares its own ``juju-info`` (a subordinate requiring it) has no implicit
        one: names are unique per application.
        """
        out = [(n, Role.provider, m) for n, m in self.provides.items()]
        out += [(n, Role.requirer, m) for n, m in self.requires.items()]
        out += [(n, Role.peer, m) for n, m in self.peers.items()]
        if not any(name == IMPLICIT_ENDPOINT for name, _, _ in out):
            out.append((IMPLICIT_ENDPOINT, Role.provider, RelationMeta(interface=IMPLICIT_ENDPOINT)))
        return out
