from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.auth import service
from growbin.auth.schemas import (
    Account,
    Jwks,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    SignupRequest,
    TokenPair,
)
from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.core.security import CurrentUser, get_token_keys

AuthSession = Annotated[AsyncSession, Depends(session_dependency("auth"))]

router = APIRouter()


def _client_address(request: Request) -> str:
    # The edge/ALB is the direct peer in production; uvicorn's --proxy-headers with
    # --forwarded-allow-ips makes request.client the real client there.
    return request.client.host if request.client else "unknown"


@router.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(body: SignupRequest, request: Request, session: AuthSession) -> Account:
    credential = await service.signup(session, body.email, body.password, _client_address(request))
    return Account(
        user_id=credential.user_id, email=credential.email, created_at=credential.created_at
    )


@router.post("/login")
async def login(body: LoginRequest, request: Request, session: AuthSession) -> TokenPair:
    return await service.login(session, body.email, body.password, _client_address(request))


@router.post("/refresh")
async def refresh(body: RefreshRequest, session: AuthSession) -> TokenPair:
    return await service.refresh(session, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    user: CurrentUser, session: AuthSession, body: LogoutRequest | None = None
) -> Response:
    await service.logout(session, user, body.refresh_token if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
async def me(user: CurrentUser, session: AuthSession) -> Account:
    credential = await service.account(session, user)
    return Account(
        user_id=credential.user_id, email=credential.email, created_at=credential.created_at
    )


@router.get("/.well-known/jwks.json")
async def jwks() -> Jwks:
    return Jwks(keys=[get_token_keys().public_jwk()])


domain = DomainSpec(name="auth", router=router, purge_user=service.purge_user)
