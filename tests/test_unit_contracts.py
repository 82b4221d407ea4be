"""Command and charm metadata validation (contracts/): what is refused before any handler runs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.charm import CharmMetadata, Role, Scope
from contracts.commands import COMMAND_ADAPTER, Deploy, EnterScope, Integrate
from tests.domain import charm

MODEL = "prod"


def parse(body: dict[str, Any]) -> Any:
    return COMMAND_ADAPTER.validate_python(body)


def refused(body: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        parse(body)
    return err.value


def fields_at_fault(err: ValidationError) -> list[tuple[Any, ...]]:
    return [e["loc"] for e in err.errors()]


# ---- commands -------------------------------------------------------------------------------


def test_a_valid_command_parses_to_its_model() -> None:
    cmd = parse({"type": "integrate", "model": MODEL, "endpoints": ["wordpress", "mysql:db"]})

    assert isinstance(cmd, Integrate)
    assert cmd.endpoints == ["wordpress", "mysql:db"]


def test_unknown_fields_are_refused() -> None:
    err = refused({"type": "add_units", "model": MODEL, "application": "mysql", "colour": "red"})

    assert ("add_units", "colour") in fields_at_fault(err)


def test_unknown_command_type_is_refused() -> None:
    refused({"type": "drop_everything", "model": MODEL})


def test_types_are_strict_no_string_for_an_integer() -> None:
    refused({"type": "add_units", "model": MODEL, "application": "mysql", "count": "2"})


def test_types_are_strict_no_boolean_for_an_integer() -> None:
    refused({"type": "add_units", "model": MODEL, "application": "mysql", "count": True})


def test_a_relation_is_named_by_integer_id_or_uuid_only() -> None:
    ok_id = parse({"type": "get_relation", "model": MODEL, "relation": 3})
    ok_uuid = parse(
        {"type": "get_relation", "model": MODEL, "relation": "0d326f66-3ac0-41d3-81ef-54b93ee399a9"}
    )

    assert ok_id.relation == 3
    assert ok_uuid.relation == "0d326f66-3ac0-41d3-81ef-54b93ee399a9"
    refused({"type": "get_relation", "model": MODEL, "relation": "3"})
    refused({"type": "get_relation", "model": MODEL, "relation": -1})
    refused({"type": "get_relation", "model": MODEL, "relation": "wordpress:db mysql:db"})


def test_integrate_takes_exactly_two_endpoints() -> None:
    refused({"type": "integrate", "model": MODEL, "endpoints": ["wordpress"]})
    refused({"type": "integrate", "model": MODEL, "endpoints": ["a", "b", "c"]})


def test_unit_counts_are_bounded() -> None:
    refused({"type": "add_units", "model": MODEL, "application": "mysql", "count": 0})
    refused({"type": "add_units", "model": MODEL, "application": "mysql", "count": 1001})


@pytest.mark.parametrize("name", ["mysql", "wordpress", "my-sql", "a1", "postgresql-k8s", "x-1a"])
def test_valid_application_names(name: str) -> None:
    assert parse({"type": "add_units", "model": MODEL, "application": name}).application == name


@pytest.mark.parametrize("name", ["MySQL", "1mysql", "my_sql", "mysql-", "mysql-1", "-a", "", "a" * 64])
def test_invalid_application_names_are_refused(name: str) -> None:
    refused({"type": "add_units", "model": MODEL, "application": name})


@pytest.mark.parametrize("unit", ["mysql/0", "my-sql/12", "wordpress/999999999"])
def test_valid_unit_names(unit: str) -> None:
    assert parse({"type": "set_leader", "model": MODEL, "unit": unit}).unit == unit


@pytest.mark.parametrize("unit", ["mysql", "mysql/", "mysql/01", "mysql/-1", "MySQL/0", "mysql/0/1"])
def test_invalid_unit_names_are_refused(unit: str) -> None:
    refused({"type": "set_leader", "model": MODEL, "unit": unit})


@pytest.mark.parametrize("ref", ["wordpress", "wordpress:db", "mysql:db-admin", "pg:database_peers"])
def test_valid_endpoint_identifiers(ref: str) -> None:
    assert parse({"type": "relation_ids", "model": MODEL, "endpoint": ref}).endpoint == ref


@pytest.mark.parametrize("ref", ["Wordpress:db", "wordpress:DB", "wordpress:db:x", ":db", "word press"])
def test_invalid_endpoint_identifiers_are_refused(ref: str) -> None:
    refused({"type": "relation_ids", "model": MODEL, "endpoint": ref})


@pytest.mark.parametrize("name", ["prod", "m-1", "a", "0"])
def test_valid_model_names(name: str) -> None:
    assert parse({"type": "create_model", "name": name}).name == name


@pytest.mark.parametrize("name", ["Prod", "-prod", "prod-", "pro_d", "", "a" * 64])
def test_invalid_model_names_are_refused(name: str) -> None:
    refused({"type": "create_model", "name": name})


def test_a_model_name_in_the_form_of_a_uuid_is_refused() -> None:
    err = refused({"type": "create_model", "name": "0d326f66-3ac0-41d3-81ef-54b93ee399a9"})

    assert "UUID" in str(err)


def test_a_model_is_named_by_name_or_uuid() -> None:
    by_uuid = parse({"type": "list_applications", "model": "0d326f66-3ac0-41d3-81ef-54b93ee399a9"})

    assert by_uuid.model == "0d326f66-3ac0-41d3-81ef-54b93ee399a9"
    refused({"type": "list_applications", "model": "Not A Model"})


# A `$` in Python's re.match accepts a trailing newline; names and UUIDs must match whole.
WHOLE_MATCH_CASES = [
    ({"type": "list_applications", "model": "0d326f66-3ac0-41d3-81ef-54b93ee399a9\n"}, ("model",)),
    ({"type": "list_applications", "model": "prod\n"}, ("model",)),
    ({"type": "relation_ids", "model": MODEL, "endpoint": "mysql:db\n"}, ("endpoint",)),
    ({"type": "relation_ids", "model": MODEL, "endpoint": "mysql\n:db"}, ("endpoint",)),
    ({"type": "create_model", "name": "prod\n"}, ("name",)),
    ({"type": "get_relation", "model": MODEL, "relation": "0d326f66-3ac0-41d3-81ef-54b93ee399a9\n"},
     ("relation",)),
]  # fmt: skip


@pytest.mark.parametrize(("body", "loc"), WHOLE_MATCH_CASES)
def test_a_trailing_newline_after_a_name_or_uuid_is_refused(
    body: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    assert loc in [e[1 : 1 + len(loc)] for e in fields_at_fault(refused(body))]  # after the type tag


# Every value reaching a column fits it: bigint, integer (int4), text without NUL.
COLUMN_CASES = [
    ({"type": "events_after", "model": MODEL, "after": 2**63}, ("after",)),
    ({"type": "events_after", "model": MODEL, "relation_id": 2**63}, ("relation_id",)),
    ({"type": "events_after", "model": MODEL, "namespace": "a\x00"}, ("namespace",)),
    ({"type": "deploy", "model": MODEL, "application": "a",
      "charm": {"requires": {"db": {"interface": "mysql", "limit": 2**31}}}}, ("charm", "requires", "db", "limit")),
    ({"type": "deploy", "model": MODEL, "application": "a", "charm": {"name": "a\x00"}}, ("charm", "name")),
]  # fmt: skip


@pytest.mark.parametrize(("body", "loc"), COLUMN_CASES)
def test_a_value_its_column_cannot_hold_is_refused(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in [e[1 : 1 + len(loc)] for e in fields_at_fault(refused(body))]  # after the type tag


def test_the_largest_values_the_columns_hold_are_accepted() -> None:
    events = parse({"type": "events_after", "model": MODEL, "after": 2**63 - 1, "relation_id": 2**63 - 1})
    assert (events.after, events.relation_id) == (2**63 - 1, 2**63 - 1)
    meta = CharmMetadata.model_validate({"provides": {"db": {"interface": "mysql", "limit": 2**31 - 1}}})
    assert meta.provides["db"].limit == 2**31 - 1


# ---- settings -------------------------------------------------------------------------------


def settings_body(settings: Any) -> dict[str, Any]:
    return {
        "type": "set_unit_settings",
        "model": MODEL,
        "relation": 0,
        "unit": "mysql/0",
        "settings": settings,
    }


def test_settings_accept_strings() -> None:
    assert parse(settings_body({"host": "10.0.0.1", "gone": ""})).settings == {"host": "10.0.0.1", "gone": ""}


def test_nul_in_a_setting_value_is_refused() -> None:
    refused(settings_body({"host": "10.0.0.1\x00"}))


def test_nul_in_a_setting_key_is_refused() -> None:
    refused(settings_body({"ho\x00st": "x"}))


def test_lone_surrogate_in_a_setting_is_refused() -> None:
    refused(settings_body({"host": "\ud800"}))


def test_an_empty_setting_key_is_refused() -> None:
    refused(settings_body({"": "x"}))


def test_setting_values_must_be_strings() -> None:
    refused(settings_body({"port": 5432}))
    refused(settings_body({"port": None}))


def test_oversize_setting_value_is_refused() -> None:
    refused(settings_body({"blob": "x" * 65537}))


def test_nul_in_a_status_message_is_refused() -> None:
    refused(
        {
            "type": "set_relation_status",
            "model": MODEL,
            "relation": 0,
            "unit": "mysql/0",
            "status": "error",
            "message": "bad\x00",
        }
    )


def test_unknown_status_is_refused() -> None:
    refused(
        {"type": "set_relation_status", "model": MODEL, "relation": 0, "unit": "mysql/0", "status": "gone"}
    )


def test_enter_scope_settings_are_optional() -> None:
    cmd = parse({"type": "enter_scope", "model": MODEL, "relation": 0, "unit": "mysql/0"})

    assert isinstance(cmd, EnterScope)
    assert cmd.settings is None


# ---- charm metadata -------------------------------------------------------------------------


def test_short_form_endpoint_is_an_interface_name() -> None:
    meta = CharmMetadata.model_validate({"name": "site", "provides": {"website": "http"}})

    assert meta.provides["website"].interface == "http"
    assert meta.provides["website"].scope == Scope.global_
    assert meta.provides["website"].limit is None


def test_every_application_gets_the_implicit_juju_info_provider() -> None:
    meta = CharmMetadata.model_validate({"name": "site", "provides": {"website": "http"}})

    assert ("juju-info", Role.provider) in [(n, r) for n, r, _ in meta.endpoints()]


def test_a_charm_declaring_juju_info_has_no_implicit_one() -> None:
    meta = CharmMetadata.model_validate(charm("telegraf"))

    juju_info = [(r, m.scope) for n, r, m in meta.endpoints() if n == "juju-info"]
    assert juju_info == [(Role.requirer, Scope.container)]


def test_providing_juju_info_is_refused() -> None:
    with pytest.raises(ValidationError):
        CharmMetadata.model_validate({"provides": {"juju-info": "juju-info"}})


def test_duplicate_endpoint_names_across_groups_are_refused() -> None:
    with pytest.raises(ValidationError, match="declared more than once"):
        CharmMetadata.model_validate({"provides": {"db": "mysql"}, "requires": {"db": "mysql"}})


def test_duplicate_endpoint_name_between_peers_and_requires_is_refused() -> None:
    with pytest.raises(ValidationError, match="declared more than once"):
        CharmMetadata.model_validate({"peers": {"cluster": "ha"}, "requires": {"cluster": "ha"}})


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValidationError):
        CharmMetadata.model_validate({"requires": {"db": {"interface": "mysql", "limit": -1}}})


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(ValidationError):
        CharmMetadata.model_validate({"requires": {"db": {"interface": "mysql", "scope": "machine"}}})


def test_invalid_endpoint_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        CharmMetadata.model_validate({"requires": {"Db": "mysql"}})


def test_empty_groups_may_be_null() -> None:
    meta = CharmMetadata.model_validate({"name": "bare", "provides": None, "requires": None, "peers": None})

    assert [n for n, _, _ in meta.endpoints()] == ["juju-info"]


@pytest.mark.parametrize(
    "name", ["mysql", "wordpress", "telegraf", "postgresql", "nrpe", "self-signed-certificates"]
)
def test_real_charm_metadata_is_accepted_with_unknown_keys_ignored(name: str) -> None:
    raw = charm(name)

    meta = CharmMetadata.model_validate(raw)

    assert meta.name == raw["name"]
    assert set(meta.provides) == set(raw.get("provides") or {})
    assert set(meta.requires) == set(raw.get("requires") or {})
    assert set(meta.peers) == set(raw.get("peers") or {})


def test_charmcraft_yaml_keeps_limits_optional_and_peers() -> None:
    meta = CharmMetadata.model_validate(charm("postgresql"))

    assert meta.requires["certificates"].limit == 1
    assert meta.requires["tracing"].optional is True
    assert meta.provides["cos-agent"].limit == 1
    assert meta.provides["database"].limit is None
    assert set(meta.peers) == {"database-peers", "restart", "upgrade"}


def test_deploy_carries_the_parsed_metadata() -> None:
    cmd = parse({"type": "deploy", "model": MODEL, "application": "pg", "charm": charm("postgresql")})

    assert isinstance(cmd, Deploy)
    assert cmd.charm.subordinate is False
    assert cmd.units == 0


@pytest.mark.parametrize(
    "meta",
    [
        {"peers": {"juju-info": "juju-info"}},
        {"requires": {"juju-info": "juju-info"}},
        {"requires": {"juju-info": {"interface": "juju-info", "scope": "container"}}},
        {"subordinate": True, "requires": {"juju-info": "juju-info"}},
        {"subordinate": True, "peers": {"juju-info": "juju-info"}},
    ],
    ids=["peer", "principal-requirer", "principal-container-requirer", "global-requirer", "sub-peer"],
)
def test_juju_info_is_reserved_except_for_a_subordinates_container_requirer(meta: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="juju-info"):
        CharmMetadata.model_validate(meta)


def test_every_accepted_principal_keeps_its_implicit_juju_info_provider() -> None:
    meta = CharmMetadata.model_validate({"requires": {"host": "juju-info"}, "peers": {"ring": "ring"}})

    assert ("juju-info", Role.provider, "juju-info") in [(n, r, m.interface) for n, r, m in meta.endpoints()]
