"""ASGI middleware around the app: the bearer token, then metrics and the access log (one JSON line per
request), for every request, whatever its answer."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from torchzoo.serve_cli.server.accesslog import AccessLog
from torchzoo.serve_cli.server.errors import error_response
from torchzoo.serve_cli.server.metrics import Metrics, labels

ASGIApp = Callable[[dict, Callable, Callable[[dict], Awaitable[None]]], Awaitable[None]]
#: endpoints answered without the bearer token (orchestrators probe them)
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")


class Guard:
    def __init__(self, app: ASGIApp, token: str | None, metrics: Metrics, access: AccessLog, models: set[str]) -> None:
        self.app, self.metrics, self.access, self.models = app, metrics, access, models
        self.token = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}  # what an exception that escapes every handler becomes

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self.token is not None and scope["path"] not in OPEN_PATHS:
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(given, self.token):
                    await error_response("missing or wrong bearer token", 401)(scope, receive, send_status)
                    return
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status["code"], start)

    def _record(self, scope: dict[str, Any], status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        path = scope["path"]
        model, endpoint = labels(path, self.models)
        self.metrics.requests.labels(model, endpoint, str(status)).inc()
        if model:
            self.metrics.latency.labels(model, endpoint).observe(seconds)
        self.access.add(
            {
                "time": round(time.time(), 3),
                "method": scope["method"],
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "model": model or None,
                "client": (scope.get("client") or ["", 0])[0],
            }
        )
