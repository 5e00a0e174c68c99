"""``growbin seed recycling``: load the knowledge base from ``data/`` (idempotent)."""

from growbin.core.db import get_databases
from growbin.core.redis import get_redis
from growbin.recycling.catalog import load_catalog
from growbin.recycling.service import reload_catalog


async def seed() -> str:
    catalog = load_catalog()
    async with get_databases().sessionmaker("recycling")() as session:
        loaded = await reload_catalog(session, get_redis(), catalog)
    state = "loaded" if loaded else "already up to date"
    return (
        f"{state}: {len(catalog.categories)} categories, {len(catalog.items)} items "
        f"(catalog {catalog.digest()[:12]}); search cache invalidated"
    )
