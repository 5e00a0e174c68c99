from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.auth.models import Credential, RefreshToken


async def credential_by_email(session: AsyncSession, email: str) -> Credential | None:
    return await session.scalar(select(Credential).where(Credential.email == email))


async def credential_by_user(session: AsyncSession, user_id: uuid.UUID) -> Credential | None:
    return await session.get(Credential, user_id)


async def refresh_token_for_update(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    # Row lock: two concurrent refreshes of one token cannot both rotate it.
    return await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
    await session.execute(delete(Credential).where(Credential.user_id == user_id))
