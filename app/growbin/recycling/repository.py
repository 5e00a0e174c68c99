"""SQL of the recycling domain: reads for the API, the full reload for the seed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.recycling.catalog import Catalog, LocalizedName
from growbin.recycling.models import CatalogState, Category, Item, SearchMiss, SearchTerm
from growbin.recycling.normalize import Query, compact, search_key

# Trigram thresholds of the index-backed pre-filter: `key % q` (whole-term similarity) and
# `key %> q` (q resembles some part of the term, for partial words). Loose on purpose: the
# weakest rows that pass are the suggestions of a query nothing matches confidently, and the
# score, not the filter, decides what is confident (service.CONFIDENT_SCORE).
SIMILARITY_THRESHOLD = 0.25
WORD_SIMILARITY_THRESHOLD = 0.45
# Heads: a name made of the head alone scores 1 + this; a longer name ending in the head
# scores 1 + the similarity of the rest of it to the query's modifier, so the bare head
# ("빨대" for "우유팩 빨대") beats names whose modifiers the query does not share
# ("금속 빨대"), and loses to one it does share ("스티로폼 박스" for "스치로폼 박스").
BARE_HEAD_SCORE = 0.3
# An item the modifier names that is itself a kind of the head ("삼다수 병") scores its
# modifier match times this: an exact modifier (1.9) beats the bare head but not an exact
# name of the whole query (2.0).
MODIFIER_WEIGHT = 0.95

# One statement per search. Keys are spaceless (normalize.search_key), so pg_trgm sees every
# term as one word: word_similarity(q, key) is the best match of q inside a term (a partial
# word), and strict_word_similarity would add nothing over similarity().
#
# Three ways a term can match, its score the best of them:
# - the whole phrase: similarity or partial-word similarity (0..1), + 1.0 for the exact
#   term, + 0.3 for a term that starts with the query (typing in progress);
# - the head noun: Korean and English compounds are head-final (페트병 라벨 is a label,
#   음료수 캔 a can, pizza box a box). A split of the query into modifier + head counts when
#   the head is a name or the end of one (``compact``, syllable by syllable); a split inside
#   a written word ("음료수캔") also needs a modifier some name starts with, and a head of
#   two syllables unless it is a name by itself. Names ending in the head score as above;
# - the modifier names an item that is itself a kind of the head: "삼다수 병" is a
#   water bottle, since 삼다수 is one of its names and another ("생수 병") ends in 병.
# One row per item or category (its best term); equal scores rank an item (more specific)
# before a category, then the shorter matched term. After the hits come the top-level
# categories in catalogue order (kind 'browse'), for clients to offer when nothing matches.
SEARCH_SQL = """
WITH phrase AS (
    SELECT key FROM unnest(CAST(:phrases AS text[])) AS p(key)
), split AS (
    SELECT *
    FROM unnest(CAST(:head_texts AS text[]), CAST(:heads AS text[]),
                CAST(:modifiers AS text[]), CAST(:inside_word AS boolean[]))
         AS s(head_text, head, modifier, inside_word)
), head AS (
    SELECT s.head_text, s.head, s.modifier
    FROM split s
    WHERE (EXISTS (SELECT 1 FROM recycling_search_terms t WHERE t.compact = s.head_text)
           OR ((NOT s.inside_word OR char_length(s.head_text) >= 2)
               AND EXISTS (SELECT 1 FROM recycling_search_terms t
                           WHERE t.compact LIKE '%' || s.head_text)))
      AND (NOT s.inside_word
           OR EXISTS (SELECT 1 FROM recycling_search_terms t
                      WHERE t.key LIKE s.modifier || '%'))
), matches AS (
    SELECT t.item_id, t.category_id, t.term,
           greatest(similarity(t.key, p.key), word_similarity(p.key, t.key))
           + CASE WHEN t.key = p.key THEN 1.0
                  WHEN t.key LIKE p.key || '%' THEN 0.3
                  ELSE 0 END AS score
    FROM phrase p
    JOIN recycling_search_terms t ON t.key % p.key OR t.key %> p.key
    UNION ALL
    SELECT t.item_id, t.category_id, t.term,
           1.0 + CASE WHEN t.compact = h.head_text THEN CAST(:bare_head_score AS float)
                      ELSE similarity(left(t.key, length(t.key) - length(h.head)), h.modifier)
                 END
    FROM head h
    JOIN recycling_search_terms t ON t.compact LIKE '%' || h.head_text
    UNION ALL
    SELECT t.item_id, t.category_id, t.term,
           CAST(:modifier_weight AS float) * (similarity(t.key, h.modifier)
           + CASE WHEN t.key = h.modifier THEN 1.0 ELSE 0 END)
    FROM head h
    JOIN recycling_search_terms t ON t.key % h.modifier
    WHERE t.item_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM recycling_search_terms kind
        WHERE kind.item_id = t.item_id AND kind.compact <> h.head_text
          AND kind.compact LIKE '%' || h.head_text
    )
), best AS (
    SELECT DISTINCT ON (item_id, category_id) item_id, category_id, term, score
    FROM matches
    ORDER BY item_id, category_id, score DESC, length(term)
), hits AS (
    SELECT row_number() OVER (
               ORDER BY best.score DESC, best.item_id IS NULL, length(best.term),
                        coalesce(i.slug, c.slug)
           ) AS position,
           CASE WHEN best.item_id IS NULL THEN 'category' ELSE 'item' END AS kind,
           coalesce(i.slug, c.slug) AS slug,
           coalesce(i.name_ko, c.name_ko) AS name_ko,
           coalesce(i.name_en, c.name_en) AS name_en,
           c.slug AS category_slug, c.name_ko AS category_name_ko,
           c.name_en AS category_name_en,
           best.term AS matched_term, round(best.score::numeric, 4)::float AS score
    FROM best
    LEFT JOIN recycling_items i ON i.id = best.item_id
    JOIN recycling_categories c ON c.id = coalesce(i.category_id, best.category_id)
    ORDER BY position
    LIMIT :limit
)
SELECT 0 AS part, * FROM hits
UNION ALL
SELECT 1, c.position, 'browse', c.slug, c.name_ko, c.name_en, c.slug, c.name_ko, c.name_en,
       NULL, NULL
FROM recycling_categories c
WHERE c.parent_id IS NULL
ORDER BY part, position
"""


async def search(session: AsyncSession, query: Query, limit: int) -> list[dict[str, Any]]:
    """Hits best first, then the top-level categories (``kind`` 'browse')."""
    # Transaction-local settings: the operators `%` and `%>` read these thresholds.
    await session.execute(
        text(
            "SELECT set_config('pg_trgm.similarity_threshold', :s, true),"
            " set_config('pg_trgm.word_similarity_threshold', :w, true)"
        ),
        {"s": str(SIMILARITY_THRESHOLD), "w": str(WORD_SIMILARITY_THRESHOLD)},
    )
    result = await session.execute(text(SEARCH_SQL), search_parameters(query, limit))
    return [dict(row) for row in result.mappings()]


def search_parameters(query: Query, limit: int) -> dict[str, Any]:
    return {
        "phrases": list(query.phrases),
        "head_texts": [split.head_text for split in query.splits],
        "heads": [split.head for split in query.splits],
        "modifiers": [split.modifier for split in query.splits],
        "inside_word": [split.inside_word for split in query.splits],
        "bare_head_score": BARE_HEAD_SCORE,
        "modifier_weight": MODIFIER_WEIGHT,
        "limit": limit,
    }


# One statement: counted whether or not the result came from the cache.
RECORD_MISS_SQL = """
INSERT INTO recycling_search_misses AS m (key, query, example, count, first_seen, last_seen)
VALUES (:key, :query, :example, 1, now(), now())
ON CONFLICT (key) DO UPDATE
SET count = m.count + 1, query = excluded.query, example = excluded.example,
    last_seen = excluded.last_seen
"""


async def record_miss(session: AsyncSession, key: str, query: str, example: str) -> None:
    await session.execute(
        text(RECORD_MISS_SQL), {"key": key, "query": query[:100], "example": example[:100]}
    )


async def top_misses(session: AsyncSession, limit: int) -> list[SearchMiss]:
    result = await session.scalars(
        select(SearchMiss)
        .order_by(SearchMiss.count.desc(), SearchMiss.last_seen.desc())
        .limit(limit)
    )
    return list(result)


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


def _term_rows(name: LocalizedName, aliases: list[str]) -> list[dict[str, str]]:
    """The search terms of one item or category as stored (terms with no key are left out)."""
    terms = dict.fromkeys([name.ko, name.en, *aliases])  # ordered, without repeats
    rows = [{"term": term, "key": search_key(term), "compact": compact(term)} for term in terms]
    return [row for row in rows if row["key"]]


def load_digest(catalog: Catalog) -> str:
    """What a load writes: the catalogue and its terms' search forms.

    The forms come from code (``normalize``), so a change there reloads an unchanged catalogue
    too; otherwise stored keys would silently stop matching the keys of new queries.
    """
    forms = [_term_rows(spec.name, spec.aliases) for spec in [*catalog.categories, *catalog.items]]
    canonical = json.dumps([catalog.digest(), forms], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _insert_terms(
    session: AsyncSession, subject: dict[str, int], name: LocalizedName, aliases: list[str]
) -> None:
    rows = [{**subject, **row} for row in _term_rows(name, aliases)]
    await session.execute(insert(SearchTerm), rows)
