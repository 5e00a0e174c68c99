"""auth: signup, login, tokens (tampering, alg:none, expiry), refresh rotation, logout, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from growbin.auth.service import issue_access_token
from growbin.core.security import get_token_keys
from growbin.core.settings import get_settings
from support import assert_error

ME = "/api/v1/auth/me"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_signup_login_and_me(client, make_account):
    account = await make_account(email="Mixed.Case@Example.org")
    assert account.tokens["token_type"] == "bearer"
    assert account.tokens["expires_in"] == get_settings().auth.access_token_ttl_seconds
    me = await client.get(ME, headers=account.headers)
    assert me.status_code == 200
    assert me.json()["email"] == "mixed.case@example.org"
    assert me.json()["user_id"] == str(account.user_id)


async def test_duplicate_email_is_a_conflict_case_insensitively(client, make_account):
    await make_account(email="dup@example.org")
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "DUP@example.org", "password": "Another-pass-99"}
    )
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short1", "at least 10 characters"),
        ("onlyletterslong", "at least one letter and one digit"),
        ("12345678901234", "at least one letter and one digit"),
        ("password123", "not a common or repetitive password"),
        ("aaaa1111aaaa", "not a common or repetitive password"),
        ("gildong-2026-x", "must not contain the email name"),
    ],
)
async def test_password_policy(client, password, rule):
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "gildong@example.org", "password": password}
    )
    error = assert_error(response, 422, "invalid_request")
    assert rule in [d["msg"] for d in error["details"]]


async def test_wrong_password_and_unknown_email_look_the_same(client, make_account):
    account = await make_account()
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "Wrong-pass-123"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.org", "password": "Wrong-pass-123"}
    )
    assert assert_error(wrong, 401)["message"] == assert_error(unknown, 401)["message"]


async def test_password_is_stored_as_argon2id(make_account):
    from growbin.core.db import get_databases
    from sqlalchemy import text

    account = await make_account()
    async with get_databases().engine("auth").connect() as connection:
        stored = await connection.scalar(
            text("SELECT password_hash FROM credentials WHERE email = :e"), {"e": account.email}
        )
    assert stored.startswith("$argon2id$")
    assert account.password not in stored


async def test_missing_token_and_wrong_scheme_are_refused(client):
    assert assert_error(await client.get(ME), 401)["details"] == {"reason": "missing"}
    response = await client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_tampered_token_is_refused(client, make_account):
    account = await make_account()
    header, payload, signature = account.tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = f"{header}.{_b64(claims)}.{signature}"
    response = await client.get(ME, headers={"Authorization": f"Bearer {forged}"})
    assert assert_error(response, 401)["details"] == {"reason": "invalid"}


async def test_alg_none_token_is_refused(client, make_account):
    account = await make_account()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    response = await client.get(ME, headers={"Authorization": f"Bearer {unsigned}"})
    assert_error(response, 401, "unauthorized")


async def test_hs256_signed_with_the_public_key_is_refused(client, make_account):
    account = await make_account()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT"}
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    public_pem = get_token_keys().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    assert_error(await client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)


async def test_token_from_another_key_is_refused(client, make_account):
    account = await make_account()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    stranger = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA")
    assert_error(await client.get(ME, headers={"Authorization": f"Bearer {stranger}"}), 401)


async def test_expired_token_is_refused(client, make_account):
    account = await make_account()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600)
    claims["exp"] = int(time.time()) - 60
    keys = get_token_keys()
    expired = jwt.encode(claims, keys.private_key, algorithm=keys.algorithm)
    response = await client.get(ME, headers={"Authorization": f"Bearer {expired}"})
    assert assert_error(response, 401)["details"] == {"reason": "expired"}


async def test_token_with_wrong_audience_or_type_is_refused(client, make_account):
    account = await make_account()
    keys = get_token_keys()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    for change in ({"aud": "someone-else"}, {"typ": "refresh"}, {"iss": "evil"}):
        token = jwt.encode({**claims, **change}, keys.private_key, algorithm=keys.algorithm)
        assert_error(await client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)


async def test_jwks_verifies_issued_tokens(client, make_account):
    account = await make_account()
    jwks = (await client.get("/api/v1/auth/.well-known/jwks.json")).json()
    [key] = jwks["keys"]
    assert key["alg"] == "EdDSA" and key["use"] == "sig" and "d" not in key
    header = jwt.get_unverified_header(account.tokens["access_token"])
    assert header["kid"] == key["kid"]
    claims = jwt.decode(
        account.tokens["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["EdDSA"],
        audience="growbin",
    )
    assert claims["sub"] == str(account.user_id)


async def test_refresh_rotates_tokens(client, make_account):
    account = await make_account()
    first = account.tokens["refresh_token"]
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != first
    me = await client.get(ME, headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 200


async def test_refresh_token_reuse_revokes_the_family(client, make_account):
    account = await make_account()
    stolen = account.tokens["refresh_token"]
    legit = (await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})).json()
    # The attacker replays the already-rotated token.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
    assert assert_error(replay, 401)["details"] == {"reason": "refresh_token_reused"}
    # The legitimate client's newer tokens of the same family are dead too.
    newer = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": legit["refresh_token"]}
    )
    assert_error(newer, 401)
    me = await client.get(ME, headers={"Authorization": f"Bearer {legit['access_token']}"})
    assert assert_error(me, 401)["details"] == {"reason": "revoked"}


async def test_other_sessions_survive_a_family_revocation(client, make_account):
    account = await make_account()
    second = (
        await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
    ).json()
    stolen = account.tokens["refresh_token"]
    await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
    await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
    me = await client.get(ME, headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200


async def test_unknown_refresh_token_is_refused(client):
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43})
    assert assert_error(response, 401)["details"] == {"reason": "invalid"}


async def test_expired_refresh_token_is_refused(client, make_account):
    from growbin.core.db import get_databases
    from sqlalchemy import text

    account = await make_account()
    async with get_databases().engine("auth").begin() as connection:
        await connection.execute(
            text("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        )
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.tokens["refresh_token"]}
    )
    assert assert_error(response, 401)["details"] == {"reason": "expired"}


async def test_logout_revokes_access_and_refresh_tokens(client, make_account):
    account = await make_account()
    response = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert response.status_code == 204
    assert_error(await client.get(ME, headers=account.headers), 401)
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.tokens["refresh_token"]}
    )
    assert_error(refresh, 401)


async def test_issued_token_is_valid_only_for_its_user(client, make_account):
    alice = await make_account()
    bob = await make_account()
    me = await client.get(ME, headers=bob.headers)
    assert me.json()["user_id"] == str(bob.user_id) != str(alice.user_id)
    token, _ = issue_access_token(alice.user_id, uuid.uuid4())
    me = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == alice.email


async def test_login_rate_limit_per_account_triggers_and_recovers(
    client, make_account, monkeypatch
):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "login_max_failures_per_account", 3)
    monkeypatch.setattr(settings, "login_window_seconds", 5)
    account = await make_account()
    bad = {"email": account.email, "password": "Wrong-pass-123"}
    for _ in range(3):
        assert_error(await client.post("/api/v1/auth/login", json=bad), 401)
    # Locked: even the right password is refused while the window lasts.
    good = {"email": account.email, "password": account.password}
    limited = await client.post("/api/v1/auth/login", json=good)
    assert_error(limited, 429, "rate_limited")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 5
    await asyncio.sleep(retry_after + 0.2)
    assert (await client.post("/api/v1/auth/login", json=good)).status_code == 200


async def test_login_rate_limit_per_client_address(client, make_account, monkeypatch):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "login_max_attempts_per_client", 4)
    monkeypatch.setattr(settings, "login_window_seconds", 5)
    account = await make_account()  # its login is the address's first attempt
    # Different accounts from one address: the per-address limit applies.
    for n in range(3):
        body = {"email": f"guess{n}@example.org", "password": "Wrong-pass-123"}
        assert_error(await client.post("/api/v1/auth/login", json=body), 401)
    good = {"email": account.email, "password": account.password}
    limited = await client.post("/api/v1/auth/login", json=good)
    assert_error(limited, 429, "rate_limited")
    await asyncio.sleep(int(limited.headers["retry-after"]) + 0.2)
    assert (await client.post("/api/v1/auth/login", json=good)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ('{"email": "a@example.org", "password": ', 400, "malformed_json"),
        ('["not", "an", "object"]', 422, "invalid_request"),
        ('{"email": 5, "password": "Recycle-2026-ok"}', 422, "invalid_request"),
        ('{"email": "not-an-email", "password": "Recycle-2026-ok"}', 422, "invalid_request"),
        ('{"email": "a@example.org", "password": "' + "x" * 129 + '"}', 422, "invalid_request"),
        ('{"email": "a@example.org", "password": "Recycle-2026-ok", "admin": true}', 422, None),
        ('{"email": "' + "a" * 300 + '@example.org", "password": "Recycle-2026-ok"}', 422, None),
        ("", 422, "invalid_request"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/auth/signup", "/api/v1/auth/login"])
async def test_bad_input_is_a_4xx_in_the_error_shape(client, path, body, status, code):
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, status, code)


@pytest.mark.parametrize(
    "body", ['{"refresh_token": 12}', '{"refresh_token": "short"}', '{"token": "x"}', "{"]
)
async def test_bad_refresh_input(client, body):
    response = await client.post(
        "/api/v1/auth/refresh", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
