"""A classification joined with the knowledge base: what it is and exactly how to put it out."""

from __future__ import annotations

from typing import Any

from growbin.scans.models import ScanStatus
from growbin.vision.base import Classification, knowledge_base


def _named(spec: Any) -> dict[str, Any]:
    return {"slug": spec.slug, "name": spec.name.model_dump()}


def outcome(classification: Classification, min_confidence: float) -> ScanStatus:
    if classification.category is None or classification.confidence < min_confidence:
        return ScanStatus.NEEDS_CLARIFICATION
    return ScanStatus.COMPLETED


def build_result(classification: Classification, min_confidence: float) -> dict[str, Any]:
    """The ``ScanResult`` body; steps only when the category is asserted."""
    catalog = knowledge_base()
    categories = {c.slug: c for c in catalog.categories}
    items = {i.slug: i for i in catalog.items}
    decided = outcome(classification, min_confidence) is ScanStatus.COMPLETED
    category = categories.get(classification.category or "")
    item = items.get(classification.item or "")
    if item is not None and category is not None and item.category != category.slug:
        item = None
    steps: list[dict[str, str]] = []
    not_accepted: list[dict[str, Any]] = []
    if decided and category is not None:
        # Item-specific steps first, then the category's; the same text only once.
        for step in [*(item.steps if item else []), *category.steps]:
            if step.model_dump() not in steps:
                steps.append(step.model_dump())
        not_accepted = [rule.model_dump() for rule in category.not_accepted]
    reasons = list(classification.reasons)
    if not decided and classification.category is not None:
        reasons.append(
            f"Not sure enough ({classification.confidence:.0%}); choose one of the candidates."
        )
    return {
        "classifier": classification.classifier,
        "confidence": classification.confidence,
        "category": _named(category) if decided and category else None,
        "item": _named(item) if decided and item else None,
        "item_guess": classification.item_guess,
        "steps": steps,
        "not_accepted": not_accepted,
        "candidates": [
            {
                "category": _named(categories[c.category]),
                "item": _named(items[c.item]) if c.item in items else None,
                "confidence": c.confidence,
            }
            for c in classification.candidates
            if c.category in categories
        ],
        "reasons": reasons,
    }
