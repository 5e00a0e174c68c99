from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Profile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    display_name: str | None
    preferred_language: Literal["ko", "en"]
    district: str | None
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=50)
    preferred_language: Literal["ko", "en"] | None = None
    district: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _language_not_null(self) -> ProfileUpdate:
        # display_name and district may be cleared with null; the language always has a value.
        if "preferred_language" in self.model_fields_set and self.preferred_language is None:
            raise ValueError("preferred_language cannot be null")
        return self


class CategoryCount(BaseModel):
    category: str
    scans: int
    last_scan_at: datetime


class UserStats(BaseModel):
    total_scans: int
    categories: list[CategoryCount]


class DeletionAccepted(BaseModel):
    status: Literal["deletion_scheduled"] = "deletion_scheduled"
    detail: str = "Your sessions are revoked now; every service removes your data within seconds."
