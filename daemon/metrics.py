"""Prometheus metrics of the daemon, in one registry so tests and the HTTP endpoint share it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "relationd_commands_total",
    "Commands handled, by type and outcome (daemon.disposition.Disposition: applied, refused, ...).",
    ["type", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "relationd_command_duration_seconds",
    "Time from receipt to ack of a command, by type.",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "relationd_dead_lettered_total",
    "Messages sent to the dead-letter queue, by error code.",
    ["code"],
    registry=REGISTRY,
)
REDELIVERIES = Counter(
    "relationd_redeliveries_total",
    "Commands received with the redelivered flag set.",
    registry=REGISTRY,
)
BATCH_COMMANDS = Histogram(
    "relationd_batch_commands",
    "Write commands applied together in one transaction (RELATIOND_BATCH_MAX above 1).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
BATCH_DEFERRED = Counter(
    "relationd_batch_deferred_total",
    "Commands put back for a later batch because another transaction held their model.",
    registry=REGISTRY,
)
RETRIES = Counter(
    "relationd_transient_retries_total",
    "Transient failures retried, by where they happened (database, broker).",
    ["where"],
    registry=REGISTRY,
)
RECONNECTS = Counter(
    "relationd_reconnects_total",
    "Connections re-established, by peer (broker, database).",
    ["peer"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "relationd_outbox_backlog",
    "Committed change events not yet published.",
    registry=REGISTRY,
)
OUTBOX_LAG = Gauge(
    "relationd_outbox_lag_seconds",
    "Age of the oldest unpublished change event (0 when none).",
    registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "relationd_events_published_total",
    "Change events published to the events exchange.",
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "relationd_commands_in_flight",
    "Commands received and not yet acknowledged.",
    registry=REGISTRY,
)
OUTBOX_MAX_LAG = Gauge(
    "relationd_outbox_max_lag_seconds",
    "RELATIOND_OUTBOX_MAX_LAG_SECONDS: the outbox lag past which the instance reports not ready.",
    registry=REGISTRY,
)
RELAY_LEADER = Gauge(
    "relationd_relay_leader",
    "1 while this instance's outbox relay holds the relay lead (publishes every instance's events).",
    registry=REGISTRY,
)
READY = Gauge(
    "relationd_ready",
    "1 when /readyz would answer 200 (every readiness check passes), measured at each scrape.",
    registry=REGISTRY,
)
READY_CHECK = Gauge(
    "relationd_readiness_check",
    "Each /readyz check at the last scrape: 1 passing, 0 failing (check: broker, database, outbox).",
    ["check"],
    registry=REGISTRY,
)
