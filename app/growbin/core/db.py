"""SQLAlchemy 2 async engines and sessions, one database per domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from sqlalchemy import URL, MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from growbin.core.settings import Environment, Settings, get_settings

# Explicit constraint names so Alembic migrations can drop/alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """Metadata for one domain's models (each domain database has its own)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def database_url(settings: Settings, domain: str, *, driver: str = "asyncpg") -> URL:
    section = settings.database.for_domain(domain)
    if section.password is None and settings.environment not in (
        Environment.DEVELOPMENT,
        Environment.TEST,
    ):
        raise ValueError(f"GROWBIN_DATABASE__{domain.upper()}__PASSWORD is required")
    return URL.create(
        f"postgresql+{driver}",
        username=section.user,
        password=section.password.get_secret_value() if section.password else None,
        host=settings.database.host,
        port=settings.database.port,
        database=section.name,
    )


class DatabaseRegistry:
    """Engines created on first use, so a service only connects to the databases it uses."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engines: dict[str, AsyncEngine] = {}
        self._sessionmakers: dict[tuple[str, bool], async_sessionmaker[AsyncSession]] = {}

    def engine(self, domain: str) -> AsyncEngine:
        if domain not in self._engines:
            self._engines[domain] = create_async_engine(
                database_url(self._settings, domain),
                pool_size=self._settings.database.pool_size,
                max_overflow=self._settings.database.max_overflow,
                # A pooled connection may have died with a PostgreSQL restart; the ping (one
                # round trip per checkout) replaces it instead of failing the next request.
                pool_pre_ping=True,
                pool_recycle=1800,
                connect_args={"ssl": self._settings.database.sslmode},
            )
        return self._engines[domain]

    def sessionmaker(
        self, domain: str, *, autocommit: bool = False
    ) -> async_sessionmaker[AsyncSession]:
        """Sessions on ``domain``'s database.

        ``autocommit`` sessions run each statement on its own, without BEGIN/ROLLBACK round
        trips: for endpoints that only read with a single statement.
        """
        key = (domain, autocommit)
        if key not in self._sessionmakers:
            engine = self.engine(domain)
            if autocommit:
                engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._sessionmakers[key] = async_sessionmaker(engine, expire_on_commit=False)
        return self._sessionmakers[key]

    async def dispose(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        self._sessionmakers.clear()


_registry: DatabaseRegistry | None = None


def get_databases() -> DatabaseRegistry:
    global _registry
    if _registry is None:
        _registry = DatabaseRegistry(get_settings())
    return _registry


async def close_databases() -> None:
    global _registry
    if _registry is not None:
        await _registry.dispose()
        _registry = None


def session_dependency(
    domain: str, *, autocommit: bool = False
) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A FastAPI dependency yielding a session on ``domain``'s database.

    Domains wrap it in an ``Annotated`` alias (e.g. ``AuthSession``); services commit
    explicitly, anything uncommitted is rolled back when the request ends. ``autocommit``:
    see :meth:`DatabaseRegistry.sessionmaker`.
    """

    async def session() -> AsyncIterator[AsyncSession]:
        async with get_databases().sessionmaker(domain, autocommit=autocommit)() as db_session:
            yield db_session

    session.__name__ = f"{domain}_session"
    return session
