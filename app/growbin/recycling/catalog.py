"""The recycling knowledge base as authored in ``data/``: schema, loading and validation.

The YAML files are the source of truth; ``growbin seed recycling`` loads the validated
:class:`Catalog` into the recycling database. Validation is strict (unknown keys, dangling
category references, duplicate slugs and too few items are errors) so a bad edit fails in CI,
not in production search results.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MIN_ITEMS = 700

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Alias = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(_Strict):
    ko: Text
    en: Text


class LocalizedName(_Strict):
    ko: ShortText
    en: ShortText


class Source(_Strict):
    title: Text
    publisher: Text


class NotAccepted(_Strict):
    """Something people put in this stream by mistake, why it does not belong, where it goes."""

    what: LocalizedText
    why: LocalizedText
    instead: Slug


class CategorySpec(_Strict):
    slug: Slug
    parent: Slug | None
    name: LocalizedName
    aliases: list[Alias] = Field(default_factory=list)
    summary: LocalizedText
    steps: list[LocalizedText] = Field(min_length=1)
    not_accepted: list[NotAccepted] = Field(default_factory=list)
    notes: list[LocalizedText] = Field(default_factory=list)


class ItemSpec(_Strict):
    slug: Slug
    category: Slug
    name: LocalizedName
    aliases: list[Alias] = Field(default_factory=list)
    steps: list[LocalizedText] = Field(min_length=1)
    # Where districts (시·군·구) handle the item differently from the common rule.
    notes: list[LocalizedText] = Field(default_factory=list)


class CategoriesFile(_Strict):
    sources: list[Source] = Field(min_length=1)
    categories: list[CategorySpec] = Field(min_length=1)


class ItemsFile(_Strict):
    sources: list[Source] = Field(min_length=1)
    items: list[ItemSpec] = Field(min_length=1)


class Catalog(_Strict):
    """All categories and items, cross-checked."""

    sources: list[Source]
    categories: list[CategorySpec]
    items: list[ItemSpec]

    @model_validator(mode="after")
    def _check_references(self) -> Catalog:
        problems: list[str] = []
        category_slugs = _duplicates_reported(
            [c.slug for c in self.categories], "category", problems
        )
        _duplicates_reported([i.slug for i in self.items], "item", problems)
        defined: set[str] = set()
        for category in self.categories:
            # Parents come first so the loader can resolve them in one pass.
            if category.parent is not None and category.parent not in defined:
                problems.append(
                    f"category {category.slug}: parent {category.parent} is unknown or "
                    "defined after it"
                )
            defined.add(category.slug)
            for rule in category.not_accepted:
                if rule.instead not in category_slugs:
                    problems.append(
                        f"category {category.slug}: not_accepted points to unknown {rule.instead}"
                    )
        for item in self.items:
            if item.category not in category_slugs:
                problems.append(f"item {item.slug}: unknown category {item.category}")
        if len(self.items) < MIN_ITEMS:
            problems.append(f"only {len(self.items)} items; the knowledge base needs {MIN_ITEMS}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def digest(self) -> str:
        """A content hash; the seed records it so an unchanged catalog is not reloaded."""
        canonical = json.dumps(self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _duplicates_reported(slugs: list[str], kind: str, problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for slug in slugs:
        if slug in seen:
            problems.append(f"duplicate {kind} slug {slug}")
        seen.add(slug)
    return seen


def data_dir() -> Traversable:
    return resources.files("growbin.recycling") / "data"


def _read_yaml(path: Traversable) -> object:
    with path.open("r", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_catalog(root: Traversable | None = None) -> Catalog:
    """Read ``categories.yaml`` and every ``items/*.yaml`` under ``root`` and validate them."""
    root = root or data_dir()
    categories_file = CategoriesFile.model_validate(_read_yaml(root / "categories.yaml"))
    sources = list(categories_file.sources)
    items: list[ItemSpec] = []
    item_files = sorted(
        (entry for entry in (root / "items").iterdir() if entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )
    for entry in item_files:
        items_file = ItemsFile.model_validate(_read_yaml(entry))
        sources.extend(s for s in items_file.sources if s not in sources)
        items.extend(items_file.items)
    return Catalog(sources=sources, categories=categories_file.categories, items=items)
