"""Signup, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.auth import repository
from growbin.auth.models import Credential, RefreshToken
from growbin.auth.schemas import TokenPair
from growbin.core import ratelimit
from growbin.core.db import get_databases
from growbin.core.errors import Conflict, InvalidRequest, RateLimited, Unauthorized
from growbin.core.events import is_user_deleted
from growbin.core.redis import get_redis
from growbin.core.security import (
    ACCESS_TOKEN_TYPE,
    AuthenticatedUser,
    get_token_keys,
    revoked_family_key,
    revoked_token_key,
    seconds_until,
)
from growbin.core.settings import get_settings

# argon2-cffi's defaults are argon2id with RFC 9106 low-memory parameters.
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both paths cost one argon2 verification.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))
_COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "qwerty12345",
        "1q2w3e4r5t",
        "iloveyou123",
        "letmein1234",
        "welcome1234",
        "admin12345",
        "abcd123456",
        "qwer1234!!",
    }
)


def check_password_policy(password: str, email: str) -> None:
    settings = get_settings().auth
    problems = []
    if len(password) < settings.password_min_length:
        problems.append(f"at least {settings.password_min_length} characters")
    if not re.search(r"[^\W\d_]", password) or not re.search(r"\d", password):
        problems.append("at least one letter and one digit")
    if password.lower() in _COMMON_PASSWORDS or len(set(password)) < 4:
        problems.append("not a common or repetitive password")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in password.lower():
        problems.append("must not contain the email name")
    if problems:
        raise InvalidRequest(
            "The password does not meet the policy.",
            details=[
                {"loc": ["body", "password"], "msg": p, "type": "password_policy"} for p in problems
            ],
        )


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def signup(session: AsyncSession, email: str, password: str) -> Credential:
    email = email.lower()
    check_password_policy(password, email)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    credential = Credential(user_id=uuid.uuid4(), email=email, password_hash=password_hash)
    session.add(credential)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("An account with this email already exists.") from exc
    return credential


def _account_key(email: str) -> str:
    return "auth:login-failures:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _client_key(client_address: str) -> str:
    return f"auth:login-attempts:{client_address}"


async def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(session: AsyncSession, email: str, password: str, client_address: str) -> TokenPair:
    settings = get_settings().auth
    email = email.lower()
    window = settings.login_window_seconds
    # Every attempt from an address counts; only failures count against an account, so an
    # attacker cannot lock a user out from their own address indefinitely.
    client = await ratelimit.hit(_client_key(client_address), window)
    if client.count > settings.login_max_attempts_per_client:
        raise RateLimited(client.retry_after_seconds, "Too many login attempts from this address.")
    account = await ratelimit.peek(_account_key(email))
    if account.count >= settings.login_max_failures_per_account:
        raise RateLimited(account.retry_after_seconds, "Too many failed logins for this account.")

    credential = await repository.credential_by_email(session, email)
    valid = await _verify_password(
        credential.password_hash if credential else _UNKNOWN_USER_HASH, password
    )
    if credential is None or not valid or await is_user_deleted(credential.user_id):
        await ratelimit.hit(_account_key(email), window)
        raise Unauthorized("Email or password is wrong.", details={"reason": "bad_credentials"})
    await ratelimit.clear(_account_key(email))
    if _hasher.check_needs_rehash(credential.password_hash):
        credential.password_hash = await asyncio.to_thread(_hasher.hash, password)
    return await _issue_pair(session, credential.user_id, family_id=uuid.uuid4())


def issue_access_token(user_id: uuid.UUID, family_id: uuid.UUID) -> tuple[str, int]:
    keys = get_token_keys()
    settings = get_settings().auth
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
        "sid": str(family_id),
        "typ": ACCESS_TOKEN_TYPE,
    }
    token = jwt.encode(
        claims, keys.private_key, algorithm=keys.algorithm, headers={"kid": keys.kid}
    )
    return token, settings.access_token_ttl_seconds


async def _issue_pair(session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> TokenPair:
    settings = get_settings().auth
    refresh_token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            family_id=family_id,
            user_id=user_id,
            token_hash=_hash_refresh_token(refresh_token),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    await session.commit()
    access_token, expires_in = issue_access_token(user_id, family_id)
    return TokenPair(
        access_token=access_token,
        expires_in=expires_in,
        refresh_token=refresh_token,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await repository.revoke_family(session, family_id, datetime.now(UTC))
    await session.commit()
    # Access tokens of the family die too; they cannot outlive their own TTL.
    await get_redis().set(
        revoked_family_key(str(family_id)),
        "1",
        ex=get_settings().auth.access_token_ttl_seconds + 60,
    )


async def refresh(session: AsyncSession, refresh_token: str) -> TokenPair:
    stored = await repository.refresh_token_for_update(session, _hash_refresh_token(refresh_token))
    if stored is None:
        raise Unauthorized("The refresh token is not valid.", details={"reason": "invalid"})
    if stored.used_at is not None or stored.revoked_at is not None:
        # A rotated or revoked token came back: it was stolen or replayed. Whoever holds the
        # family's newest token loses it too, and the user must log in again.
        await _revoke_family(session, stored.family_id)
        raise Unauthorized(
            "The refresh token was already used; the session is revoked.",
            details={"reason": "refresh_token_reused"},
        )
    if await is_user_deleted(stored.user_id):
        # The purge of the credentials may still be on its way; the account is gone already.
        raise Unauthorized("The account no longer exists.", details={"reason": "no_account"})
    if stored.expires_at <= datetime.now(UTC):
        raise Unauthorized("The refresh token has expired.", details={"reason": "expired"})
    stored.used_at = datetime.now(UTC)
    return await _issue_pair(session, stored.user_id, stored.family_id)


async def logout(session: AsyncSession, user: AuthenticatedUser, refresh_token: str | None) -> None:
    await get_redis().set(revoked_token_key(user.token_id), "1", ex=seconds_until(user.expires_at))
    await _revoke_family(session, uuid.UUID(user.family_id))
    if refresh_token is not None:
        stored = await repository.refresh_token_for_update(
            session, _hash_refresh_token(refresh_token)
        )
        if stored is not None and stored.user_id == user.id:
            await _revoke_family(session, stored.family_id)


async def account(session: AsyncSession, user: AuthenticatedUser) -> Credential:
    credential = await repository.credential_by_user(session, user.id)
    if credential is None:
        raise Unauthorized("The account no longer exists.", details={"reason": "no_account"})
    return credential


async def purge_user(user_id: uuid.UUID) -> None:
    async with get_databases().sessionmaker("auth")() as session:
        await repository.delete_user(session, user_id)
        await session.commit()
