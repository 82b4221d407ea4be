"""OpenTelemetry tracing of the daemon: one span per command, continuing the sender's trace.

Optional (``pip install relationd[otel]``) and off unless configured by the standard variables:
``OTEL_TRACES_EXPORTER`` (otlp, console or none) or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``, with
``OTEL_SERVICE_NAME`` (default relationd) and the other ``OTEL_*`` settings the SDK and its OTLP
exporter read. When on, each command is a consumer span (parent: the ``traceparent`` header of
its message), with the transaction, each SQL statement (the asyncpg instrumentation) and the reply
as its children; the reply carries the context back, and so do the command's change events when
this instance's relay publishes them. When off, the hooks cost one check each.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from contracts import tracing
from daemon import logs

log = logs.get("relationd.tracing")

_instrumented: Any = None

# The trace context of commands this instance committed, by command id, for its relay to continue
# when it publishes their change events. Bounded: the oldest are forgotten first.
_COMMITTED: OrderedDict[str, dict[str, Any]] = OrderedDict()
COMMITTED_KEPT = 10_000


def statements_in_commands(delegate: Any) -> Any:
    """A sampler that drops an SQL statement span without a parent (the relay's polls, pool
    checks: a trace each, every poll) and asks ``delegate`` about everything else."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import get_current_span

    class StatementsInCommands(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> Any:
            orphan = not get_current_span(parent_context).get_span_context().is_valid
            if orphan and attributes and "db.system" in attributes:
                return SamplingResult(Decision.DROP)
            return delegate.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"StatementsInCommands{{{delegate.get_description()}}}"

    return StatementsInCommands()


def enable(provider: Any) -> None:
    """Trace with ``provider`` (an SDK TracerProvider): commands, and asyncpg's statements."""
    global _instrumented
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    tracing.use(provider)
    if _instrumented is None:
        _instrumented = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        _instrumented.instrument(tracer_provider=provider)


def disable() -> None:
    """Stop tracing and give asyncpg its own methods back."""
    global _instrumented
    tracing.use(None)
    _COMMITTED.clear()
    if _instrumented is not None:
        _instrumented.uninstrument()
        _instrumented = None


def configure_from_env(env: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on when the ``OTEL_*`` variables ask for an exporter; True when on."""
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or exporter == "none":
        return False
    if not exporter and not endpoint:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        log.warning("OTEL_* variables ask for traces but relationd[otel] is not installed; tracing off")
        return False
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    elif exporter in ("", "otlp"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    else:
        log.warning("unsupported OTEL_TRACES_EXPORTER; tracing off", exporter=exporter)
        return False
    provider = TracerProvider(
        sampler=statements_in_commands(TracerProvider().sampler),  # OTEL_TRACES_SAMPLER's
        resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "relationd")}),
    )
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    enable(provider)
    log.info("tracing on", exporter=exporter or "otlp", endpoint=endpoint)
    return True


def committed(command_id: str) -> None:
    """Keep the current trace context for the change events of ``command_id`` (no-op when off)."""
    if tracing.tracer() is None:
        return
    carrier = tracing.inject()
    if carrier:
        _COMMITTED[command_id] = carrier
        if len(_COMMITTED) > COMMITTED_KEPT:
            _COMMITTED.popitem(last=False)


async def publish_event(command_id: Any, publish: Callable[..., Awaitable[None]]) -> None:
    """Publish a change event (``publish(headers=...)``) inside a span continuing the trace
    of its command, when this instance committed that command while tracing; else as it is.

    Events published by an instance that did not apply their command start no span: the trace
    context is kept in memory only, not with the event rows."""
    carrier = _COMMITTED.get(str(command_id)) if _COMMITTED and command_id is not None else None
    if carrier is None:
        await publish()
        return
    with tracing.span("relationd publish event", "PRODUCER", parent=tracing.extract(carrier)):
        await publish(headers=tracing.inject())
