"""Tables of the recycling database: the knowledge base as loaded from ``data/``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from growbin.core.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Category(Base):
    __tablename__ = "recycling_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("recycling_categories.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    name_ko: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(80)))
    summary_ko: Mapped[str] = mapped_column(Text)
    summary_en: Mapped[str] = mapped_column(Text)
    # Lists of {ko, en} (and for not_accepted {what, why, instead}) exactly as authored.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    not_accepted: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class Item(Base):
    __tablename__ = "recycling_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("recycling_categories.id", ondelete="CASCADE"), index=True
    )
    name_ko: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(80)))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class SearchTerm(Base):
    """Every name and alias of an item or a category, with its search key (``normalize``)."""

    __tablename__ = "recycling_search_terms"
    __table_args__ = (
        CheckConstraint("num_nonnulls(item_id, category_id) = 1", name="one_subject"),
        Index(
            "ix_recycling_search_terms_key_trgm",
            "key",
            postgresql_using="gin",
            postgresql_ops={"key": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("recycling_items.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("recycling_categories.id", ondelete="CASCADE"), index=True
    )
    term: Mapped[str] = mapped_column(String(100))
    # Unbounded: romanisation makes a key several times longer than its term.
    key: Mapped[str] = mapped_column(Text)
    # The term without spaces and punctuation (normalize.compact): head nouns are matched
    # against its end.
    compact: Mapped[str] = mapped_column(Text)


class CatalogState(Base):
    """One row: which catalog version is loaded (the seed skips an identical catalog)."""

    __tablename__ = "recycling_catalog_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    category_count: Mapped[int] = mapped_column(Integer)
    item_count: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SearchMiss(Base):
    """A search nothing matched confidently: what the catalogue lacks, never who asked.

    Not part of the catalogue: a reload leaves it alone.
    """

    __tablename__ = "recycling_search_misses"

    # The query's search key (normalize.Query.key): spelling and spacing variants count once.
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    # The item phrase as normalised ("깡통"), and one query as typed ("깡통 버리는 법?").
    query: Mapped[str] = mapped_column(String(100))
    example: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
