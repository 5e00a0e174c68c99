"""API shapes of the recycling domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


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
    """Hits for a query, best first; never a dead end.

    When no hit is confident, ``items`` holds the closest ones found with looser matching
    (``match`` is ``suggestions``) or nothing (``none``), and ``browse`` lists categories to
    look through instead.
    """

    query: str = Field(description="The query as sent.")
    items: list[SearchHit]
    match: Literal["confident", "suggestions", "none"] = Field(
        description="`confident`: the first hit is what the query names. `suggestions`: "
        "nothing matched well; the hits are the closest names found. `none`: no hit."
    )
    browse: list[CategoryRef] = Field(
        description="Empty when `match` is `confident`; otherwise categories to browse: "
        "those of the suggestions first, then every top-level category."
    )


class SearchMissRow(BaseModel):
    """A query counted by ``growbin recycling-misses``: no user, only the words."""

    query: str
    example: str
    count: int
    first_seen: datetime
    last_seen: datetime
