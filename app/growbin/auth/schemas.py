from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SignupRequest(StrictModel):
    email: EmailStr = Field(max_length=254)
    # The policy (length, character mix, strength estimate) is checked in the service so the
    # error can say which rule failed.
    password: str = Field(min_length=1, max_length=128)


class LoginRequest(StrictModel):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(StrictModel):
    refresh_token: str = Field(min_length=20, max_length=200)


class LogoutRequest(StrictModel):
    refresh_token: str | None = Field(default=None, min_length=20, max_length=200)


class Account(BaseModel):
    user_id: uuid.UUID
    email: str
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class Jwks(BaseModel):
    keys: list[dict[str, str]]
