"""Alembic, one migration history per domain database.

Each domain keeps its history in ``growbin/<domain>/migrations`` (``env.py`` calls
:func:`run_env`); the version table lives in the domain's own database.
"""

from __future__ import annotations

import asyncio
import io

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from growbin.core.db import database_url
from growbin.core.domains import DOMAINS
from growbin.core.settings import get_settings


def migratable_domains() -> list[str]:
    """Every domain has its own database and so its own migration history."""
    return list(DOMAINS)


def alembic_config(domain: str) -> Config:
    if domain not in migratable_domains():
        raise ValueError(f"domain {domain!r} has no migrations; have: {migratable_domains()}")
    config = Config()
    config.set_main_option("script_location", f"growbin.{domain}:migrations")
    config.attributes["domain"] = domain
    return config


def upgrade(domain: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(domain), revision)


def downgrade(domain: str, revision: str) -> None:
    command.downgrade(alembic_config(domain), revision)


def current(domain: str) -> str:
    """The revision the domain's database is at ("" before the first migration)."""
    config = alembic_config(domain)
    captured = io.StringIO()
    config.stdout = captured
    command.current(config)
    return captured.getvalue().split(" ", 1)[0].strip()


def run_env(metadata: MetaData) -> None:
    """Body of every domain's ``env.py``."""
    domain = context.config.attributes["domain"]
    settings = get_settings()
    url = database_url(settings, domain)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection) -> None:  # noqa: ANN001 - a sync Connection inside run_sync
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(
            url, poolclass=pool.NullPool, connect_args={"ssl": settings.database.sslmode}
        )
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())
