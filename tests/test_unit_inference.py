"""Endpoint inference for integrate (handlers/inference.py): pure logic, no database."""

from __future__ import annotations

import pytest

from contracts import errors
from handlers.inference import Endpoint, infer, relation_key


def ep(app: str, name: str, role: str, interface: str, scope: str = "global") -> Endpoint:
    return Endpoint(app, name, role, interface, scope)


def juju_info(app: str) -> Endpoint:
    return ep(app, "juju-info", "provider", "juju-info")


WORDPRESS = [
    ep("wordpress", "website", "provider", "http"),
    ep("wordpress", "db", "requirer", "mysql"),
    ep("wordpress", "cache", "requirer", "memcache"),
    ep("wordpress", "loadbalancer", "peer", "reversenginx"),
    juju_info("wordpress"),
]
MYSQL = [
    ep("mysql", "db", "provider", "mysql"),
    ep("mysql", "db-admin", "provider", "mysql-root"),
    ep("mysql", "local-monitors", "provider", "local-monitors", "container"),
    ep("mysql", "cluster", "peer", "mysql-ha"),
    juju_info("mysql"),
]
POSTGRESQL = [
    ep("postgresql", "db", "provider", "pgsql"),
    ep("postgresql", "db-admin", "provider", "pgsql"),
    ep("postgresql", "database", "provider", "postgresql_client"),
    juju_info("postgresql"),
]
TELEGRAF = [
    ep("telegraf", "juju-info", "requirer", "juju-info", "container"),
    ep("telegraf", "mysql", "requirer", "mysql-root"),
    ep("telegraf", "postgresql", "requirer", "pgsql"),
    ep("telegraf", "memcached", "requirer", "memcache"),
]


def keys(pair: tuple[Endpoint, Endpoint]) -> set[str]:
    return {str(pair[0]), str(pair[1])}


def test_the_only_compatible_pair_is_inferred() -> None:
    pair = infer(WORDPRESS, None, MYSQL, None)

    assert keys(pair) == {"wordpress:db", "mysql:db"}


def test_inference_does_not_depend_on_argument_order() -> None:
    assert relation_key(infer(MYSQL, None, WORDPRESS, None)) == "wordpress:db mysql:db"
    assert relation_key(infer(WORDPRESS, None, MYSQL, None)) == "wordpress:db mysql:db"


def test_relation_key_names_requirer_first_then_provider() -> None:
    provider, requirer = MYSQL[0], WORDPRESS[1]

    assert relation_key((provider, requirer)) == "wordpress:db mysql:db"


def test_two_pairs_of_one_interface_are_ambiguous_and_listed() -> None:
    with pytest.raises(errors.AmbiguousRelation) as err:
        infer(TELEGRAF, None, POSTGRESQL, None)

    assert err.value.details["candidates"] == [
        "telegraf:postgresql postgresql:db",
        "telegraf:postgresql postgresql:db-admin",
    ]
    assert "telegraf:postgresql postgresql:db" in err.value.message
    assert "telegraf:postgresql postgresql:db-admin" in err.value.message


def test_naming_an_endpoint_resolves_the_ambiguity() -> None:
    pair = infer(TELEGRAF, None, POSTGRESQL, "db-admin")

    assert relation_key(pair) == "telegraf:postgresql postgresql:db-admin"


def test_no_compatible_pair_is_refused() -> None:
    with pytest.raises(errors.CompatibleEndpointsNotFound) as err:
        infer(WORDPRESS, None, POSTGRESQL, None)

    assert err.value.details["endpoints"] == ["wordpress", "postgresql"]


def test_two_providers_of_one_interface_do_not_match() -> None:
    a = [ep("a", "web", "provider", "http")]
    b = [ep("b", "web", "provider", "http")]

    with pytest.raises(errors.CompatibleEndpointsNotFound):
        infer(a, None, b, None)


def test_two_requirers_of_one_interface_do_not_match() -> None:
    with pytest.raises(errors.CompatibleEndpointsNotFound):
        infer(TELEGRAF, "memcached", WORDPRESS, "cache")


def test_peer_endpoints_never_match() -> None:
    a = [ep("a", "cluster", "peer", "ha")]
    b = [ep("b", "cluster", "peer", "ha")]

    with pytest.raises(errors.CompatibleEndpointsNotFound):
        infer(a, None, b, None)


def test_interfaces_must_be_equal() -> None:
    with pytest.raises(errors.CompatibleEndpointsNotFound):
        infer(WORDPRESS, "db", MYSQL, "db-admin")


def test_a_named_endpoint_that_does_not_exist_matches_nothing() -> None:
    with pytest.raises(errors.CompatibleEndpointsNotFound) as err:
        infer(WORDPRESS, "nosuch", MYSQL, None)

    assert "wordpress:nosuch" in err.value.message


def test_implicit_juju_info_is_ignored_when_another_pair_matches() -> None:
    pair = infer(TELEGRAF, None, MYSQL, None)

    assert relation_key(pair) == "telegraf:mysql mysql:db-admin"


def test_implicit_juju_info_is_used_when_nothing_else_matches() -> None:
    pair = infer(TELEGRAF, None, WORDPRESS, None)

    assert relation_key(pair) == "telegraf:juju-info wordpress:juju-info"


def test_implicit_juju_info_is_used_when_named_on_its_own_side() -> None:
    pair = infer(TELEGRAF, None, MYSQL, "juju-info")

    assert relation_key(pair) == "telegraf:juju-info mysql:juju-info"


def test_implicit_juju_info_is_used_when_the_requirer_names_it() -> None:
    pair = infer(TELEGRAF, "juju-info", MYSQL, None)

    assert relation_key(pair) == "telegraf:juju-info mysql:juju-info"


def test_a_declared_juju_info_requirer_is_not_implicit() -> None:
    assert not TELEGRAF[0].is_implicit
    assert juju_info("mysql").is_implicit


def test_only_implicit_candidates_that_are_several_are_ambiguous() -> None:
    sub = [
        ep("sub", "general-info", "requirer", "juju-info", "container"),
        ep("sub", "host-info", "requirer", "juju-info", "container"),
    ]

    with pytest.raises(errors.AmbiguousRelation) as err:
        infer(sub, None, [juju_info("mysql")], None)

    assert err.value.details["candidates"] == [
        "sub:general-info mysql:juju-info",
        "sub:host-info mysql:juju-info",
    ]
