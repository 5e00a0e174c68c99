"""Helpers shared by the application tests (imported as ``support``)."""

from __future__ import annotations

import uuid

import httpx
import jwt


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The one error shape, with the expected status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code, error
    if status == 503:
        # "Unavailable" always says when to come back.
        assert int(response.headers["retry-after"]) > 0, response.headers
    return error


class Account:
    def __init__(self, email: str, password: str, tokens: dict) -> None:
        self.email = email
        self.password = password
        self.tokens = tokens

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(
            jwt.decode(self.tokens["access_token"], options={"verify_signature": False})["sub"]
        )
