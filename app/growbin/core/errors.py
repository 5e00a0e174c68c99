"""One exception hierarchy, one handler, one JSON error body for every 4xx/5xx.

Body: ``{"error": {"code", "message", "details", "request_id"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from growbin.core.observability import current_request_id


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = "The request cannot be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class InvalidRequest(AppError):
    status_code = 422
    code = "invalid_request"
    message = "The request is not valid."


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    message = "Authentication is required."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        super().__init__(message, details=details, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests; try again later."

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(
            message,
            details={"retry_after_seconds": retry_after_seconds},
            headers={"Retry-After": str(retry_after_seconds)},
        )


class ServiceUnavailable(AppError):
    """503: every one is sent with ``Retry-After`` (see error_response)."""

    status_code = 503
    code = "service_unavailable"
    message = "A dependency is unavailable."


# Seconds a client is told to wait after a 503.
DEPENDENCY_RETRY_AFTER_SECONDS = 5


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

# Every error response documented in OpenAPI with the one body shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "Missing or invalid credentials"),
        (403, "Not allowed"),
        (404, "Not found"),
        (422, "Invalid input"),
        (429, "Rate limited"),
        (500, "Internal error"),
        (503, "A dependency is unavailable; retry after Retry-After seconds"),
    )
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status_code == ServiceUnavailable.status_code and "Retry-After" not in (headers or {}):
        # "Unavailable" always says when to come back: clients and proxies retry on it.
        headers = {**(headers or {}), "Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)}
    body = ErrorBody(
        error=ErrorDetail(
            code=code, message=message, details=details, request_id=current_request_id()
        )
    )
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: the raw input and ctx may hold values that are not
    # JSON-serialisable (exceptions, bytes) or that echo secrets back.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


# A dependency that cannot be reached right now (PostgreSQL restarting, Redis or the broker
# down): the same request may well succeed in a moment, so it is a 503, not a 500.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    logging.getLogger("growbin.errors").warning(
        "dependency unavailable: %s: %s", type(exc).__name__, exc
    )
    return error_response(
        ServiceUnavailable.status_code,
        ServiceUnavailable.code,
        "A service this request needs is unavailable; please try again shortly.",
    )


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "malformed_json", "The request body is not valid JSON.", details)
    return error_response(422, "invalid_request", "The request is not valid.", details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in DEPENDENCY_ERRORS:
        app.add_exception_handler(error, _dependency_error)
    # Unhandled exceptions become the 500 body in RequestContextMiddleware, which still knows
    # the request id (Starlette's own 500 handler runs outside every user middleware).
