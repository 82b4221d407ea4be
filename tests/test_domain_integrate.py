"""Integrate: inference, existence and life, duplicates, container scope, limits, initial settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import errors
from daemon.parsing import parse
from tests.domain import CommandFailed, Domain

COROSYNC = {"name": "corosync", "provides": {"ha": {"interface": "hacluster"}}}
AGENT = {"name": "agent", "requires": {"cos-agent": {"interface": "cos_agent"}}}
HUB = {"name": "hub", "provides": {"feed": {"interface": "feed", "limit": 3}}}
READER = {"name": "reader", "requires": {"feed": "feed"}}


async def refused(awaitable: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as info:
        await awaitable
    return info.value


# ---- endpoint identifiers ---------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["wp:", ":db", ":"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "integrate", "endpoints": ["{ref}", "mysql"]}, "endpoints.0"),
        ({"type": "integrate", "endpoints": ["mysql", "{ref}"]}, "endpoints.1"),
        ({"type": "remove_relation", "endpoints": ["mysql", "{ref}"]}, "endpoints.1"),
        ({"type": "relation_ids", "endpoint": "{ref}"}, "endpoint"),
    ],
    ids=["integrate-first", "integrate-second", "remove_relation", "relation_ids"],
)
def test_an_endpoint_identifier_with_an_empty_part_is_invalid(
    ref: str, body: dict[str, Any], field: str
) -> None:
    """Juju's "invalid args": `wp:` is not `wp` with no endpoint, and `:db` and `:` name nothing."""
    raw = json.dumps(body | {"model": "m"}).replace("{ref}", ref).encode()

    with pytest.raises(errors.InvalidCommand) as caught:
        parse(raw, message_id="c1", content_type=None, max_body_bytes=1 << 20)

    assert caught.value.details == {"field": field}
    assert repr(ref) in caught.value.message


@pytest.mark.parametrize("ref", ["wordpress", "wordpress:db"])
def test_an_endpoint_identifier_with_or_without_an_endpoint_is_valid(ref: str) -> None:
    raw = json.dumps({"type": "integrate", "model": "m", "endpoints": [ref, "mysql"]}).encode()

    assert parse(raw, message_id="c1", content_type=None, max_body_bytes=1 << 20).command.endpoints[0] == ref


# ---- inference ------------------------------------------------------------------------------


async def test_wordpress_and_mysql_relate_through_db(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    seq = await domain.last_seq()

    rel = await domain.integrate("wordpress", "mysql")

    assert rel["key"] == "wordpress:db mysql:db"
    assert (rel["life"], rel["status"], rel["message"]) == ("alive", "joining", "")
    assert (rel["scope"], rel["interface"]) == ("global", "mysql")
    assert [(e["application"], e["name"], e["role"]) for e in rel["endpoints"]] == [
        ("wordpress", "db", "requirer"),
        ("mysql", "db", "provider"),
    ]
    assert await domain.events_since(seq) == [("relation", "created")]


async def test_the_order_of_the_two_applications_does_not_matter(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")

    rel = await domain.integrate("mysql", "wordpress")

    assert rel["key"] == "wordpress:db mysql:db"


async def test_both_endpoints_may_be_named(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")

    rel = await domain.integrate("mysql:db", "wordpress:db")

    assert rel["key"] == "wordpress:db mysql:db"


async def test_two_candidate_pairs_are_ambiguous_and_listed(domain: Domain) -> None:
    await domain.deploy("postgresql")
    await domain.deploy("telegraf")
    seq = await domain.last_seq()

    err = await refused(domain.integrate("telegraf", "postgresql"))

    assert err.code == "AmbiguousRelation"
    assert err.reply["error"]["details"]["candidates"] == [
        "telegraf:postgresql postgresql:db",
        "telegraf:postgresql postgresql:db-admin",
    ]
    assert "telegraf:postgresql postgresql:db-admin" in err.message
    assert await domain.events_since(seq) == []


async def test_naming_one_endpoint_resolves_an_ambiguous_pair(domain: Domain) -> None:
    await domain.deploy("postgresql")
    await domain.deploy("telegraf")

    rel = await domain.integrate("telegraf", "postgresql:db-admin")

    assert rel["key"] == "telegraf:postgresql postgresql:db-admin"
    assert rel["scope"] == "global"


async def test_a_pair_without_compatible_endpoints_is_refused(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("postgresql")

    err = await refused(domain.integrate("wordpress", "postgresql"))

    assert err.code == "CompatibleEndpointsNotFound"
    assert "wordpress" in err.message
    assert "postgresql" in err.message


async def test_a_named_endpoint_the_application_lacks_matches_nothing(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")

    err = await refused(domain.integrate("wordpress:website", "mysql"))

    assert err.code == "CompatibleEndpointsNotFound"


async def test_an_application_cannot_be_related_to_itself(domain: Domain) -> None:
    await domain.deploy("mysql")

    err = await refused(domain.integrate("mysql:slave", "mysql:master"))

    assert err.code == "CompatibleEndpointsNotFound"
    assert "itself" in err.message


# ---- juju-info ------------------------------------------------------------------------------


async def test_subordinate_with_nothing_else_in_common_infers_juju_info(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("telegraf")

    rel = await domain.integrate("telegraf", "wordpress")

    assert rel["key"] == "telegraf:juju-info wordpress:juju-info"
    assert rel["scope"] == "container"


async def test_juju_info_named_on_the_subordinate_side_relates(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("telegraf")

    rel = await domain.integrate("telegraf:juju-info", "wordpress")

    assert rel["key"] == "telegraf:juju-info wordpress:juju-info"


async def test_implicit_juju_info_does_not_count_when_another_pair_matches(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("telegraf")

    rel = await domain.integrate("telegraf", "mysql")

    assert rel["key"] == "telegraf:mysql mysql:db-admin"
    assert rel["scope"] == "global"


async def test_implicit_juju_info_counts_when_named_explicitly(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("telegraf")

    rel = await domain.integrate("mysql:juju-info", "telegraf")

    assert rel["key"] == "telegraf:juju-info mysql:juju-info"
    assert rel["scope"] == "container"


async def test_two_applications_may_be_related_twice_through_different_endpoints(domain: Domain) -> None:
    await domain.deploy("mysql", units=1)
    await domain.deploy("nrpe")

    monitors = await domain.integrate("nrpe", "mysql")
    info = await domain.integrate("nrpe:general-info", "mysql")

    assert monitors["key"] == "nrpe:local-monitors mysql:local-monitors"
    assert info["key"] == "nrpe:general-info mysql:juju-info"
    assert info["id"] == monitors["id"] + 1
    keys = {r["key"] for r in await domain.run({"type": "list_relations", "application": "nrpe"})}
    assert keys == {monitors["key"], info["key"]}


# ---- existence, life, duplicates ------------------------------------------------------------


async def test_integrate_with_an_unknown_application_is_refused(domain: Domain) -> None:
    await domain.deploy("wordpress")

    err = await refused(domain.integrate("wordpress", "ghost"))

    assert err.code == "ApplicationNotFound"
    assert "ghost" in err.message


async def test_integrate_with_a_dying_application_is_refused(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    await domain.deploy("telegraf")
    rel = await domain.integrate("telegraf", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "mysql/0"})
    await domain.run({"type": "remove_application", "application": "mysql"})

    err = await refused(domain.integrate("wordpress", "mysql"))

    assert err.code == "ApplicationNotAlive"
    assert "mysql" in err.message


async def test_the_same_two_endpoints_cannot_be_related_twice(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")
    rel = await domain.integrate("wordpress", "mysql")
    seq = await domain.last_seq()

    err = await refused(domain.integrate("mysql:db", "wordpress"))

    assert err.code == "RelationAlreadyExists"
    assert "wordpress:db mysql:db" in err.message
    assert err.reply["error"]["details"]["relation_id"] == rel["id"]
    assert await domain.events_since(seq) == []


async def test_a_dying_relation_still_blocks_the_same_pair(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql")
    rel = await domain.integrate("wordpress", "mysql")
    await domain.run({"type": "enter_scope", "relation": rel["id"], "unit": "wordpress/0"})
    await domain.run({"type": "remove_relation", "relation": rel["id"]})

    err = await refused(domain.integrate("wordpress", "mysql"))

    assert err.code == "RelationAlreadyExists"


async def test_peer_endpoints_cannot_be_integrated(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("other-mysql", "mysql")

    err = await refused(domain.integrate("mysql:cluster", "other-mysql:cluster"))

    assert err.code == "CompatibleEndpointsNotFound"


# ---- container scope ------------------------------------------------------------------------


async def test_container_scope_between_two_principals_is_refused(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("corosync", metadata=COROSYNC)
    seq = await domain.last_seq()

    err = await refused(domain.integrate("mysql", "corosync"))

    assert err.code == "ContainerScopeRequiresSubordinate"
    assert "mysql:ha corosync:ha" in err.message
    assert await domain.run({"type": "list_relations", "application": "corosync"}) == []
    assert await domain.events_since(seq) == []


async def test_one_container_endpoint_makes_the_relation_container_scoped(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("nrpe")

    rel = await domain.integrate("nrpe:general-info", "mysql")

    assert rel["scope"] == "container"
    assert (await domain.run({"type": "get_relation", "relation": rel["id"]}))["scope"] == "container"


async def test_both_endpoints_of_a_container_relation_are_container_scoped(domain: Domain) -> None:
    """Juju reports the principal's global juju-info as container-scoped in a container-scoped
    relation (3.x rewrites the endpoint; 4.x's relation-endpoint view carries the relation's
    scope), in every read of the relation; the application's own endpoints keep the charm's."""
    await domain.deploy("mysql")
    await domain.deploy("nrpe")
    seq = await domain.last_seq()

    rel = await domain.integrate("nrpe:general-info", "mysql")

    def scopes(relation: dict[str, Any]) -> dict[str, str]:
        return {e["application"]: e["scope"] for e in relation["endpoints"]}

    both = {"nrpe": "container", "mysql": "container"}
    assert scopes(rel) == both
    assert scopes(await domain.run({"type": "get_relation", "relation": rel["id"]})) == both
    assert scopes(await domain.run({"type": "get_relation", "relation": rel["uuid"]})) == both
    listed = await domain.run({"type": "list_relations"})
    assert [scopes(r) for r in listed if r["id"] == rel["id"]] == [both]
    of_mysql = await domain.run({"type": "list_relations", "application": "mysql"})
    assert [scopes(r) for r in of_mysql if r["id"] == rel["id"]] == [both]
    declared = await domain.run({"type": "application_endpoints", "application": "mysql"})
    assert {e["name"]: e["scope"] for e in declared}["juju-info"] == "global"
    events = await domain.events(seq)
    assert [(e["namespace"], e["kind"], e["payload"]) for e in events] == [
        ("relation", "created", {"life": "alive", "status": "joining", "scope": "container"})
    ]


async def test_endpoints_of_a_global_relation_keep_their_global_scope(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")

    rel = await domain.integrate("wordpress", "mysql")

    assert {e["scope"] for e in rel["endpoints"]} == {"global"}
    got = await domain.run({"type": "get_relation", "relation": rel["id"]})
    assert {e["scope"] for e in got["endpoints"]} == {"global"}


async def test_two_subordinates_may_share_a_container_relation(domain: Domain) -> None:
    await domain.deploy("nrpe")
    await domain.deploy("telegraf")

    rel = await domain.integrate("telegraf", "nrpe")

    assert rel["key"] == "telegraf:juju-info nrpe:juju-info"
    assert rel["scope"] == "container"


# ---- limits ---------------------------------------------------------------------------------


async def certificates_setup(domain: Domain) -> None:
    await domain.deploy("postgresql", units=1)
    await domain.deploy("ca-one", "self-signed-certificates", units=1)
    await domain.deploy("ca-two", "self-signed-certificates", units=1)


async def test_limit_one_refuses_second_relation(domain: Domain) -> None:
    await certificates_setup(domain)
    await domain.integrate("postgresql:certificates", "ca-one")
    seq = await domain.last_seq()

    err = await refused(domain.integrate("postgresql:certificates", "ca-two"))

    assert err.code == "EndpointQuotaLimitExceeded"
    assert "postgresql:certificates" in err.message
    assert err.reply["error"]["details"] == {"endpoint": "postgresql:certificates", "limit": 1}
    assert await domain.events_since(seq) == []


async def test_limit_one_allows_a_relation_again_after_the_first_is_removed(domain: Domain) -> None:
    await certificates_setup(domain)
    first = await domain.integrate("postgresql:certificates", "ca-one")
    await domain.run({"type": "remove_relation", "relation": first["id"]})

    second = await domain.integrate("postgresql:certificates", "ca-two")

    assert second["key"] == "postgresql:certificates ca-two:certificates"


async def test_a_dying_relation_still_counts_against_the_limit_until_it_is_dead(domain: Domain) -> None:
    await certificates_setup(domain)
    first = await domain.integrate("postgresql:certificates", "ca-one")
    await domain.run({"type": "enter_scope", "relation": first["id"], "unit": "postgresql/0"})
    await domain.run({"type": "remove_relation", "relation": first["id"]})

    while_dying = await refused(domain.integrate("postgresql:certificates", "ca-two"))
    await domain.run({"type": "leave_scope", "relation": first["id"], "unit": "postgresql/0"})
    second = await domain.integrate("postgresql:certificates", "ca-two")

    assert while_dying.code == "EndpointQuotaLimitExceeded"
    assert second["id"] == first["id"] + 1


async def test_the_limit_is_checked_on_the_provider_side_too(domain: Domain) -> None:
    await domain.deploy("postgresql")
    await domain.deploy("agent-a", metadata=AGENT)
    await domain.deploy("agent-b", metadata=AGENT)
    await domain.integrate("agent-a", "postgresql")

    err = await refused(domain.integrate("agent-b", "postgresql"))

    assert err.code == "EndpointQuotaLimitExceeded"
    assert err.reply["error"]["details"] == {"endpoint": "postgresql:cos-agent", "limit": 1}


async def test_limit_three_takes_three_relations_and_refuses_the_fourth(domain: Domain) -> None:
    await domain.deploy("hub", metadata=HUB)
    for name in ("r-a", "r-b", "r-c", "r-d"):
        await domain.deploy(name, metadata=READER)
    for name in ("r-a", "r-b", "r-c"):
        await domain.integrate(name, "hub")

    err = await refused(domain.integrate("r-d", "hub"))

    assert err.code == "EndpointQuotaLimitExceeded"
    assert err.reply["error"]["details"] == {"endpoint": "hub:feed", "limit": 3}


async def test_an_unlimited_endpoint_takes_many_relations(domain: Domain) -> None:
    await domain.deploy("postgresql")
    for i in range(4):
        await domain.deploy(f"app-{chr(ord('a') + i)}", metadata={"requires": {"db": "postgresql_client"}})

    rels = [await domain.integrate(f"app-{chr(ord('a') + i)}", "postgresql") for i in range(4)]

    assert {r["key"].split()[1] for r in rels} == {"postgresql:database"}


async def test_the_requirer_limit_is_reported_before_the_provider_limit(domain: Domain) -> None:
    reader = {"requires": {"feed": {"interface": "feed", "limit": 1}}}
    hub = {"provides": {"feed": {"interface": "feed", "limit": 1}}}
    for name, meta in (("hub-a", hub), ("hub-b", hub), ("r-a", reader), ("r-b", reader)):
        await domain.deploy(name, metadata=meta)
    await domain.integrate("r-a", "hub-a")
    await domain.integrate("r-b", "hub-b")

    err = await refused(domain.integrate("hub-b", "r-a"))

    assert err.code == "EndpointQuotaLimitExceeded"
    assert err.message == "r-a:feed allows 1 relation and has 1"


async def test_a_limit_of_zero_refuses_every_relation(domain: Domain) -> None:
    await domain.deploy("hub", metadata=HUB)
    await domain.deploy("r-a", metadata={"requires": {"feed": {"interface": "feed", "limit": 0}}})

    err = await refused(domain.integrate("r-a", "hub"))

    assert err.code == "EndpointQuotaLimitExceeded"
    assert err.message == "r-a:feed allows 0 relations and has 0"


# ---- which refusal comes first ----------------------------------------------------------------


async def test_an_existing_relation_is_refused_before_its_full_limit(domain: Domain) -> None:
    await certificates_setup(domain)
    rel = await domain.integrate("postgresql:certificates", "ca-one")

    err = await refused(domain.integrate("ca-one", "postgresql:certificates", ghost={"x": "1"}))

    assert err.code == "RelationAlreadyExists"
    assert err.reply["error"]["details"]["relation_id"] == rel["id"]


async def test_container_scope_is_refused_before_a_limit_and_foreign_settings(domain: Domain) -> None:
    await domain.deploy("mysql")
    await domain.deploy("corosync", metadata={"provides": {"ha": {"interface": "hacluster", "limit": 0}}})

    err = await refused(domain.integrate("mysql", "corosync", ghost={"x": "1"}))

    assert err.code == "ContainerScopeRequiresSubordinate"


async def test_a_full_limit_is_refused_before_settings_for_a_third_application(domain: Domain) -> None:
    await certificates_setup(domain)
    await domain.integrate("postgresql:certificates", "ca-one")

    err = await refused(domain.integrate("postgresql:certificates", "ca-two", ghost={"x": "1"}))

    assert err.code == "EndpointQuotaLimitExceeded"


async def test_the_first_named_missing_application_is_reported(domain: Domain) -> None:
    await domain.deploy("wordpress")

    err = await refused(domain.integrate("phantom", "ghost"))

    assert err.reply["error"]["details"] == {"application": "phantom"}


async def test_the_reply_is_the_relation_as_stored(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)

    rel = await domain.integrate("mysql", "wordpress", mysql={"database": "wp"})

    assert rel == await domain.run({"type": "get_relation", "relation": rel["id"]})


# ---- initial settings -----------------------------------------------------------------------


async def test_integrate_stores_initial_application_settings(domain: Domain) -> None:
    await domain.deploy("wordpress", units=1)
    await domain.deploy("mysql", units=1)
    seq = await domain.last_seq()

    rel = await domain.integrate("wordpress", "mysql", mysql={"database": "wp"}, wordpress={"prefix": "wp_"})

    assert await domain.events_since(seq) == [
        ("relation", "created"),
        ("relation_application_setting", "changed"),
        ("relation_application_setting", "changed"),
    ]
    events = await domain.events(seq)
    assert [e["key"]["application"] for e in events[1:]] == ["mysql", "wordpress"]
    mysql = await domain.run(
        {"type": "get_application_settings", "relation": rel["id"], "application": "mysql"}
    )
    assert mysql == {"database": "wp"}


async def test_integrate_with_empty_initial_settings_emits_no_settings_event(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")
    seq = await domain.last_seq()

    await domain.integrate("wordpress", "mysql", mysql={})

    assert await domain.events_since(seq) == [("relation", "created")]


async def test_initial_settings_for_an_application_outside_the_relation_are_refused(domain: Domain) -> None:
    await domain.deploy("wordpress")
    await domain.deploy("mysql")
    await domain.deploy("telegraf")

    err = await refused(domain.integrate("wordpress", "mysql", telegraf={"x": "1"}))

    assert err.code == "ApplicationNotFoundForRelation"
    assert [r["key"] for r in await domain.run({"type": "list_relations"})] == [
        "wordpress:loadbalancer",
        "mysql:cluster",
    ]
