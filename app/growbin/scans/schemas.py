from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from growbin.scans.models import ScanStatus

ImageContentType = Literal["image/jpeg", "image/png", "image/webp"]


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: ImageContentType
    content_length: int = Field(gt=0, description="Exact size in bytes of the file to upload")


class UploadTicket(BaseModel):
    object_key: str
    url: str
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Send exactly these headers with the upload")
    expires_in: int


class ScanFromUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_key: str = Field(min_length=1, max_length=512)


class ScanAccepted(BaseModel):
    id: uuid.UUID
    status: ScanStatus
    events_url: str


class LocalizedText(BaseModel):
    ko: str
    en: str


class Named(BaseModel):
    slug: str
    name: LocalizedText


class Candidate(BaseModel):
    category: Named
    item: Named | None = None
    confidence: float


class NotAccepted(BaseModel):
    what: LocalizedText
    why: LocalizedText
    instead: str


class ScanResult(BaseModel):
    """The classification joined with the knowledge base."""

    classifier: str
    confidence: float
    category: Named | None
    item: Named | None
    item_guess: str | None = None
    steps: list[LocalizedText]
    not_accepted: list[NotAccepted] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    reasons: list[str] = Field(
        default_factory=list, description="Why the classifier could not decide, if it could not"
    )


class Scan(BaseModel):
    id: uuid.UUID
    status: ScanStatus
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    image_url: str | None
    thumbnail_url: str | None
    result: ScanResult | None
    failure_reason: str | None


class ScanPage(BaseModel):
    items: list[Scan]
    next_cursor: str | None


class CategoryCount(BaseModel):
    category: str
    scans: int


class ScanStats(BaseModel):
    total_scans: int
    categories: list[CategoryCount]
