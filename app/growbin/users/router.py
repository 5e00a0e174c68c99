from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.core.security import CurrentUser
from growbin.users import service
from growbin.users.schemas import DeletionAccepted, Profile, ProfileUpdate, UserStats

UsersSession = Annotated[AsyncSession, Depends(session_dependency("users"))]

router = APIRouter()


@router.get("/me")
async def get_profile(user: CurrentUser, session: UsersSession) -> Profile:
    return Profile.model_validate(await service.profile(session, user.id))


@router.patch("/me")
async def update_profile(body: ProfileUpdate, user: CurrentUser, session: UsersSession) -> Profile:
    return Profile.model_validate(await service.update_profile(session, user.id, body))


@router.get("/me/stats")
async def get_stats(user: CurrentUser, session: UsersSession) -> UserStats:
    return await service.stats(session, user.id)


@router.delete("/me", status_code=status.HTTP_202_ACCEPTED)
async def delete_account(user: CurrentUser, session: UsersSession) -> DeletionAccepted:
    await service.delete_account(session, user.id)
    return DeletionAccepted()


domain = DomainSpec(name="users", router=router, purge_user=service.purge_user)
