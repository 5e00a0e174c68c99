"""Signup, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

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
# zxcvbn scores 0-4 (guesses below 10^3, 10^6, 10^8, 10^10 and above); 3 is "safely
# unguessable" against an online attack and a slowed offline one.
MIN_PASSWORD_STRENGTH = 3
# zxcvbn refuses longer input, and its matching cost grows steeply with length (a random
# 72-character password takes ~0.3 s): longer passwords are judged by their first 72.
_STRENGTH_MAX_CHARS = 72
# Words anyone guessing at this site tries first, besides the user's own email name.
_SITE_WORDS = ("growbin",)
# zxcvbn keeps the user inputs of a check in a module-level dictionary, so two checks at once
# would see each other's: one check at a time, in a thread, off the event loop.
_strength_lock = threading.Lock()


def _email_name_words(email: str) -> list[str]:
    local_part = email.split("@", 1)[0].lower()
    pieces = [piece for piece in re.split(r"[^0-9a-z]+", local_part) if len(piece) >= 3]
    return [local_part, *pieces]


def _estimate_strength(password: str, user_inputs: list[str]) -> dict[str, Any]:
    with _strength_lock:
        return zxcvbn(password[:_STRENGTH_MAX_CHARS], user_inputs=user_inputs)


def _weakness(estimate: dict[str, Any], email_words: list[str]) -> str:
    """Why a password is easy to guess, in zxcvbn's words (plus the email name if it was used)."""
    feedback = estimate["feedback"]
    reasons = [feedback["warning"]] if feedback["warning"] else []
    # zxcvbn's feedback does not say that a match came from the user's own words.
    if any(
        match.get("dictionary_name") == "user_inputs" and match.get("matched_word") in email_words
        for match in estimate["sequence"]
    ):
        reasons.append("It is built from your email name.")
    reasons += feedback["suggestions"] or ["Add another word or two. Uncommon words are better."]
    return "easy to guess: " + " ".join(reasons)


async def check_password_policy(password: str, email: str) -> None:
    settings = get_settings().auth
    problems = []
    if len(password) < settings.password_min_length:
        problems.append(f"at least {settings.password_min_length} characters")
    if not re.search(r"[^\W\d_]", password) or not re.search(r"\d", password):
        problems.append("at least one letter and one digit")
    email_words = _email_name_words(email)
    if len(email_words[0]) >= 4 and email_words[0] in password.lower():
        problems.append("must not contain the email name")
    estimate = await asyncio.to_thread(_estimate_strength, password, [*email_words, *_SITE_WORDS])
    if estimate["score"] < MIN_PASSWORD_STRENGTH:
        problems.append(_weakness(estimate, email_words))
    if problems:
        raise InvalidRequest(
            "The password is not accepted: " + "; ".join(problems),
            details=[
                {"loc": ["body", "password"], "msg": p, "type": "password_policy"} for p in problems
            ],
        )


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signup_client_key(client_address: str) -> str:
    return f"auth:signup-attempts:{client_address}"


def _signup_domain_key(email: str) -> str:
    return "auth:signup-accounts:" + email.rsplit("@", 1)[1]


async def _admit_signup(email: str, client_address: str) -> None:
    settings = get_settings().auth
    # Every attempt from an address counts (each costs an argon2 hash and can probe whether an
    # email is registered); per domain only created accounts count, so failed attempts naming
    # a popular domain cannot shut that domain's sign-ups.
    client = await ratelimit.hit(_signup_client_key(client_address), settings.signup_window_seconds)
    if client.count > settings.signup_max_attempts_per_client:
        raise RateLimited(client.retry_after_seconds, "Too many sign-ups from this address.")
    domain = await ratelimit.peek(_signup_domain_key(email))
    if domain.count >= settings.signup_max_accounts_per_email_domain:
        raise RateLimited(domain.retry_after_seconds, "Too many sign-ups for this email domain.")


async def signup(
    session: AsyncSession, email: str, password: str, client_address: str
) -> Credential:
    email = email.lower()
    await _admit_signup(email, client_address)
    await check_password_policy(password, email)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    credential = Credential(user_id=uuid.uuid4(), email=email, password_hash=password_hash)
    session.add(credential)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("An account with this email already exists.") from exc
    await ratelimit.hit(_signup_domain_key(email), get_settings().auth.signup_window_seconds)
    return credential


def _account_digest(email: str) -> str:
    # Emails stay out of Redis keys (and out of anything that lists them).
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def _client_key(client_address: str) -> str:
    return f"auth:login-attempts:{client_address}"


def _account_client_failures_key(email: str, client_address: str) -> str:
    return f"auth:login-failures:{_account_digest(email)}:{client_address}"


def _account_failures_key(email: str) -> str:
    return f"auth:login-failures:{_account_digest(email)}"


def _account_client_turn_key(email: str, client_address: str) -> str:
    return f"auth:login-turn:{_account_digest(email)}:{client_address}"


def backoff_interval_seconds(account_failures: int) -> int:
    """Seconds between an address's attempts at an account with this many failed logins."""
    settings = get_settings().auth
    doublings = min(account_failures - settings.login_backoff_after_account_failures, 30)
    return min(settings.login_backoff_base_seconds << doublings, settings.login_backoff_max_seconds)


async def _admit_login(email: str, client_address: str) -> None:
    """Refuse (429) an attempt the login limits do not allow; see app/README.md, "auth"."""
    settings = get_settings().auth
    # Every attempt from an address counts, whichever account it names.
    client = await ratelimit.hit(_client_key(client_address), settings.login_window_seconds)
    if client.count > settings.login_max_attempts_per_client:
        raise RateLimited(client.retry_after_seconds, "Too many login attempts from this address.")
    # Failures lock an account only for the address they came from: an attacker elsewhere
    # cannot lock the owner out.
    pair = await ratelimit.peek(_account_client_failures_key(email, client_address))
    if pair.count >= settings.login_max_failures_per_account_and_client:
        raise RateLimited(
            pair.retry_after_seconds, "Too many failed logins for this account from this address."
        )
    # Many failures from all addresses together (a distributed guess): every address, the
    # owner's too, gets one attempt per interval. The wait is per address, so attackers cannot
    # take the owner's turn; it is at most login_backoff_max_seconds.
    account = await ratelimit.peek(_account_failures_key(email))
    if account.count >= settings.login_backoff_after_account_failures:
        wait = await ratelimit.claim_turn(
            _account_client_turn_key(email, client_address),
            backoff_interval_seconds(account.count),
            settings.login_backoff_window_seconds,
        )
        if wait:
            raise RateLimited(
                wait, "This account has had many failed logins; try again after the wait."
            )


async def _count_failed_login(email: str, client_address: str) -> None:
    settings = get_settings().auth
    await ratelimit.hit(
        _account_client_failures_key(email, client_address), settings.login_window_seconds
    )
    await ratelimit.hit(
        _account_failures_key(email), settings.login_backoff_window_seconds, extend_window=True
    )


async def _forget_failed_logins(email: str, client_address: str) -> None:
    # The right password ends the backoff: other addresses' guesses start from zero again,
    # which costs them the threshold's worth of guesses per login of the owner at most.
    await ratelimit.clear(_account_client_failures_key(email, client_address))
    await ratelimit.clear(_account_failures_key(email))


async def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(session: AsyncSession, email: str, password: str, client_address: str) -> TokenPair:
    email = email.lower()
    await _admit_login(email, client_address)
    credential = await repository.credential_by_email(session, email)
    valid = await _verify_password(
        credential.password_hash if credential else _UNKNOWN_USER_HASH, password
    )
    if credential is None or not valid or await is_user_deleted(credential.user_id):
        await _count_failed_login(email, client_address)
        raise Unauthorized("Email or password is wrong.", details={"reason": "bad_credentials"})
    await _forget_failed_logins(email, client_address)
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
