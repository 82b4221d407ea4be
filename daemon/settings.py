"""Configuration from the environment (``RELATIOND_*``) and optionally an env file."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import topology

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retention(value: Any) -> Any:
    """``7d``, ``12h``, ``30m``, ``90s`` or a number of seconds; ``off`` keeps events for ever."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("off", "none", "forever"):
            return None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as 7d, 12h, 30m, 90s or off")
        return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value.total_seconds() <= 0:
        raise ValueError("must be longer than 0 seconds (or off)")
    return value


Retention = Annotated[timedelta | None, BeforeValidator(parse_retention), AfterValidator(_positive)]


class Settings(BaseSettings):
    """Validated at start; a bad value stops the daemon with a message naming the setting."""

    model_config = SettingsConfigDict(
        env_prefix="RELATIOND_",
        env_file=os.environ.get("RELATIOND_ENV_FILE"),
        extra="ignore",
        # A refused value may hold a password (RELATIOND_AMQP_URL's list): the message names the
        # setting and what is wrong, never the value.
        hide_input_in_errors=True,
    )

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    amqp_ca_file: str | None = None
    # One broker node's URL or several, comma-separated (a cluster: deploy/README.md). A lost
    # session is re-opened on the next node of the list; each node gets this long to answer a
    # connect, and a node that leaves a round trip unanswered for the heartbeat is dropped.
    amqp_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    amqp_heartbeat_seconds: int = Field(default=5, ge=1, le=600)
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/relationd")
    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    database_ca_file: str | None = None
    # Each host of RELATIOND_DATABASE_URL gets this long to answer a connect. A statement that
    # runs longer than the command timeout is abandoned and retried on a new session: that is how
    # a frozen primary is left for the promoted standby.
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    database_command_timeout_seconds: float = Field(default=10.0, gt=0)

    prefetch: int = Field(default=1024, ge=1, le=10000)
    pool_size: int = Field(default=10, ge=1, le=500)
    # Fair shares between users (daemon/fairness.py): database turns go round robin over the users
    # with commands waiting; while others hold commands one user starts at most user_concurrency
    # turns (0: half the pool) and it holds at most user_max_held commands or user_max_held_bytes
    # of bodies of the window (prefetch); past that its deliveries are refused with RateLimited.
    fairness: bool = True
    user_concurrency: int = Field(default=0, ge=0, le=500)
    user_max_held: int = Field(default=512, ge=1, le=10000)
    user_max_held_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Batching (daemon/batcher.py): write commands waiting for the database are applied up to
    # batch_max in one transaction, by at most batch_workers transactions at once (0: half the
    # pool); batch_max 1 applies each command in a transaction of its own.
    batch_max: int = Field(default=16, ge=1, le=256)
    batch_workers: int = Field(default=2, ge=0, le=500)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_bag_bytes: int = Field(default=256 * 1024, ge=64)
    quorum_queue: bool = True
    delivery_limit: int = Field(default=20, ge=1)
    # Sent as x-quorum-initial-group-size with every quorum queue relationd declares: the same
    # value whatever the cluster's size (the broker caps it at the number of nodes), because the
    # broker refuses a redeclaration whose value differs from the queue's.
    quorum_group_size: int = Field(default=topology.QUORUM_GROUP_SIZE, ge=1, le=99)
    # The dead-letter queue keeps refused command bodies (settings values included): bounded,
    # oldest dropped first, each letter kept at most this long.
    dead_letter_max_messages: int = Field(default=topology.DEAD_LETTER_MAX_MESSAGES, ge=1)
    dead_letter_max_bytes: int = Field(default=topology.DEAD_LETTER_MAX_BYTES, ge=1)
    dead_letter_ttl_seconds: int = Field(default=topology.DEAD_LETTER_TTL_SECONDS, ge=1, le=2**31 // 1000)

    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_batch: int = Field(default=500, ge=1, le=10000)
    outbox_max_lag_seconds: float = Field(default=30.0, gt=0)
    command_retention_days: float = Field(default=7.0, gt=0)
    # How long the replay log keeps events: "7d", "12h", "30m", "90s", seconds, or "off" (forever).
    event_retention: Retention = timedelta(days=7)
    event_retention_batch: int = Field(default=1000, ge=1, le=100000)
    event_retention_interval_seconds: float = Field(default=60.0, gt=0)
    event_retention_pause_seconds: float = Field(default=0.05, ge=0)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    allow_anonymous: bool = False
    superusers: list[str] = Field(default_factory=list)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_nodes(cls, value: SecretStr) -> SecretStr:
        """Every item of the list an amqp:// or amqps:// URL (the message names no password)."""
        urls = [u.strip() for u in value.get_secret_value().split(",")]
        for number, url in enumerate(urls, 1):
            if urlsplit(url).scheme not in ("amqp", "amqps"):
                raise ValueError(
                    f"item {number} of {len(urls)} is not an amqp:// or amqps:// URL "
                    "(separate broker nodes with commas; percent-encode a comma in a password as %2C)"
                )
        return value

    def amqp_urls(self) -> list[str]:
        """The broker nodes of RELATIOND_AMQP_URL, in order (commas in a password: percent-encode)."""
        return [u.strip() for u in self.amqp_url.get_secret_value().split(",") if u.strip()]
