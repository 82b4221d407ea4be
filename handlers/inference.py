"""Endpoint inference for integrate: which pair of endpoints two identifiers mean.

Pure logic over the applications' endpoints, after Juju's InferEndpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import errors
from contracts.charm import IMPLICIT_ENDPOINT


@dataclass(frozen=True, slots=True)
class Endpoint:
    application: str
    name: str
    role: str
    interface: str
    scope: str

    @property
    def is_implicit(self) -> bool:
        return (
            self.name == IMPLICIT_ENDPOINT and self.interface == IMPLICIT_ENDPOINT and self.role == "provider"
        )

    def __str__(self) -> str:
        return f"{self.application}:{self.name}"


def relation_key(pair: tuple[Endpoint, Endpoint]) -> str:
    """``requirer provider``: ``wordpress:db mysql:server``."""
    a, b = pair
    requirer, provider = (a, b) if a.role == "requirer" else (b, a)
    return f"{requirer} {provider}"


def infer(
    first: list[Endpoint],
    first_name: str | None,
    second: list[Endpoint],
    second_name: str | None,
) -> tuple[Endpoint, Endpoint]:
    """The one provider/requirer pair of equal interface the two identifiers can mean.

    Implicit ``juju-info`` endpoints count only when named or when nothing else matches.
    Raises CompatibleEndpointsNotFound, AmbiguousRelation.
    """
    candidates = [
        (a, b)
        for a in first
        if first_name in (None, a.name)
        for b in second
        if second_name in (None, b.name)
        if {a.role, b.role} == {"provider", "requirer"} and a.interface == b.interface
    ]
    explicit = [
        (a, b)
        for a, b in candidates
        if not (a.is_implicit and first_name is None) and not (b.is_implicit and second_name is None)
    ]
    chosen = explicit or candidates
    left = _ident(first, first_name)
    right = _ident(second, second_name)
    if not chosen:
        raise errors.CompatibleEndpointsNotFound(
            f"no compatible endpoints between {left!r} and {right!r}",
            endpoints=[left, right],
        )
    if len(chosen) > 1:
        keys = sorted(relation_key(p) for p in chosen)
        raise errors.AmbiguousRelation(
            f"ambiguous relation between {left!r} and {right!r}: could be "
            + ", ".join(repr(k) for k in keys),
            candidates=keys,
        )
    return chosen[0]


def _ident(endpoints: list[Endpoint], name: str | None) -> str:
    app = endpoints[0].application if endpoints else "?"
    return f"{app}:{name}" if name else app
