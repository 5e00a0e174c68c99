"""Token keys, access-token verification and the current-user dependency.

Access tokens are JWTs signed by the auth service (EdDSA with an Ed25519 key, or RS256 with an
RSA key: the algorithm follows the configured key). Every service verifies them locally with
the public key and checks three revocation markers in Redis in one round trip:
the token itself (logout), its refresh family (logout / refresh-token reuse) and the user
(account deletion).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from growbin.core.errors import Unauthorized
from growbin.core.redis import get_redis
from growbin.core.settings import Environment, get_settings

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret


def revoked_token_key(jti: str) -> str:
    return f"auth:revoked:token:{jti}"


def revoked_family_key(family_id: str) -> str:
    return f"auth:revoked:family:{family_id}"


def user_tokens_invalid_before_key(user_id: uuid.UUID | str) -> str:
    return f"auth:revoked:user:{user_id}"


@dataclass(frozen=True)
class TokenKeys:
    algorithm: str
    public_key: Any
    private_key: Any | None
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = json.loads(algorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk


def _algorithm_for(public_key: Any) -> str:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise ValueError("RSA signing keys must have at least 2048 bits")
        return "RS256"
    raise ValueError("the JWT key must be Ed25519 (EdDSA) or RSA (RS256)")


def _key_id(public_key: Any) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


def generate_private_key_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(private_key_pem: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@lru_cache
def get_token_keys() -> TokenKeys:
    settings = get_settings().auth
    private_pem = settings.jwt_private_key.get_secret_value() if settings.jwt_private_key else None
    public_pem = settings.jwt_public_key
    if public_pem is None and private_pem is None:
        if get_settings().environment not in (Environment.DEVELOPMENT, Environment.TEST):
            raise RuntimeError("GROWBIN_AUTH__JWT_PUBLIC_KEY is required")
        # Development only: a per-process key, so tokens only work within this process (the
        # all-in-one app). `growbin generate-keys` writes a key pair for multi-process setups.
        logger.warning("no JWT keys configured; using an ephemeral development key")
        private_pem = generate_private_key_pem()
    private_key = (
        serialization.load_pem_private_key(private_pem.encode(), password=None)
        if private_pem
        else None
    )
    public_key = (
        serialization.load_pem_public_key(public_pem.encode())
        if public_pem
        else private_key.public_key()
    )
    if private_key is not None and _key_id(private_key.public_key()) != _key_id(public_key):
        raise ValueError("GROWBIN_AUTH__JWT_PRIVATE_KEY does not match the public key")
    return TokenKeys(
        algorithm=_algorithm_for(public_key),
        public_key=public_key,
        private_key=private_key,
        kid=_key_id(public_key),
    )


@dataclass(frozen=True)
class AuthenticatedUser:
    id: uuid.UUID
    token_id: str
    family_id: str
    expires_at: int


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm, issuer, audience, expiry and type; return the claims."""
    keys = get_token_keys()
    settings = get_settings().auth
    try:
        # `algorithms` is the one configured algorithm: "none" and HS256-with-the-public-key
        # confusion are refused by construction.
        claims = jwt.decode(
            token,
            keys.public_key,
            algorithms=[keys.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": ["exp", "iat", "sub", "jti", "sid", "typ", "iss", "aud"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", details={"reason": "expired"}) from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("The access token is not valid.", details={"reason": "invalid"}) from exc
    if claims["typ"] != ACCESS_TOKEN_TYPE:
        raise Unauthorized("The access token is not valid.", details={"reason": "wrong_type"})
    return claims


async def authenticate(token: str) -> AuthenticatedUser:
    claims = decode_access_token(token)
    try:
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, TypeError) as exc:
        raise Unauthorized("The access token is not valid.") from exc
    revoked_token, revoked_family, invalid_before = await get_redis().mget(
        revoked_token_key(claims["jti"]),
        revoked_family_key(claims["sid"]),
        user_tokens_invalid_before_key(user_id),
    )
    if revoked_token or revoked_family:
        raise Unauthorized("The access token has been revoked.", details={"reason": "revoked"})
    if invalid_before and int(claims["iat"]) < int(invalid_before):
        raise Unauthorized("The access token has been revoked.", details={"reason": "revoked"})
    return AuthenticatedUser(
        id=user_id, token_id=claims["jti"], family_id=claims["sid"], expires_at=int(claims["exp"])
    )


_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer access token is required.", details={"reason": "missing"})
    return await authenticate(credentials.credentials)


CurrentUser = Annotated[AuthenticatedUser, Depends(get_current_user)]


def seconds_until(timestamp: int) -> int:
    return max(1, timestamp - int(time.time()))
