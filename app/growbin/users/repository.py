from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.users.models import CategoryStat, Profile


async def get_or_create_profile(session: AsyncSession, user_id: uuid.UUID) -> Profile:
    # Profiles are created on first use; ON CONFLICT makes two concurrent first reads safe.
    await session.execute(insert(Profile).values(user_id=user_id).on_conflict_do_nothing())
    profile = await session.get(Profile, user_id, populate_existing=True)
    assert profile is not None
    return profile


async def category_stats(session: AsyncSession, user_id: uuid.UUID) -> list[CategoryStat]:
    result = await session.scalars(
        select(CategoryStat)
        .where(CategoryStat.user_id == user_id)
        .order_by(CategoryStat.scans.desc(), CategoryStat.category)
    )
    return list(result)


async def increment_category(
    session: AsyncSession, user_id: uuid.UUID, category: str, at: datetime
) -> None:
    statement = insert(CategoryStat).values(
        user_id=user_id, category=category, scans=1, last_scan_at=at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[CategoryStat.user_id, CategoryStat.category],
            set_={"scans": CategoryStat.scans + 1, "last_scan_at": statement.excluded.last_scan_at},
        )
    )


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(CategoryStat).where(CategoryStat.user_id == user_id))
    await session.execute(delete(Profile).where(Profile.user_id == user_id))
