"""The application factory: one FastAPI app from a list of domains.

A domain is described by a :class:`DomainSpec` (``growbin.<domain>.router:domain``); the
per-service apps mount one, the all-in-one development app mounts them all.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

import growbin
from growbin.core.db import close_databases
from growbin.core.domains import api_prefix
from growbin.core.errors import ERROR_RESPONSES, install_error_handlers
from growbin.core.events import UserDeletionConsumer
from growbin.core.health import health_router
from growbin.core.observability import (
    RequestContextMiddleware,
    configure_logging,
    metrics_endpoint,
)
from growbin.core.processes import PROCESSES
from growbin.core.redis import close_redis
from growbin.core.settings import get_settings


class BackgroundService(Protocol):
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class DomainSpec:
    name: str
    router: APIRouter
    # Removes or anonymises one user's data in this domain's database; idempotent.
    purge_user: Callable[[uuid.UUID], Awaitable[None]] | None = None
    # Loops the domain runs inside every process that serves its API: each callable starts
    # one (in the running event loop) and returns it; it is stopped when the process stops.
    background: tuple[Callable[[], BackgroundService], ...] = ()


def load_domain(name: str) -> DomainSpec:
    return importlib.import_module(f"growbin.{name}.router").domain


def _operation_id(route: APIRoute) -> str:
    # Stable ids for generated clients: "<tag>-<endpoint function name>".
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(domains: Sequence[DomainSpec], *, service: str) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)

    def start_consumer(spec: DomainSpec) -> BackgroundService:
        assert spec.purge_user is not None
        consumer = UserDeletionConsumer(spec.name, spec.purge_user)
        consumer.start()
        return consumer

    starters = [
        *(partial(start_consumer, spec) for spec in domains if spec.purge_user),
        *(start for spec in domains for start in spec.background),
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = [start() for start in starters]
        try:
            yield
        finally:
            for service in reversed(running):
                await service.stop()
            await close_databases()
            await close_redis()

    app = FastAPI(
        title=f"Growbin {service} API",
        version=growbin.__version__,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        generate_unique_id_function=_operation_id,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=service)
    # `/ready` checks the databases the deploy contract gives the service (none for an app
    # outside the contract, such as a test's).
    databases = sorted(
        {
            database
            for spec in domains
            for database in getattr(PROCESSES.get(f"api-{spec.name}"), "databases", ())
        }
    )
    app.include_router(health_router(databases))
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for spec in domains:
        app.include_router(spec.router, prefix=api_prefix(spec.name), tags=[spec.name])
    app.state.domains = {spec.name: spec for spec in domains}
    return app
