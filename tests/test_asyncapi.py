"""The AsyncAPI document: current, well formed, complete, and true to what the daemon sends.

No package on PyPI ships the official AsyncAPI 3.0.0 JSON Schema, so the document is checked
structurally here: the required fields of an AsyncAPI 3.0 document, channels, operations and
replies as the specification defines them, every ``$ref`` resolving, and every schema a valid
JSON Schema (Draft 2020-12, and Draft 7, the base of AsyncAPI's own schema format). Then real
commands, replies and events, taken from the running daemon, are validated against it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from contracts.asyncapi import build, render
from contracts.commands import COMMAND_TYPES
from contracts.errors import ErrorCode
from contracts.events import KINDS, Namespace
from tests.domain import charm

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "asyncapi.json"
DOC_URI = "urn:relationd:asyncapi"
KEY_RE = re.compile(r"^[\w\d.\-_]+$")  # AsyncAPI 3.0 component and message keys


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def _validator(doc: dict[str, Any], pointer: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(DOC_URI, Resource(doc, specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{DOC_URI}{pointer}"}, registry=registry)


def test_committed_copy_is_current() -> None:
    assert COMMITTED.exists(), "docs/asyncapi.json is missing: run `relationd asyncapi -o docs/asyncapi.json`"
    assert COMMITTED.read_text() == render(), (
        "docs/asyncapi.json is stale: run `relationd asyncapi -o docs/asyncapi.json` and commit it"
    )


def test_relationd_asyncapi_prints_the_document() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "asyncapi"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == json.loads(render())


def test_document_has_the_shape_of_asyncapi_3(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc) <= {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }
    for server in doc["servers"].values():
        assert server["host"] and server["protocol"] == "amqp"
        for variable in re.findall(r"{(\w+)}", server["host"] + server.get("pathname", "")):
            assert variable in server["variables"]
    for name, channel in doc["channels"].items():
        assert KEY_RE.match(name)
        assert "address" in channel and (channel["address"] is None or isinstance(channel["address"], str))
        for parameter in re.findall(r"{(\w+)}", channel["address"] or ""):
            assert parameter in channel["parameters"], f"{name}: parameter {parameter} undeclared"
        assert channel["bindings"]["amqp"]["is"] in ("queue", "routingKey")
    for name, operation in doc["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        # An operation's messages must be messages of its channel (AsyncAPI 3.0).
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (name, message)
        if "reply" in operation:
            reply_channel = operation["reply"]["channel"]["$ref"]
            assert operation["reply"]["address"]["location"].startswith("$message.header#/")
            for message in operation["reply"]["messages"]:
                assert message["$ref"].startswith(reply_channel + "/messages/")
    for key in (*doc["components"]["schemas"], *doc["components"]["messages"]):
        assert KEY_RE.match(key), key
    for message in doc["components"]["messages"].values():
        assert "payload" in message
        if "correlationId" in message:
            assert message["correlationId"]["location"].startswith("$message.header#/")


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs = set(_refs(doc))
    assert len(refs) > 100
    for ref in refs:
        _resolve(doc, ref)
    # And every component is used.
    used = {r.rsplit("/", 1)[-1] for r in refs}
    assert set(doc["components"]["messages"]) <= used


def test_every_schema_is_a_valid_json_schema(doc: dict[str, Any]) -> None:
    schemas = list(doc["components"]["schemas"].values())
    schemas += [m["payload"] for m in doc["components"]["messages"].values()]
    schemas += [m["headers"] for m in doc["components"]["messages"].values() if "headers" in m]
    for schema in schemas:
        Draft202012Validator.check_schema(schema)
        Draft7Validator.check_schema(schema)


def test_lists_every_command_reply_and_event(doc: dict[str, Any]) -> None:
    channels = doc["channels"]
    assert set(channels["commands"]["messages"]) == set(COMMAND_TYPES)
    assert set(channels["replies"]["messages"]) == {f"{t}.reply" for t in COMMAND_TYPES} | {"error"}
    assert set(channels["events"]["messages"]) == {f"event.{n.value}" for n in Namespace}
    assert channels["commands"]["address"] == "relationd.commands"
    assert channels["events"]["bindings"]["amqp"]["exchange"] == {
        "name": "relationd.events",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
    }
    assert channels["events"]["address"] == "{model_uuid}.{namespace}.{relation}"
    assert channels["events"]["parameters"]["namespace"]["enum"] == [n.value for n in Namespace]
    assert channels["deadLetters"]["address"] == "relationd.dead-letter"
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [c.value for c in ErrorCode]
    assert schemas["Namespace"]["enum"] == [n.value for n in Namespace]
    for namespace in Namespace:
        name = "".join(p.title() for p in namespace.value.split("_")) + "Event"
        assert schemas[name]["allOf"][1]["properties"]["kind"]["enum"] == list(KINDS[namespace])
    actions = {op["action"] for op in doc["operations"].values()}
    assert actions == {"send", "receive"}


def test_schemas_refuse_what_the_daemon_refuses(doc: dict[str, Any]) -> None:
    deploy = _validator(doc, "#/components/messages/deploy/payload")
    assert deploy.is_valid({"type": "deploy", "model": "m", "application": "a", "charm": {}})
    assert not deploy.is_valid({"model": "m", "application": "a", "charm": {}})  # no type
    assert not deploy.is_valid({"type": "deploy", "model": "m", "application": "Bad!", "charm": {}})
    assert not deploy.is_valid({"type": "deploy", "model": "m", "application": "a", "charm": {}, "x": 1})
    error = _validator(doc, "#/components/messages/error/payload")
    body = {"ok": False, "command_id": None, "type": None, "error": {"code": "NotLeader", "message": "m"}}
    assert error.is_valid(body)
    assert not error.is_valid({**body, "error": {"code": "NoSuchCode", "message": "m"}})


def _scenario(model: str) -> list[dict[str, Any]]:
    """One body of every command type, in an order in which each succeeds."""
    m = {"model": model}
    return [
        {"type": "create_model", "name": model},
        {"type": "list_models"},
        {"type": "deploy", **m, "application": "mysql", "charm": charm("mysql"), "units": 1},
        {"type": "deploy", **m, "application": "wordpress", "charm": charm("wordpress")},
        {"type": "add_units", **m, "application": "wordpress", "count": 2},
        {"type": "set_leader", **m, "unit": "wordpress/1"},
        {"type": "integrate", **m, "endpoints": ["wordpress", "mysql"]},
        {"type": "enter_scope", **m, "relation": 2, "unit": "mysql/0", "settings": {"host": "db"}},
        {"type": "enter_scope", **m, "relation": 2, "unit": "wordpress/1"},
        {"type": "set_unit_settings", **m, "relation": 2, "unit": "mysql/0", "settings": {"port": "3306"}},
        {"type": "set_application_settings", **m, "relation": 2, "unit": "mysql/0", "settings": {"u": "wp"}},
        {"type": "set_relation_status", **m, "relation": 2, "unit": "wordpress/1", "status": "joined"},
        {"type": "list_applications", **m},
        {"type": "get_relation", **m, "relation": 2},
        {"type": "list_relations", **m},
        {"type": "application_endpoints", **m, "application": "mysql"},
        {"type": "relation_ids", **m, "endpoint": "mysql:db"},
        {"type": "relation_units", **m, "relation": 2},
        {"type": "get_unit_settings", **m, "relation": 2, "unit": "mysql/0", "as_unit": "wordpress/1"},
        {"type": "get_application_settings", **m, "relation": 2, "application": "mysql"},
        {"type": "relation_endpoint_uuid", **m, "relation": 2, "application": "mysql"},
        {"type": "unit_relations", **m, "unit": "wordpress/1"},
        {"type": "snapshot", **m, "unit": "wordpress/1"},
        {"type": "leave_scope", **m, "relation": 2, "unit": "wordpress/1"},
        {"type": "remove_relation", **m, "relation": 2},
        {"type": "remove_unit", **m, "unit": "wordpress/0"},
        {"type": "remove_application", **m, "application": "wordpress"},
        {"type": "grant", **m, "user": "bob", "level": "write"},
        {"type": "revoke", **m, "user": "bob", "level": "write"},
        {"type": "list_access", **m},
        {"type": "events_after", **m, "after": 0},
        {"type": "remove_model", **m},
    ]


async def test_real_commands_replies_and_events_match_the_document(doc: dict[str, Any], client: Any) -> None:
    model = f"aa-{uuid.uuid4().hex[:10]}"
    bodies = _scenario(model)
    assert {b["type"] for b in bodies} == set(COMMAND_TYPES)
    events: list[dict[str, Any]] = []
    for body in bodies:
        _validator(doc, f"#/components/messages/{body['type']}/payload").validate(body)
        reply = await client.send(body)
        assert reply is not None and reply["ok"], (body, reply)
        _validator(doc, f"#/components/messages/{body['type']}.reply/payload").validate(reply)
        if body["type"] == "events_after":
            events = reply["result"]
    refused = await client.send({"type": "get_relation", "model": model, "relation": 99})
    _validator(doc, "#/components/messages/error/payload").validate(refused)
    assert {e["namespace"] for e in events} >= {"model", "application", "unit", "relation", "relation_unit"}
    for event in events:
        _validator(doc, f"#/components/messages/event.{event['namespace']}/payload").validate(event)
