"""Request ids, JSON logs and Prometheus metrics.

The middleware is plain ASGI (no BaseHTTPMiddleware) so it adds little per request.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST_ID_HEADER = b"x-request-id"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A client-supplied id is kept only if it is short and plain, so it is safe in logs.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

HTTP_REQUESTS = Counter(
    "growbin_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "growbin_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def current_request_id() -> str | None:
    return _request_id.get()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms", "service"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours without the request id.
    logging.getLogger("uvicorn.access").disabled = True


def _route_template(scope: Scope) -> str:
    # Label by template (/points/{point_id}), never the raw path: bounded metric cardinality.
    # The router records the matched route in the scope; FastAPI's included routers keep the
    # prefixed template in their route context.
    context = scope.get("fastapi", {}).get("effective_route_context")
    if context is not None and isinstance(getattr(context, "path", None), str):
        return context.path
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.access_log = logging.getLogger("growbin.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER:
                supplied = value.decode("latin-1")
                break
        request_id = (
            supplied if supplied and _ACCEPTABLE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        )
        token = _request_id.set(request_id)
        status_holder = [500]
        response_started = [False]
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                response_started[0] = True
                headers = list(message.get("headers", []))
                headers.append((_REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logging.getLogger("growbin.errors").exception("unhandled error")
            if response_started[0]:
                raise
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            body = {
                "error": {
                    "code": "internal_error",
                    "message": "An internal error occurred.",
                    "details": None,
                    "request_id": request_id,
                }
            }
            await send_with_id({"type": "http.response.body", "body": json.dumps(body).encode()})
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, route, str(status_holder[0])).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(elapsed)
            if route not in ("/metrics", "/health", "/ready"):
                self.access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                        "service": self.service,
                    },
                )
            _request_id.reset(token)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
