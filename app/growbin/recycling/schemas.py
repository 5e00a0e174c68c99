"""API shapes of the recycling domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class LocalizedText(BaseModel):
    ko: str
    en: str


class CategoryRef(BaseModel):
    slug: str
    name: LocalizedText


class CategorySummary(CategoryRef):
    parent: str | None
    summary: LocalizedText
    item_count: int


class CategoryList(BaseModel):
    items: list[CategorySummary]


class NotAcceptedRule(BaseModel):
    what: LocalizedText
    why: LocalizedText
    # Where the rejected thing goes instead.
    instead: str


class ItemRef(BaseModel):
    slug: str
    name: LocalizedText


class CategoryDetail(CategoryRef):
    parent: CategoryRef | None
    aliases: list[str]
    summary: LocalizedText
    steps: list[LocalizedText]
    not_accepted: list[NotAcceptedRule]
    notes: list[LocalizedText]
    subcategories: list[CategoryRef]
    items: list[ItemRef]


class ItemDetail(ItemRef):
    aliases: list[str]
    category: CategoryRef
    # What to do with this item; `category_steps` are the stream's general rules.
    steps: list[LocalizedText]
    category_steps: list[LocalizedText]
    # Where districts (시·군·구) handle the item differently; empty when the common rule holds.
    notes: list[LocalizedText]


class SearchHit(ItemRef):
    # An item, or a whole category when the query names one ("비닐", "batteries"); `category`
    # is then the category itself.
    kind: Literal["item", "category"]
    category: CategoryRef
    # The name or alias that matched best, and the relevance score it got.
    matched_term: str
    score: float


class SearchResult(BaseModel):
    query: str
    items: list[SearchHit]
