"""The AsyncAPI 3.0 document of relationd's whole protocol, built from the contracts themselves.

Channels, operations and bindings come from ``contracts.topology`` and ``contracts.events``; every
message's payload schema is generated from the pydantic models in ``contracts.commands``,
``contracts.results`` / ``contracts.replies`` and ``contracts.events``. So the document cannot
drift from what the daemon and the client run: ``relationd asyncapi`` prints it, and
``docs/asyncapi.json`` is a copy that a test keeps current.

The document is written from the daemon's side: it *receives* commands (and replies to each),
*sends* change events and *sends* refused commands to the dead-letter queue.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from pydantic import TypeAdapter

from contracts import topology
from contracts.commands import COMMAND_TYPES, access_help, declared_errors, errors_help
from contracts.errors import ErrorCode
from contracts.events import KINDS, NO_RELATION, ChangeEvent, Namespace
from contracts.replies import ErrorReply
from contracts.results import RESULT_TYPES

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"

_PROTOCOL = """\
relationd is Juju's relation domain as a service. Clients publish JSON **commands** to the
`{queue}` queue (through the default exchange, persistent, `content_type` `{content}`) with a
unique `message_id`, the command id: a command sent again with the same id is applied once and
answered with the same reply. A client that wants an answer sets `reply_to` and
`correlation_id`; the **reply** goes to that queue with that correlation id, after the command's
transaction committed: `{{"ok": true, "result": ...}}` or `{{"ok": false, "error": {{"code",
"message"}}}}`. Error codes are stable (`ErrorCode`). Each command message names the access it
needs (`x-access`: read, write, admin, or null for any authenticated user) and the domain codes
it may be refused with (`x-errors`); any command may also get `InvalidCommand`, `UnknownCommand`,
`Unauthorized`, `RateLimited`, `PayloadTooLarge` or `Internal`.

Every committed change is published as a **change event** on the topic exchange `{events}` with
routing key `<model-uuid>.<namespace>.<relation-id or {norel}>`: bind `<model-uuid>.#` for one model,
`*.<namespace>.*` for one namespace, `<model-uuid>.*.<id>` for one relation. Events carry a
per-model gapless `seq` and a growing `event_id`; the `events_after` command replays them, so a
watcher binds first, replays from its last `seq`, then follows live events, dropping duplicates
by `seq` (an event may be published more than once after a crash). The log keeps events for the
daemon's retention (`RELATIOND_EVENT_RETENTION`, 7 days by default): a replay from before what
is kept is refused with `EventsExpired` (`details.oldest_kept_seq`), and the consumer reads the
`snapshot` command's state and follows the events after its `seq`.

A command that cannot be parsed or keeps failing is dead-lettered to `{dlq}` with the reason in
the `{reason}` header and the code in `{code}`."""


def _version() -> str:
    try:
        return metadata.version("relationd")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def _schemas() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """JSON Schemas (components) and the root schema of each command, result and event."""
    inputs: list[tuple[tuple[str, str], Any, TypeAdapter[Any]]] = []
    inputs += [(("command", name), "validation", TypeAdapter(cls)) for name, cls in COMMAND_TYPES.items()]
    inputs += [(("result", name), "serialization", TypeAdapter(t)) for name, t in RESULT_TYPES.items()]
    inputs += [(("event", "event"), "serialization", TypeAdapter(ChangeEvent))]
    inputs += [(("error", "error"), "serialization", TypeAdapter(ErrorReply))]
    roots, definitions = TypeAdapter.json_schemas(inputs, ref_template=SCHEMAS + "{model}")
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    by_kind: dict[str, dict[str, Any]] = {"command": {}, "result": {}}
    for ((kind, name), _mode), schema in roots.items():
        if kind in by_kind:
            by_kind[kind][name] = schema
    # Stable codes: the error body's code is one of ErrorCode, not any string.
    schemas["ErrorCode"] = {
        "title": "ErrorCode",
        "description": "Every error code a reply can carry; stable, never renamed.",
        "type": "string",
        "enum": [c.value for c in ErrorCode],
    }
    schemas["ErrorBody"]["properties"]["code"] = {"$ref": SCHEMAS + "ErrorCode"}
    # The discriminator is required on the wire, whatever the model's default.
    for name, cls in COMMAND_TYPES.items():
        schema = schemas[cls.__name__]
        schema["required"] = ["type", *[r for r in schema.get("required", []) if r != "type"]]
        schema["properties"]["type"].pop("default", None)
        assert by_kind["command"][name] == {"$ref": SCHEMAS + cls.__name__}
    return schemas, by_kind["command"], by_kind["result"], roots[(("event", "event"), "serialization")]


def _amqp(**fields: Any) -> dict[str, Any]:
    return {"amqp": {**fields, "bindingVersion": AMQP_BINDING_VERSION}}


def _reply_schema(command: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": f"{COMMAND_TYPES[command].__name__}Reply",
        "description": f"The ok reply to `{command}`.",
        "type": "object",
        "additionalProperties": False,
        "required": ["ok", "command_id", "type", "result"],
        "properties": {
            "ok": {"const": True},
            "command_id": {"type": "string", "description": "The command's message_id."},
            "type": {"const": command},
            "result": result,
        },
    }


def build() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as a JSON-ready dict."""
    schemas, command_roots, result_roots, _event_root = _schemas()
    messages: dict[str, Any] = {}
    command_refs: dict[str, Any] = {}
    reply_refs: dict[str, Any] = {}
    event_refs: dict[str, Any] = {}

    correlation = {
        "description": "The reply carries the command's correlation_id (an AMQP property).",
        "location": "$message.header#/correlation_id",
    }
    for name, cls in COMMAND_TYPES.items():
        messages[name] = {
            "name": name,
            "title": cls.__name__,
            "summary": _summary(cls),
            "description": " ".join(filter(None, (access_help(cls), errors_help(cls)))),
            "x-access": cls.access.value if cls.access is not None else None,
            "x-errors": declared_errors(cls),
            "contentType": topology.CONTENT_TYPE,
            "correlationId": correlation,
            "payload": command_roots[name],
            "bindings": _amqp(messageType=name),
        }
        command_refs[name] = {"$ref": MESSAGES + name}
        reply_name = f"{name}.reply"
        schema_name = f"{cls.__name__}Reply"
        schemas[schema_name] = _reply_schema(name, result_roots[name])
        messages[reply_name] = {
            "name": reply_name,
            "title": schema_name,
            "summary": f"The result of `{name}`.",
            "contentType": topology.CONTENT_TYPE,
            "correlationId": correlation,
            "payload": {"$ref": SCHEMAS + schema_name},
        }
        reply_refs[reply_name] = {"$ref": MESSAGES + reply_name}
    messages["error"] = {
        "name": "error",
        "title": "ErrorReply",
        "summary": "A refusal of any command, with a stable error code.",
        "contentType": topology.CONTENT_TYPE,
        "correlationId": correlation,
        "payload": {"$ref": SCHEMAS + "ErrorReply"},
    }
    reply_refs["error"] = {"$ref": MESSAGES + "error"}

    for namespace in Namespace:
        name = f"event.{namespace.value}"
        schema_name = "".join(part.title() for part in namespace.value.split("_")) + "Event"
        schemas[schema_name] = {
            "title": schema_name,
            "description": f"A change event of namespace `{namespace.value}`.",
            "allOf": [
                {"$ref": SCHEMAS + "ChangeEvent"},
                {
                    "type": "object",
                    "properties": {
                        "namespace": {"const": namespace.value},
                        "kind": {"type": "string", "enum": list(KINDS[namespace])},
                    },
                },
            ],
        }
        messages[name] = {
            "name": name,
            "title": schema_name,
            "summary": f"{namespace.value}: " + ", ".join(KINDS[namespace]) + ".",
            "contentType": topology.CONTENT_TYPE,
            "payload": {"$ref": SCHEMAS + schema_name},
            "bindings": _amqp(messageType=f"event.{namespace.value}"),
        }
        event_refs[name] = {"$ref": MESSAGES + name}

    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "DeadLetter",
        "summary": "A refused command, as it was sent, with why it was refused.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [topology.DEAD_LETTER_REASON_HEADER, topology.DEAD_LETTER_CODE_HEADER],
            "properties": {
                topology.DEAD_LETTER_REASON_HEADER: {"type": "string", "description": "Why it was refused."},
                topology.DEAD_LETTER_CODE_HEADER: {"$ref": SCHEMAS + "ErrorCode"},
            },
        },
        "payload": {"description": "The command's body, byte for byte (it may not be JSON)."},
    }

    command_queue = topology.command_queue()
    channels: dict[str, Any] = {
        "commands": {
            "address": topology.COMMAND_QUEUE,
            "title": "Commands",
            "description": (
                "The durable command queue (a quorum queue with a delivery limit, replicated on "
                f"up to {topology.QUORUM_GROUP_SIZE} nodes of a cluster, where the broker supports "
                "it), reached through the default exchange with routing key "
                f"`{topology.COMMAND_QUEUE}`. Properties: `message_id` (the command id, required), "
                "`reply_to` and `correlation_id` (for an answer), persistent delivery mode, "
                f"`content_type` `{topology.CONTENT_TYPE}`, and `user_id` (the broker user acting). "
                "Optional headers `traceparent` and `tracestate` (W3C trace context) make the "
                "daemon's handling of the command part of the sender's trace."
            ),
            "messages": command_refs,
            "bindings": _amqp(
                **{
                    "is": "queue",
                    "queue": {
                        "name": command_queue.name,
                        "durable": command_queue.durable,
                        "exclusive": False,
                        "autoDelete": False,
                    },
                }
            ),
        },
        "replies": {
            "address": None,
            "title": "Replies",
            "description": (
                "The caller's own queue, named in the command's `reply_to` (typically exclusive "
                "and server-named), published through the default exchange with the command's "
                "`correlation_id`. When the daemon traces, the `traceparent` and `tracestate` "
                "headers carry its trace context back."
            ),
            "messages": reply_refs,
            "bindings": _amqp(
                **{"is": "queue", "queue": {"durable": False, "exclusive": True, "autoDelete": True}}
            ),
        },
        "events": {
            "address": "{model_uuid}.{namespace}.{relation}",
            "title": "Change events",
            "description": (
                f"Every committed change, on the topic exchange `{topology.EVENTS_EXCHANGE}`, in "
                "commit order per model. The routing key is `<model-uuid>.<namespace>.<relation>`. "
                "When the daemon traces, an event may carry its command's trace context in the "
                "`traceparent` and `tracestate` headers."
            ),
            "parameters": {
                "model_uuid": {"description": "The model's UUID."},
                "namespace": {
                    "description": "What changed, named after Juju's watcher namespaces.",
                    "enum": [n.value for n in Namespace],
                },
                "relation": {
                    "description": f"The relation id the change concerns, or `{NO_RELATION}` for none.",
                    "examples": ["2", NO_RELATION],
                },
            },
            "messages": event_refs,
            "bindings": _amqp(
                **{
                    "is": "routingKey",
                    "exchange": {
                        "name": topology.EVENTS_EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                    },
                }
            ),
        },
        "deadLetters": {
            "address": topology.DEAD_LETTER_QUEUE,
            "title": "Dead letters",
            "description": (
                f"Commands refused without being applied, via the fanout-style exchange "
                f"`{topology.DEAD_LETTER_EXCHANGE}` into the durable queue "
                f"`{topology.DEAD_LETTER_QUEUE}`: a quorum queue like the command queue, bounded "
                f"(by default {topology.DEAD_LETTER_MAX_MESSAGES} letters and "
                f"{topology.DEAD_LETTER_MAX_BYTES // (1024 * 1024)} MiB, the oldest dropped first) "
                f"and each letter kept at most {topology.DEAD_LETTER_TTL_SECONDS // 86400} days. "
                "Letters carry whole command bodies, settings values included: only the daemon's "
                "broker user and the broker's administrators may read the queue."
            ),
            "messages": {"dead_letter": {"$ref": MESSAGES + "dead_letter"}},
            "bindings": _amqp(
                **{
                    "is": "queue",
                    "queue": {
                        "name": topology.DEAD_LETTER_QUEUE,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                    },
                }
            ),
        },
    }

    def refs(channel: str, names: dict[str, Any]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]

    operations = {
        "applyCommand": {
            "action": "receive",
            "title": "Apply a command",
            "summary": "Apply one command in one transaction; reply after the commit.",
            "channel": {"$ref": "#/channels/commands"},
            "messages": refs("commands", command_refs),
            "reply": {
                "address": {
                    "description": "The queue named in the command's reply_to property.",
                    "location": "$message.header#/reply_to",
                },
                "channel": {"$ref": "#/channels/replies"},
                "messages": refs("replies", reply_refs),
            },
            "bindings": _amqp(ack=True),
        },
        "publishEvent": {
            "action": "send",
            "title": "Publish a change event",
            "summary": "Publish each committed change event (outbox relay, publisher confirms).",
            "channel": {"$ref": "#/channels/events"},
            "messages": refs("events", event_refs),
            "bindings": _amqp(deliveryMode=2, mandatory=False),
        },
        "deadLetterCommand": {
            "action": "send",
            "title": "Dead-letter a command",
            "summary": "Set aside a command that cannot be parsed or keeps failing, with the reason.",
            "channel": {"$ref": "#/channels/deadLetters"},
            "messages": refs("deadLetters", {"dead_letter": None}),
            "bindings": _amqp(deliveryMode=2),
        },
    }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:relationd:protocol",
        "info": {
            "title": "relationd",
            "version": _version(),
            "description": _PROTOCOL.format(
                queue=topology.COMMAND_QUEUE,
                content=topology.CONTENT_TYPE,
                events=topology.EVENTS_EXCHANGE,
                norel=NO_RELATION,
                dlq=topology.DEAD_LETTER_QUEUE,
                reason=topology.DEAD_LETTER_REASON_HEADER,
                code=topology.DEAD_LETTER_CODE_HEADER,
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": topology.CONTENT_TYPE,
        "servers": {
            "broker": {
                "host": "{host}:{port}",
                "pathname": "/{vhost}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The RabbitMQ broker (and virtual host) relationd and its clients share.",
                "variables": {
                    "host": {"default": "127.0.0.1"},
                    "port": {"default": "5672"},
                    "vhost": {"default": "", "description": "The virtual host; empty for `/`."},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> str:
    """The document as stable, indented JSON with a final newline (what docs/ holds)."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
