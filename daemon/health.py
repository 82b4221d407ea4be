"""Health and metrics over HTTP on a local port: /healthz, /readyz, /metrics, served by aiohttp.

aiohttp's parser bounds what a client can send (request line and each header 8190 bytes, 128
headers) and answers anything malformed with 400; ``idle_timeout`` closes a connection that has
not completed a request in that time (slowloris) or sits idle between requests. Each connection is
its own task, so a bad client never holds up a probe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon import logs, metrics
from daemon.metrics import REGISTRY

log = logs.get("relationd.http")

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


class _ClientErrorOnOneLine(logging.Filter):
    """A request aiohttp could not parse is the client's fault: one bounded warning line naming
    it, not a traceback per bad request (a client could fill the journal with them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "bad HTTP request (answered %s): %s"
            record.args = (exc.code, (exc.message or type(exc).__name__)[:200])
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_SERVER_LOG = logging.getLogger("aiohttp.server")
if not any(isinstance(f, _ClientErrorOnOneLine) for f in _SERVER_LOG.filters):
    _SERVER_LOG.addFilter(_ClientErrorOnOneLine())


class HealthServer:
    """The three routes on ``host:port`` (port 0: any free one, read back after start)."""

    def __init__(self, host: str, port: int, readiness: ReadinessCheck, idle_timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.readiness = readiness
        self.idle_timeout = idle_timeout
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        # access_log=None: probes every few seconds would drown the daemon's own log.
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=self.idle_timeout, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("http listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(body=b'{"status": "ok"}\n', content_type="application/json")

    async def _checks(self) -> tuple[bool, dict[str, Any]]:
        checks = await self.readiness()
        return all(v is True for k, v in checks.items() if k.endswith("_ok")), checks

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, checks = await self._checks()
        return web.Response(
            status=200 if ready else 503,
            body=json.dumps({"ready": ready, **checks}).encode() + b"\n",
            content_type="application/json",
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        # Readiness as gauges, so alerts see what /readyz says without probing it themselves.
        ready, checks = await self._checks()
        metrics.READY.set(ready)
        for key, value in checks.items():
            if key.endswith("_ok"):
                metrics.READY_CHECK.labels(key.removesuffix("_ok")).set(value is True)
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
