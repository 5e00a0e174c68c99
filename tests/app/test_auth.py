"""auth: signup, login, tokens (tampering, alg:none, expiry), refresh rotation, logout, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from growbin.auth.service import issue_access_token
from growbin.core.security import get_token_keys
from growbin.core.settings import AuthSettings, get_settings
from pydantic import ValidationError
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
        ("gildong-2026-x", "must not contain the email name"),
    ],
)
async def test_password_policy(client, password, rule):
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "gildong@example.org", "password": password}
    )
    error = assert_error(response, 422, "invalid_request")
    assert rule in [d["msg"] for d in error["details"]]


def _weakness(error: dict) -> str:
    """The strength rule's complaint, which the error's message must repeat."""
    [weakness] = [d["msg"] for d in error["details"] if d["msg"].startswith("easy to guess: ")]
    assert weakness in error["message"]
    return weakness


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop", "iloveyou123", "aaaa1111aaaa"])
async def test_common_and_repetitive_passwords_are_refused_saying_why(client, password):
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "mirae@example.org", "password": password}
    )
    error = assert_error(response, 422, "invalid_request")
    assert error["message"].startswith("The password is not accepted: ")
    # zxcvbn's warning: a (top-100 / very) common password, or one similar to a common one.
    assert "common" in _weakness(error)


async def test_a_password_built_from_the_email_name_is_refused(client):
    # Strong on its own; weak for the one whose email name it spells.
    password = "haneulpark1"
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "haneul.park@example.org", "password": password}
    )
    assert "email name" in _weakness(assert_error(response, 422, "invalid_request"))
    other = await client.post(
        "/api/v1/auth/signup", json={"email": "mirae.lee@example.org", "password": password}
    )
    assert other.status_code == 201, other.text


@pytest.mark.parametrize(
    "password",
    # A passphrase, and a password-manager one longer than zxcvbn's 72-character input limit.
    ["Violet-kettle-orbit-42", "7" + secrets.token_urlsafe(96)[:127]],
)
async def test_a_strong_password_is_accepted(client, password):
    email = f"strong-{uuid.uuid4().hex[:8]}@example.org"
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text


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


def _login(email: str, password: str) -> dict[str, str]:
    return {"email": email, "password": password}


def assert_rate_limited(response, at_most_seconds: int) -> int:
    error = assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= at_most_seconds
    assert error["details"] == {"retry_after_seconds": retry_after}
    return retry_after


async def test_an_attackers_failures_do_not_lock_the_owner_out(
    client, client_from_new_address, make_account
):
    settings = get_settings().auth
    account = await make_account()
    attacker = client_from_new_address()
    for _ in range(settings.login_max_failures_per_account_and_client):
        guess = await attacker.post(
            "/api/v1/auth/login", json=_login(account.email, "Guess-123456")
        )
        assert_error(guess, 401, "unauthorized")
    # The attacker's address is refused, even with the right password...
    refused = await attacker.post(
        "/api/v1/auth/login", json=_login(account.email, account.password)
    )
    assert_rate_limited(refused, settings.login_window_seconds)
    # ...while the owner, from another address, logs in at once.
    owner = client_from_new_address()
    response = await owner.post("/api/v1/auth/login", json=_login(account.email, account.password))
    assert response.status_code == 200, response.text


async def test_login_limit_per_account_and_address_triggers_and_recovers(
    client, make_account, monkeypatch
):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "login_max_failures_per_account_and_client", 3)
    monkeypatch.setattr(settings, "login_window_seconds", 5)
    account = await make_account()
    bad = {"email": account.email, "password": "Wrong-pass-123"}
    for _ in range(3):
        assert_error(await client.post("/api/v1/auth/login", json=bad), 401)
    # Locked for this address: even the right password is refused while the window lasts.
    good = {"email": account.email, "password": account.password}
    retry_after = assert_rate_limited(await client.post("/api/v1/auth/login", json=good), 5)
    await asyncio.sleep(retry_after + 0.2)
    assert (await client.post("/api/v1/auth/login", json=good)).status_code == 200


async def test_distributed_guessing_is_slowed_and_the_owner_still_gets_in(
    client_from_new_address, make_account, monkeypatch
):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "login_max_failures_per_account_and_client", 3)
    monkeypatch.setattr(settings, "login_backoff_after_account_failures", 4)
    monkeypatch.setattr(settings, "login_backoff_base_seconds", 2)
    monkeypatch.setattr(settings, "login_backoff_max_seconds", 4)
    account = await make_account()
    attackers = [client_from_new_address() for _ in range(3)]
    guess = _login(account.email, "Guess-123456")
    statuses = []
    for attacker in attackers:
        for _ in range(3):
            response = await attacker.post("/api/v1/auth/login", json=guess)
            if response.status_code == 429:
                assert_rate_limited(response, 4)
            statuses.append(response.status_code)
    # Three addresses could have tried 9 passwords; the account's backoff let 4 be checked.
    assert statuses == [401] * 4 + [429] * 5
    # After its wait an address gets one attempt, and then waits again.
    last = attackers[-1]
    wait = assert_rate_limited(await last.post("/api/v1/auth/login", json=guess), 4)
    await asyncio.sleep(wait + 0.2)
    assert_error(await last.post("/api/v1/auth/login", json=guess), 401)
    assert_rate_limited(await last.post("/api/v1/auth/login", json=guess), 4)
    # The owner from a new address waits at most the longest interval, then gets in.
    owner = client_from_new_address()
    good = _login(account.email, account.password)
    wait = assert_rate_limited(await owner.post("/api/v1/auth/login", json=good), 4)
    await asyncio.sleep(wait + 0.2)
    response = await owner.post("/api/v1/auth/login", json=good)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("backoff", "refusal"),
    [
        ({"login_backoff_base_seconds": 60, "login_backoff_max_seconds": 30}, "at least"),
        # Turns forgotten before the wait ends: every attempt would be a first one, forever.
        ({"login_backoff_max_seconds": 600, "login_backoff_window_seconds": 600}, "exceed"),
    ],
)
async def test_backoff_settings_that_cannot_end_a_wait_are_refused(backoff, refusal):
    with pytest.raises(ValidationError, match=refusal):
        AuthSettings(**backoff)


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


async def test_signup_limit_per_client_address(client, client_from_new_address, monkeypatch):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "signup_max_attempts_per_client", 3)
    monkeypatch.setattr(settings, "signup_window_seconds", 60)
    password = "Violet-kettle-orbit-42"
    # Attempts count, whatever their outcome: a refused password, a taken email, a new account.
    weak = await client.post("/api/v1/auth/signup", json=_login("a@one.example", "password1234"))
    assert_error(weak, 422)
    assert (
        await client.post("/api/v1/auth/signup", json=_login("b@two.example", password))
    ).status_code == 201
    taken = await client.post("/api/v1/auth/signup", json=_login("b@two.example", password))
    assert_error(taken, 409)
    limited = await client.post("/api/v1/auth/signup", json=_login("c@three.example", password))
    assert_rate_limited(limited, 60)
    other = client_from_new_address()
    response = await other.post("/api/v1/auth/signup", json=_login("c@three.example", password))
    assert response.status_code == 201, response.text


async def test_signup_limit_per_email_domain(client_from_new_address, monkeypatch):
    settings = get_settings().auth
    monkeypatch.setattr(settings, "signup_max_accounts_per_email_domain", 2)
    monkeypatch.setattr(settings, "signup_window_seconds", 60)
    password = "Violet-kettle-orbit-42"
    # Only created accounts count against a domain: refused attempts cannot use it up.
    weak = await client_from_new_address().post(
        "/api/v1/auth/signup", json=_login("weak@crowded.example", "qwertyuiop")
    )
    assert_error(weak, 422)
    for name in ("first", "second"):
        created = await client_from_new_address().post(
            "/api/v1/auth/signup", json=_login(f"{name}@crowded.example", password)
        )
        assert created.status_code == 201, created.text
    limited = await client_from_new_address().post(
        "/api/v1/auth/signup", json=_login("third@crowded.example", password)
    )
    assert_rate_limited(limited, 60)
    assert "domain" in assert_error(limited, 429)["message"]
    elsewhere = await client_from_new_address().post(
        "/api/v1/auth/signup", json=_login("third@quiet.example", password)
    )
    assert elsewhere.status_code == 201, elsewhere.text


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
