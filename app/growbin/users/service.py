from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.db import get_databases
from growbin.core.events import publish_user_deleted
from growbin.users import repository
from growbin.users.models import Profile
from growbin.users.schemas import CategoryCount, ProfileUpdate, UserStats


async def profile(session: AsyncSession, user_id: uuid.UUID) -> Profile:
    found = await repository.get_or_create_profile(session, user_id)
    await session.commit()
    return found


async def update_profile(
    session: AsyncSession, user_id: uuid.UUID, changes: ProfileUpdate
) -> Profile:
    found = await repository.get_or_create_profile(session, user_id)
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(found, field, value)
    await session.commit()
    await session.refresh(found)
    return found


async def stats(session: AsyncSession, user_id: uuid.UUID) -> UserStats:
    rows = await repository.category_stats(session, user_id)
    return UserStats(
        total_scans=sum(row.scans for row in rows),
        categories=[
            CategoryCount(category=r.category, scans=r.scans, last_scan_at=r.last_scan_at)
            for r in rows
        ],
    )


async def record_scan(user_id: uuid.UUID, category: str, at: datetime) -> None:
    """Count one finished scan; called by the scans domain."""
    async with get_databases().sessionmaker("users")() as session:
        await repository.increment_category(session, user_id, category, at)
        await session.commit()


async def delete_account(session: AsyncSession, user_id: uuid.UUID) -> None:
    # This domain's rows go now; the event revokes every token and makes every other domain
    # (auth credentials, scans, chat, ...) purge the user from its own database.
    await repository.delete_user(session, user_id)
    await session.commit()
    await publish_user_deleted(user_id)


async def purge_user(user_id: uuid.UUID) -> None:
    async with get_databases().sessionmaker("users")() as session:
        await repository.delete_user(session, user_id)
        await session.commit()
