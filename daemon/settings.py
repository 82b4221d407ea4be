"""Configuration from the environment (``RELATIOND_*``) and optionally an env file."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Validated at start; a bad value stops the daemon with a message naming the setting."""

    model_config = SettingsConfigDict(
        env_prefix="RELATIOND_",
        env_file=os.environ.get("RELATIOND_ENV_FILE"),
        extra="ignore",
    )

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    amqp_ca_file: str | None = None
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/relationd")
    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    database_ca_file: str | None = None

    prefetch: int = Field(default=64, ge=1, le=10000)
    pool_size: int = Field(default=10, ge=1, le=500)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_bag_bytes: int = Field(default=256 * 1024, ge=64)
    quorum_queue: bool = True
    delivery_limit: int = Field(default=20, ge=1)

    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_batch: int = Field(default=500, ge=1, le=10000)
    outbox_max_lag_seconds: float = Field(default=30.0, gt=0)
    command_retention_days: float = Field(default=7.0, gt=0)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    allow_anonymous: bool = False
    superusers: list[str] = Field(default_factory=list)
