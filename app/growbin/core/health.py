"""``/health`` (the process answers) and ``/ready`` (its databases and Redis answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from growbin.core.db import get_databases
from growbin.core.errors import error_response
from growbin.core.redis import get_redis

CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(domain: str) -> None:
    async with get_databases().engine(domain).connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_redis() -> None:
    await get_redis().ping()


def health_router(database_domains: Sequence[str]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", operation_id="health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", operation_id="ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks = {f"database:{d}": _check_database(d) for d in database_domains}
        checks["redis"] = _check_redis()
        names = list(checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(c, CHECK_TIMEOUT_SECONDS) for c in checks.values()),
            return_exceptions=True,
        )
        failing = {
            name: type(result).__name__
            for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)
        }
        if failing:
            return error_response(
                503, "not_ready", "A dependency is unavailable.", {"failing": failing}
            )
        return JSONResponse({"status": "ready", "checks": names})

    return router
