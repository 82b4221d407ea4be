"""Tracing off (no tracer provider) records nothing and adds no header; the OTEL_* variables decide
whether the daemon traces. The traced path: tests/test_tracing.py."""

from __future__ import annotations

from contracts import tracing
from daemon import tracing as daemon_tracing


def test_tracing_off_records_nothing_and_adds_no_header() -> None:
    assert tracing.tracer() is None  # no provider given and no global SDK provider in this process
    assert tracing.inject({"a": 1}) == {"a": 1}
    with tracing.span("relationd send", "PRODUCER", command_id="x") as span:
        assert span is None
        assert tracing.inject() == {}


def test_configuration_follows_the_otel_variables() -> None:
    assert daemon_tracing.configure_from_env({}) is False  # nothing asked: off, no exporter made
    assert daemon_tracing.configure_from_env({"OTEL_TRACES_EXPORTER": "none"}) is False
    assert (
        daemon_tracing.configure_from_env({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
        is False
    )
    assert daemon_tracing.configure_from_env({"OTEL_TRACES_EXPORTER": "zipkin-nope"}) is False
    assert tracing.tracer() is None
