"""Every non-public endpoint refuses missing, expired, tampered and alg:none tokens, and every
JSON endpoint answers malformed JSON with a 400 in the error shape."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from growbin.core.security import get_token_keys
from support import assert_error

PROTECTED = [
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/users/me"),
    ("PATCH", "/api/v1/users/me"),
    ("DELETE", "/api/v1/users/me"),
    ("GET", "/api/v1/users/me/stats"),
]
JSON_BODIES = [
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("PATCH", "/api/v1/users/me"),
]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _bad_tokens(valid: str) -> dict[str, str]:
    claims = jwt.decode(valid, options={"verify_signature": False})
    header, payload, signature = valid.split(".")
    keys = get_token_keys()
    expired = {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    return {
        "expired": jwt.encode(expired, keys.private_key, algorithm=keys.algorithm),
        "tampered": f"{header}.{_b64({**claims, 'exp': claims['exp'] + 86400})}.{signature}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_protected_endpoint_refuses_bad_tokens(client, make_account, method, path):
    account = await make_account()
    assert_error(await client.request(method, path), 401, "unauthorized")
    for name, token in _bad_tokens(account.tokens["access_token"]).items():
        response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (name, response.text)
        assert_error(response, 401, "unauthorized")
    # The account is intact: none of the refused calls did anything.
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 200


@pytest.mark.parametrize(("method", "path"), JSON_BODIES)
@pytest.mark.parametrize("body", ['{"a": ', "\xff\xfe", '{"a": 1,}'])
async def test_malformed_json_is_400(client, make_account, method, path, body):
    account = await make_account()
    response = await client.request(
        method,
        path,
        content=body.encode("latin-1"),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "malformed_json")
