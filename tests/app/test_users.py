"""users: profile, statistics, isolation between users, account deletion across domains."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from growbin.core.db import get_databases
from growbin.users.service import record_scan
from sqlalchemy import text
from support import assert_error

PROFILE = "/api/v1/users/me"


async def test_profile_is_created_on_first_read_and_updated(client, make_account):
    account = await make_account()
    profile = await client.get(PROFILE, headers=account.headers)
    assert profile.status_code == 200
    assert profile.json()["preferred_language"] == "ko"
    assert profile.json()["display_name"] is None
    updated = await client.patch(
        PROFILE,
        headers=account.headers,
        json={"display_name": "분리수거왕", "preferred_language": "en", "district": "마포구"},
    )
    assert updated.status_code == 200
    assert updated.json()["display_name"] == "분리수거왕"
    again = (await client.get(PROFILE, headers=account.headers)).json()
    assert (again["preferred_language"], again["district"]) == ("en", "마포구")
    cleared = await client.patch(PROFILE, headers=account.headers, json={"district": None})
    assert cleared.json()["district"] is None
    assert cleared.json()["display_name"] == "분리수거왕"


async def test_user_a_cannot_see_or_change_user_b(client, make_account):
    alice = await make_account()
    bob = await make_account()
    await client.patch(PROFILE, headers=alice.headers, json={"display_name": "alice"})
    await client.patch(PROFILE, headers=bob.headers, json={"display_name": "bob"})
    await record_scan(bob.user_id, "plastic", datetime.now(UTC))
    # The only addressable profile is the caller's own; user ids in the body are refused.
    attempt = await client.patch(
        PROFILE, headers=alice.headers, json={"user_id": str(bob.user_id), "display_name": "x"}
    )
    assert_error(attempt, 422, "invalid_request")
    assert (await client.get(PROFILE, headers=bob.headers)).json()["display_name"] == "bob"
    assert (await client.get(PROFILE, headers=alice.headers)).json()["display_name"] == "alice"
    alice_stats = (await client.get(PROFILE + "/stats", headers=alice.headers)).json()
    assert alice_stats == {"total_scans": 0, "categories": []}


async def test_stats_count_recorded_scans_per_category(client, make_account):
    account = await make_account()
    for category in ("plastic", "paper", "plastic"):
        await record_scan(account.user_id, category, datetime.now(UTC))
    stats = (await client.get(PROFILE + "/stats", headers=account.headers)).json()
    assert stats["total_scans"] == 3
    assert [(c["category"], c["scans"]) for c in stats["categories"]] == [
        ("plastic", 2),
        ("paper", 1),
    ]


@pytest.mark.parametrize(
    "body",
    [
        '{"display_name": ""}',
        '{"display_name": "' + "가" * 51 + '"}',
        '{"display_name": 42}',
        '{"preferred_language": "fr"}',
        '{"preferred_language": null}',
        '{"district": "' + "x" * 101 + '"}',
        '{"nickname": "x"}',
        '{"display_name": "x"',
        "[]",
    ],
)
async def test_bad_profile_updates_are_4xx(client, make_account, body):
    account = await make_account()
    response = await client.patch(
        PROFILE, content=body, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_profile_endpoints_require_a_token(client, method):
    response = await client.request(method, PROFILE, json={})
    assert_error(response, 401, "unauthorized")
    assert_error(await client.get(PROFILE + "/stats"), 401)


async def _rows(domain: str, sql: str, **params) -> int:
    async with get_databases().engine(domain).connect() as connection:
        return await connection.scalar(text(sql), params)


async def test_account_deletion_reaches_every_domain(client, make_account):
    alice = await make_account()
    bob = await make_account()
    for account in (alice, bob):
        await client.patch(PROFILE, headers=account.headers, json={"display_name": "x"})
        await record_scan(account.user_id, "glass", datetime.now(UTC))
    response = await client.delete(PROFILE, headers=alice.headers)
    assert response.status_code == 202
    # Every token of the account stops working at once, in every service.
    assert_error(await client.get(PROFILE, headers=alice.headers), 401)
    assert_error(await client.get("/api/v1/auth/me", headers=alice.headers), 401)
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": alice.tokens["refresh_token"]}
    )
    assert_error(refresh, 401)
    login = await client.post(
        "/api/v1/auth/login", json={"email": alice.email, "password": alice.password}
    )
    assert_error(login, 401)
    # The auth domain purges its own database through the user.deleted event.
    for _ in range(50):
        remaining = await _rows(
            "auth", "SELECT count(*) FROM credentials WHERE user_id = :u", u=alice.user_id
        )
        if remaining == 0:
            break
        await asyncio.sleep(0.1)
    assert remaining == 0
    assert (
        await _rows(
            "auth", "SELECT count(*) FROM refresh_tokens WHERE user_id = :u", u=alice.user_id
        )
        == 0
    )
    for table in ("profiles", "category_stats"):
        sql = f"SELECT count(*) FROM {table} WHERE user_id = :u"
        assert await _rows("users", sql, u=alice.user_id) == 0
        assert await _rows("users", sql, u=bob.user_id) == 1
    # Bob is untouched.
    assert (await client.get("/api/v1/auth/me", headers=bob.headers)).status_code == 200
    # The email can be registered again as a new account.
    again = await client.post(
        "/api/v1/auth/signup", json={"email": alice.email, "password": alice.password}
    )
    assert again.status_code == 201
    assert again.json()["user_id"] != str(alice.user_id)
