"""Retrieval: the knowledge-base entries a question is about, read through the recycling
service (its search is typo- and spacing-tolerant, Korean and English).

A question is a sentence, the search index holds names: the retriever first pulls the item
phrase out of the common English question shapes ("how do I throw away X", "is X
recyclable") and out of the whole question (recycling search's own reading, which drops the
verbs, particles and question words of "X 어떻게 버려요"), then tries its words one by one,
and keeps the best hits above a relevance floor.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from growbin.core.db import get_databases
from growbin.core.errors import InvalidRequest, NotFound
from growbin.recycling import service as recycling
from growbin.scans import service as scans

# Top-level category whose streams are recycled; everything else is disposed of.
RECYCLABLE_ROOT = "recyclables"
# Search scores run 0..2 (similarity plus a bonus for exact or prefix matches). Below this a
# hit is a coincidental resemblance, not the thing asked about.
MIN_SCORE = 0.6
# An exact (or all but exact) name match: no single word of the question can be a better
# reading of it, so the remaining terms are not searched.
DECISIVE_SCORE = 1.5
# Category entries are reference data read on every question; kept this long per process
# (a catalog reload shows in answers within this time).
CATEGORY_CACHE_SECONDS = 60.0
MAX_TERMS = 6
MAX_ENTRIES = 3
HITS_PER_TERM = 3

# English question shapes whose object is the item. Korean questions ("X 어떻게 버려요")
# need none: recycling search strips their verbs, particles and question words itself
# (recycling.service.item_phrase), with the same word lists the search uses.
_QUESTION_SHAPES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:throw (?:away|out)|dispose of|get rid of|recycle|sort|bin|discard|put out)\s+"
        r"(?P<x>.+)",
        r"\b(?:is|are)\s+(?P<x>.+?)\s+(?:recyclable|recycled|recycling)\b",
        r"\bwhere\s+(?:do|does|should|can)\s+(?P<x>.+?)\s+go\b",
        r"\bwhat\s+(?:do i do|to do|should i do)\s+with\s+(?P<x>.+)",
        r"\bwhere\s+(?:do|can|should)\s+(?:i|we)\s+(?:put|take|drop off|leave)\s+(?P<x>.+)",
    )
]


def candidate_terms(question: str) -> list[str]:
    """Search terms for ``question``, most specific first: the item phrase of each question
    shape, of the whole question, then its words one by one."""
    terms: list[str] = []

    def add(term: str) -> None:
        if term and term.lower() not in (t.lower() for t in terms):
            terms.append(term)

    for shape in _QUESTION_SHAPES:
        match = shape.search(question)
        if match:
            add(recycling.item_phrase(match.group("x")))
    phrase = recycling.item_phrase(question)
    add(phrase)
    for word in phrase.split():
        add(word)
    return terms[:MAX_TERMS]


@dataclass(frozen=True)
class Entry:
    """One knowledge-base entry as the model and the offline answerer see it."""

    ref: str  # "item:<slug>", "category:<slug>" or "scan:<id>"
    name_ko: str
    name_en: str
    category_slug: str
    category_ko: str
    category_en: str
    recyclable: bool
    steps: list[dict[str, str]]
    not_accepted: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    detail: dict[str, Any] | None = None

    def source(self) -> dict[str, Any]:
        return {"ref": self.ref, "name": {"ko": self.name_ko, "en": self.name_en}}

    def context(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ref": self.ref,
            "name": {"ko": self.name_ko, "en": self.name_en},
            "category": {
                "slug": self.category_slug,
                "ko": self.category_ko,
                "en": self.category_en,
            },
            "recyclable": self.recyclable,
            "steps": self.steps,
        }
        if self.not_accepted:
            body["not_accepted"] = self.not_accepted
        if self.notes:
            body["notes"] = self.notes
        if self.detail:
            body["detail"] = self.detail
        return body


async def _root_slug(session: Any, slug: str) -> str:
    # Categories nest two levels at most (recyclables > plastic > clear-pet).
    for _ in range(4):
        detail = await recycling.category_detail(session, slug)
        if detail.parent is None:
            return detail.slug
        slug = detail.parent.slug
    return slug


_category_cache: dict[str, tuple[float, Entry]] = {}


async def _category_entry(session: Any, slug: str) -> Entry:
    cached = _category_cache.get(slug)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    entry = await _load_category_entry(session, slug)
    _category_cache[slug] = (time.monotonic() + CATEGORY_CACHE_SECONDS, entry)
    return entry


async def _load_category_entry(session: Any, slug: str) -> Entry:
    detail = await recycling.category_detail(session, slug)
    return Entry(
        ref=f"category:{detail.slug}",
        name_ko=detail.name.ko,
        name_en=detail.name.en,
        category_slug=detail.slug,
        category_ko=detail.name.ko,
        category_en=detail.name.en,
        recyclable=await _root_slug(session, detail.slug) == RECYCLABLE_ROOT,
        steps=[s.model_dump() for s in detail.steps],
        not_accepted=[
            {"what": r.what.model_dump(), "why": r.why.model_dump(), "instead": r.instead}
            for r in detail.not_accepted
        ],
        notes=[n.model_dump() for n in detail.notes],
    )


async def _item_entry(session: Any, slug: str) -> Entry:
    item = await recycling.item_detail(session, slug)
    category = await _category_entry(session, item.category.slug)
    steps = [s.model_dump() for s in item.steps]
    steps += [s for s in category.steps if s not in steps]
    return Entry(
        ref=f"item:{item.slug}",
        name_ko=item.name.ko,
        name_en=item.name.en,
        category_slug=category.category_slug,
        category_ko=category.category_ko,
        category_en=category.category_en,
        recyclable=category.recyclable,
        steps=steps,
        not_accepted=category.not_accepted,
        notes=category.notes,
    )


async def retrieve(redis: Redis, question: str, limit: int = MAX_ENTRIES) -> list[Entry]:
    """The entries ``question`` is most likely about, best first; empty if none is close."""
    best: dict[tuple[str, str], float] = {}
    async with get_databases().sessionmaker("recycling")() as session:
        for rank, term in enumerate(candidate_terms(question)):
            try:
                # Several readings of one question: none of them is a user's search query.
                result, _ = await recycling.search(
                    session, redis, term, HITS_PER_TERM, record_miss=False
                )
            except InvalidRequest:
                continue
            for hit in result.items:
                # The phrase pulled out of the question shape outranks single words on ties.
                score = hit.score - rank * 0.01
                if hit.score >= MIN_SCORE and score > best.get((hit.kind, hit.slug), 0):
                    best[(hit.kind, hit.slug)] = score
            if best and max(best.values()) >= DECISIVE_SCORE:
                break
        chosen = sorted(best, key=lambda key: -best[key])[:limit]
        entries = []
        for kind, slug in chosen:
            builder = _item_entry if kind == "item" else _category_entry
            entries.append(await builder(session, slug))
        return entries


async def scan_entry(user_id: uuid.UUID, scan_id: uuid.UUID) -> tuple[Entry, list[str]]:
    """The user's own scan as an entry, and the knowledge-base slugs its result names.

    Another user's scan is "not found", exactly like a missing one (scans.owned_scan).
    """
    async with get_databases().sessionmaker("scans")() as session:
        scan = await scans.owned_scan(session, user_id, scan_id)
        result = scans.view(scan).result
    if result is None:
        raise NotFound("That scan has no result yet.")
    named = result.item or result.category
    recyclable = False
    if result.category is not None:
        async with get_databases().sessionmaker("recycling")() as session:
            recyclable = await _root_slug(session, result.category.slug) == RECYCLABLE_ROOT
    entry = Entry(
        ref=f"scan:{scan_id}",
        name_ko=named.name.ko if named else (result.item_guess or "?"),
        name_en=named.name.en if named else (result.item_guess or "?"),
        category_slug=result.category.slug if result.category else "",
        category_ko=result.category.name.ko if result.category else "",
        category_en=result.category.name.en if result.category else "",
        recyclable=recyclable,
        steps=[s.model_dump() for s in result.steps],
        detail={
            "classifier": result.classifier,
            "confidence": result.confidence,
            "candidates": [c.category.slug for c in result.candidates],
        },
    )
    refs = []
    if result.item:
        refs.append(f"item:{result.item.slug}")
    elif result.category:
        refs.append(f"category:{result.category.slug}")
    return entry, refs


async def entries_for(refs: list[str]) -> list[Entry]:
    async with get_databases().sessionmaker("recycling")() as session:
        entries = []
        for ref in refs:
            kind, _, slug = ref.partition(":")
            builder = _item_entry if kind == "item" else _category_entry
            entries.append(await builder(session, slug))
        return entries
