"""The search table: everyday queries, as people type them, land in the right category.

Every ``search_queries/*.yaml`` file holds queries written for this test (not the catalogue's
own names: a query whose search key is a name or alias is refused), each with the category
its first hit must have and the form it takes. The whole table runs through the real API
(PostgreSQL with pg_trgm, Redis); every miss is printed, and listed in the failure message.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import httpx
import pytest
import yaml
from growbin.recycling.catalog import load_catalog
from growbin.recycling.normalize import search_key
from pydantic import BaseModel, ConfigDict, Field
from recycling_fixtures import (  # noqa: F401 - fixtures, used by name
    api_fixture,
    recycling_app_fixture,
    seeded_catalog_fixture,
)

QUERY_DIR = Path(__file__).parent / "search_queries"
MIN_QUERIES = 300
# Forms that are not the catalogue's wording at all.
HARD_FORMS = ("colloquial", "typo", "spacing", "brand")
MIN_HARD_QUERIES = 100
REQUIRED_ACCURACY = 0.97


class TableQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    q: str = Field(min_length=1, max_length=100)
    category: str
    form: Literal["plain", "phrase", "colloquial", "typo", "spacing", "brand", "english"]


class QueryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[TableQuery] = Field(min_length=1)


def _load_table() -> list[tuple[str, TableQuery]]:
    table = []
    for path in sorted(QUERY_DIR.glob("*.yaml")):
        parsed = QueryFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        table.extend((path.name, query) for query in parsed.queries)
    return table


TABLE = _load_table()
CATALOG = load_catalog()


def test_table_is_large_and_mostly_not_catalogue_wording() -> None:
    forms = Counter(query.form for _, query in TABLE)
    assert len(TABLE) >= MIN_QUERIES, forms
    assert sum(forms[form] for form in HARD_FORMS) >= MIN_HARD_QUERIES, forms


def test_no_query_appears_twice() -> None:
    seen: dict[str, str] = {}
    repeated = []
    for file, query in TABLE:
        text = query.q.strip()
        if text in seen:
            repeated.append(f"{text!r} in {seen[text]} and {file}")
        seen.setdefault(text, file)
    assert repeated == []


def test_every_expected_category_exists() -> None:
    slugs = {category.slug for category in CATALOG.categories}
    unknown = [(file, q.q, q.category) for file, q in TABLE if q.category not in slugs]
    assert unknown == []


def test_no_query_is_a_catalogue_name_or_alias() -> None:
    # The table tests the search, not a restatement of the data: a query equal to a name or
    # alias (after normalisation) would pass by lookup alone.
    terms = {
        search_key(term): subject
        for subject, names in [
            *((item.slug, (item.name.ko, item.name.en, *item.aliases)) for item in CATALOG.items),
            *(
                (category.slug, (category.name.ko, category.name.en, *category.aliases))
                for category in CATALOG.categories
            ),
        ]
        for term in names
    }
    restated = [
        (file, q.q, terms[search_key(q.q)]) for file, q in TABLE if search_key(q.q) in terms
    ]
    assert restated == []


@pytest.mark.integration
async def test_first_hit_has_the_expected_category(api: httpx.AsyncClient) -> None:
    misses = []
    missed_forms: Counter[str] = Counter()
    for file, query in TABLE:
        response = await api.get("/api/v1/recycling/search", params={"q": query.q, "limit": 3})
        assert response.status_code == 200, response.text
        hits = response.json()["items"]
        got = hits[0]["category"]["slug"] if hits else None
        if got != query.category:
            missed_forms[query.form] += 1
            matched = f"{hits[0]['matched_term']} ({hits[0]['score']})" if hits else "-"
            misses.append(
                f"{file}: {query.q!r} [{query.form}] expected {query.category}, got {got} "
                f"via {matched}"
            )
    accuracy = 1 - len(misses) / len(TABLE)
    forms = Counter(query.form for _, query in TABLE)
    report = "\n".join(
        [
            f"search table: {len(TABLE)} queries, accuracy {accuracy:.1%}, {len(misses)} misses",
            "by form: "
            + ", ".join(
                f"{form} {forms[form] - missed_forms[form]}/{forms[form]}" for form in sorted(forms)
            ),
            *misses,
        ]
    )
    print(report)
    assert accuracy >= REQUIRED_ACCURACY, report
