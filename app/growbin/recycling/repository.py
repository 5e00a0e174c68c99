"""SQL of the recycling domain: reads for the API, the full reload for the seed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.recycling.catalog import Catalog, LocalizedName
from growbin.recycling.models import CatalogState, Category, Item, SearchTerm
from growbin.recycling.normalize import search_key

# Trigram thresholds for the index-backed pre-filter: `key % q` (whole-term similarity) and
# `key %> q` (q resembles some part of the term, for partial words). Low enough for one typo
# in a short Korean word, high enough that the GIN index still prunes most terms.
SIMILARITY_THRESHOLD = 0.3
WORD_SIMILARITY_THRESHOLD = 0.5

# Score: the better of whole-term and partial-word similarity, plus a bonus for an exact term
# (1.0) or a term that starts with the query (0.3); one row per item or category (its best
# term). On equal scores an item, being more specific, ranks before a category.
SEARCH_SQL = """
WITH matches AS (
    SELECT t.item_id, t.category_id, t.term,
           greatest(similarity(t.key, :q), word_similarity(:q, t.key))
           + CASE WHEN t.key = :q THEN 1.0
                  WHEN t.key LIKE :q || '%' THEN 0.3
                  ELSE 0 END AS score
    FROM recycling_search_terms t
    WHERE t.key % :q OR t.key %> :q
), best AS (
    SELECT DISTINCT ON (item_id, category_id) item_id, category_id, term, score
    FROM matches
    ORDER BY item_id, category_id, score DESC, length(term)
)
SELECT CASE WHEN best.item_id IS NULL THEN 'category' ELSE 'item' END AS kind,
       coalesce(i.slug, c.slug) AS slug,
       coalesce(i.name_ko, c.name_ko) AS name_ko,
       coalesce(i.name_en, c.name_en) AS name_en,
       c.slug AS category_slug, c.name_ko AS category_name_ko, c.name_en AS category_name_en,
       best.term AS matched_term, round(best.score::numeric, 4)::float AS score
FROM best
LEFT JOIN recycling_items i ON i.id = best.item_id
JOIN recycling_categories c ON c.id = coalesce(i.category_id, best.category_id)
ORDER BY best.score DESC, kind DESC, slug
LIMIT :limit
"""


async def search(session: AsyncSession, key: str, limit: int) -> list[dict[str, Any]]:
    # Transaction-local settings: the operators `%` and `%>` read these thresholds.
    await session.execute(
        text(
            "SELECT set_config('pg_trgm.similarity_threshold', :s, true),"
            " set_config('pg_trgm.word_similarity_threshold', :w, true)"
        ),
        {"s": str(SIMILARITY_THRESHOLD), "w": str(WORD_SIMILARITY_THRESHOLD)},
    )
    result = await session.execute(text(SEARCH_SQL), {"q": key, "limit": limit})
    return [dict(row) for row in result.mappings()]


async def categories(session: AsyncSession) -> list[dict[str, Any]]:
    result = await session.execute(
        text(
            """
            SELECT c.slug, p.slug AS parent, c.name_ko, c.name_en, c.summary_ko, c.summary_en,
                   (SELECT count(*) FROM recycling_items i WHERE i.category_id = c.id)
                       AS item_count
            FROM recycling_categories c
            LEFT JOIN recycling_categories p ON p.id = c.parent_id
            ORDER BY c.position
            """
        )
    )
    return [dict(row) for row in result.mappings()]


async def category(session: AsyncSession, slug: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.slug == slug))


async def category_by_id(session: AsyncSession, category_id: int) -> Category | None:
    return await session.get(Category, category_id)


async def children(session: AsyncSession, category_id: int) -> list[Category]:
    result = await session.scalars(
        select(Category).where(Category.parent_id == category_id).order_by(Category.position)
    )
    return list(result)


async def items_in(session: AsyncSession, category_id: int) -> list[Item]:
    result = await session.scalars(
        select(Item).where(Item.category_id == category_id).order_by(Item.name_ko)
    )
    return list(result)


async def item(session: AsyncSession, slug: str) -> Item | None:
    return await session.scalar(select(Item).where(Item.slug == slug))


async def loaded_digest(session: AsyncSession) -> str | None:
    return await session.scalar(select(CatalogState.digest).where(CatalogState.id == 1))


async def replace_catalog(session: AsyncSession, catalog: Catalog, digest: str) -> None:
    """Replace the whole knowledge base in the caller's transaction.

    The data has no rows that users own, so a delete-and-insert inside one transaction is the
    simplest idempotent reload: readers see either the old or the new catalog, never a mix.
    """
    # Two seeds at once (two deploy jobs) would otherwise interleave their inserts.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('growbin.recycling.seed'))"))
    await session.execute(delete(SearchTerm))
    await session.execute(delete(Item))
    await session.execute(delete(Category))

    category_ids: dict[str, int] = {}
    # Parents are authored before their children (validated), so one pass resolves them.
    for position, spec in enumerate(catalog.categories):
        category_ids[spec.slug] = await session.scalar(
            insert(Category)
            .values(
                slug=spec.slug,
                parent_id=category_ids[spec.parent] if spec.parent else None,
                position=position,
                name_ko=spec.name.ko,
                name_en=spec.name.en,
                aliases=spec.aliases,
                summary_ko=spec.summary.ko,
                summary_en=spec.summary.en,
                steps=[s.model_dump() for s in spec.steps],
                not_accepted=[r.model_dump() for r in spec.not_accepted],
                notes=[n.model_dump() for n in spec.notes],
            )
            .returning(Category.id)
        )
        await _insert_terms(
            session, {"category_id": category_ids[spec.slug]}, spec.name, spec.aliases
        )

    for spec in catalog.items:
        item_id = await session.scalar(
            insert(Item)
            .values(
                slug=spec.slug,
                category_id=category_ids[spec.category],
                name_ko=spec.name.ko,
                name_en=spec.name.en,
                aliases=spec.aliases,
                steps=[s.model_dump() for s in spec.steps],
                notes=[n.model_dump() for n in spec.notes],
            )
            .returning(Item.id)
        )
        await _insert_terms(session, {"item_id": item_id}, spec.name, spec.aliases)

    await session.execute(delete(CatalogState))
    await session.execute(
        insert(CatalogState).values(
            id=1,
            digest=digest,
            category_count=len(catalog.categories),
            item_count=len(catalog.items),
        )
    )


async def _insert_terms(
    session: AsyncSession, subject: dict[str, int], name: LocalizedName, aliases: list[str]
) -> None:
    terms = dict.fromkeys([name.ko, name.en, *aliases])  # ordered, without repeats
    rows = [{**subject, "term": term, "key": search_key(term)} for term in terms]
    await session.execute(insert(SearchTerm), [row for row in rows if row["key"]])
