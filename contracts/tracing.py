"""W3C trace context in AMQP headers, shared by the daemon and the client; free when tracing is off.

A command message may carry ``traceparent`` (and ``tracestate``) headers: the daemon continues that
trace, and its reply carries the context back. OpenTelemetry is an optional extra
(``relationd[otel]``): without it, or without a tracer provider (a process's global SDK one, or one
given to ``use``), every function here returns at once and adds no header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # the [otel] extra is not installed
    trace = None  # type: ignore[assignment]

TRACER_NAME = "relationd"
HEADERS = ("traceparent", "tracestate")

_provider: Any = None


def use(provider: Any) -> None:
    """Trace with ``provider`` (an SDK TracerProvider), or stop with None; tests and daemons that
    configure their own. Otherwise the process's global provider is used once one is set."""
    global _provider
    _provider = provider


def tracer() -> Any:
    """The tracer to record with, or None when tracing is off (no extra, no provider)."""
    if trace is None:
        return None
    provider = _provider
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
    return provider.get_tracer(TRACER_NAME)


def inject(headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """``headers`` plus the current trace context (nothing added when tracing is off)."""
    out = dict(headers or {})
    if tracer() is not None and trace.get_current_span().get_span_context().is_valid:
        propagate.inject(out)
    return out


def extract(headers: Mapping[str, Any] | None) -> Any:
    """The trace context carried by a message's headers (None when there is none)."""
    if trace is None or not headers:
        return None
    carrier = {k: v for k in HEADERS if isinstance(v := headers.get(k), str)}
    return propagate.extract(carrier) if carrier else None


_OFF = nullcontext()


def span(
    name: str, kind: str = "INTERNAL", parent: Any = None, **attributes: Any
) -> AbstractContextManager[Any]:
    """A span made current for the block (None inside when tracing is off). ``kind`` names an
    OpenTelemetry SpanKind; ``parent`` a context from ``extract``."""
    t = tracer()
    if t is None:
        return _OFF
    return _span(t, name, kind, parent, attributes)


@contextmanager
def _span(t: Any, name: str, kind: str, parent: Any, attributes: Mapping[str, Any]) -> Iterator[Any]:
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with t.start_as_current_span(
            name, kind=trace.SpanKind[kind], attributes=_attributes(attributes)
        ) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)


async def within(name: str, work: Awaitable[None], kind: str = "INTERNAL", headers: Any = None) -> None:
    """Await ``work`` inside a span continuing the trace of ``headers`` (just await it when off)."""
    if tracer() is None:
        await work
        return
    with span(name, kind=kind, parent=extract(headers)):
        await work


def annotate(**attributes: Any) -> None:
    """Attributes on the current span, as ``relationd.<name>`` (None values skipped)."""
    if tracer() is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_attributes(attributes))


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        f"relationd.{k}": v if isinstance(v, bool | int | float) else str(v)
        for k, v in attributes.items()
        if v is not None
    }
