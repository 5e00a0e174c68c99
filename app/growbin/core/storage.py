"""The object store for images: S3 (boto3) in production, a directory for local runs.

Both backends have the same synchronous interface (the worker calls it directly, the API
through a thread). Keys are plain relative paths such as ``scans/<id>/image.jpg``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from growbin.core.settings import StorageSettings, get_settings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class ObjectNotFound(LookupError):
    """The key does not exist in the store."""


class ObjectTooLarge(ValueError):
    """The object is larger than the caller accepts."""


class DirectUploadUnsupported(RuntimeError):
    """The backend cannot hand out presigned upload URLs."""


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    method: str
    # Headers the client must send exactly as given: they are part of the signature.
    headers: dict[str, str]
    expires_in: int


def check_key(key: str) -> str:
    if len(key) > 512 or not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid object key {key!r}")
    return key


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str, max_bytes: int | None = None) -> bytes: ...

    def size(self, key: str) -> int:
        """Size in bytes; raises :class:`ObjectNotFound`."""
        ...

    def delete(self, key: str) -> None: ...

    def presigned_put(
        self, key: str, content_type: str, content_length: int
    ) -> PresignedUpload: ...

    def public_url(self, key: str) -> str | None: ...


def _public_url(base: str | None, key: str) -> str | None:
    return f"{base.rstrip('/')}/{key}" if base else None


class FilesystemStore:
    """Objects as files under ``root``; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path, public_base_url: str | None = None) -> None:
        self.root = Path(root)
        self.public_base_url = public_base_url

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as source:
                data = source.read(-1 if max_bytes is None else max_bytes + 1)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
        return data

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_put(self, key: str, content_type: str, content_length: int) -> PresignedUpload:
        raise DirectUploadUnsupported(
            "direct uploads need the S3 storage backend; send the image as multipart instead"
        )

    def public_url(self, key: str) -> str | None:
        return _public_url(self.public_base_url, key)


class S3Store:
    def __init__(self, settings: StorageSettings) -> None:
        import boto3
        from botocore.config import Config

        if not settings.bucket:
            raise ValueError("GROWBIN_STORAGE__BUCKET is required with the s3 backend")
        self.bucket = settings.bucket
        self.settings = settings
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def _missing(self, exc: Exception) -> bool:
        error = getattr(exc, "response", {}).get("Error", {})
        return error.get("Code") in ("404", "NoSuchKey", "NotFound")

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if self._missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        if max_bytes is not None and response["ContentLength"] > max_bytes:
            response["Body"].close()
            raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
        return response["Body"].read()

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=check_key(key))["ContentLength"]
        except ClientError as exc:
            if self._missing(exc):
                raise ObjectNotFound(key) from exc
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def presigned_put(self, key: str, content_type: str, content_length: int) -> PresignedUpload:
        # Content-Type and Content-Length are signed: S3 refuses an upload of another type or
        # size, so the client cannot swap in a larger or different file.
        ttl = self.settings.presign_ttl_seconds
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ContentType": content_type,
                "ContentLength": content_length,
            },
            ExpiresIn=ttl,
            HttpMethod="PUT",
        )
        return PresignedUpload(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type, "Content-Length": str(content_length)},
            expires_in=ttl,
        )

    def public_url(self, key: str) -> str | None:
        return _public_url(self.settings.public_base_url, key)


def build_store(settings: StorageSettings) -> ObjectStore:
    if settings.backend == "s3":
        return S3Store(settings)
    return FilesystemStore(settings.root, settings.public_base_url)


@lru_cache
def get_store() -> ObjectStore:
    return build_store(get_settings().storage)
