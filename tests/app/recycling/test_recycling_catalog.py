"""The authored knowledge base is valid, and the validator rejects broken data."""

from __future__ import annotations

import copy
import unicodedata
from collections import defaultdict

import pytest
from growbin.recycling.catalog import MIN_ITEMS, Catalog, load_catalog
from growbin.recycling.normalize import search_key
from pydantic import ValidationError

CATALOG = load_catalog()
SPECIAL_STREAMS = (
    "clear-pet",
    "paper-pack",
    "deposit-bottles",
    "food-waste",
    "bulky-waste",
    "e-waste",
    "batteries",
    "fluorescent-lamps",
    "medicine",
)


def test_catalog_has_enough_items_with_unique_slugs() -> None:
    item_slugs = [item.slug for item in CATALOG.items]
    category_slugs = [category.slug for category in CATALOG.categories]
    assert len(item_slugs) >= MIN_ITEMS
    assert len(set(item_slugs)) == len(item_slugs)
    assert len(set(category_slugs)) == len(category_slugs)
    assert {item.category for item in CATALOG.items} <= set(category_slugs)


def test_every_special_stream_exists_and_has_items() -> None:
    used = {item.category for item in CATALOG.items}
    for slug in SPECIAL_STREAMS:
        assert slug in used, slug


def test_sources_are_named() -> None:
    assert CATALOG.sources
    assert any("환경부" in source.publisher for source in CATALOG.sources)


def test_no_search_term_points_to_two_categories() -> None:
    # A term shared by items (or an item and a category) of different categories would make
    # search answers arbitrary.
    categories_by_key: dict[str, set[str]] = defaultdict(set)
    for item in CATALOG.items:
        for term in (item.name.ko, item.name.en, *item.aliases):
            categories_by_key[search_key(term)].add(item.category)
    for category in CATALOG.categories:
        for term in (category.name.ko, category.name.en, *category.aliases):
            categories_by_key[search_key(term)].add(category.slug)
    ambiguous = {key: cats for key, cats in categories_by_key.items() if len(cats) > 1}
    assert ambiguous == {}


def _raw() -> dict:
    return copy.deepcopy(CATALOG.model_dump(mode="json"))


def _assert_rejected(raw: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Catalog.model_validate(raw)
    assert fragment in str(excinfo.value)


def test_duplicate_item_slug_is_rejected() -> None:
    raw = _raw()
    raw["items"].append(raw["items"][0])
    _assert_rejected(raw, f"duplicate item slug {raw['items'][0]['slug']}")


def test_unknown_item_category_is_rejected() -> None:
    raw = _raw()
    raw["items"][3]["category"] = "moon-rocks"
    _assert_rejected(raw, "unknown category moon-rocks")


def test_child_before_parent_is_rejected() -> None:
    raw = _raw()
    raw["categories"].reverse()
    _assert_rejected(raw, "is unknown or defined after it")


def test_not_accepted_must_point_to_a_category() -> None:
    raw = _raw()
    raw["categories"][1]["not_accepted"][0]["instead"] = "nowhere"
    _assert_rejected(raw, "not_accepted points to unknown nowhere")


def test_too_few_items_are_rejected() -> None:
    raw = _raw()
    raw["items"] = raw["items"][: MIN_ITEMS - 1]
    _assert_rejected(raw, f"only {MIN_ITEMS - 1} items")


def test_unknown_fields_and_empty_steps_are_rejected() -> None:
    raw = _raw()
    raw["items"][0]["colour"] = "blue"
    raw["items"][1]["steps"] = []
    _assert_rejected(raw, "colour")
    _assert_rejected(raw, "steps")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("페트병", "패트병"),  # ㅔ/ㅐ confusion
        ("택배 박스", "택배박스"),  # spacing
        ("Pizza Box", "pizza  box"),
        ("스티로폼", "스티로폼"),  # decomposed jamo (NFD), as some keyboards send it
    ],
)
def test_search_key_folds_variants(left: str, right: str) -> None:
    assert search_key(left) == search_key(unicodedata.normalize("NFD", right))


def test_search_key_is_ascii_and_drops_punctuation() -> None:
    assert search_key("신라면, 봉지!") == search_key("신라면봉지")
    assert search_key("신라면 봉지").isascii()
    assert search_key("?!…") == ""


def test_names_and_aliases_longer_than_the_database_columns_are_rejected() -> None:
    raw = _raw()
    raw["items"][0]["name"]["ko"] = "가" * 101
    raw["items"][1]["aliases"] = ["나" * 81]
    _assert_rejected(raw, "items.0.name.ko")
    _assert_rejected(raw, "items.1.aliases.0")
