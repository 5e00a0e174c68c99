"""SQL of the scans domain (API side; the workers' writes go through growbin.worker.drain)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.scans.models import STAGES, Scan, ScanStatus


async def get(session: AsyncSession, scan_id: uuid.UUID) -> Scan | None:
    return await session.get(Scan, scan_id, populate_existing=True)


async def by_idempotency_key(session: AsyncSession, user_id: uuid.UUID, key: str) -> Scan | None:
    return await session.scalar(
        select(Scan).where(Scan.user_id == user_id, Scan.idempotency_key == key)
    )


async def insert_queued(
    session: AsyncSession,
    *,
    scan_id: uuid.UUID,
    user_id: uuid.UUID,
    idempotency_key: str | None,
    fingerprint: str,
    source_key: str,
) -> bool:
    """Insert a queued scan; False if another request took the idempotency key first."""
    statement = (
        insert(Scan)
        .values(
            id=scan_id,
            user_id=user_id,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            status=ScanStatus.QUEUED,
            stage=STAGES[ScanStatus.QUEUED],
            source_key=source_key,
        )
        .on_conflict_do_nothing(constraint="uq_scans_user_id_idempotency_key")
        .returning(Scan.id)
    )
    return (await session.scalar(statement)) is not None


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Scan]:
    query = select(Scan).where(Scan.user_id == user_id)
    if after is not None:
        query = query.where(tuple_(Scan.created_at, Scan.id) < tuple_(*after))
    query = query.order_by(Scan.created_at.desc(), Scan.id.desc()).limit(limit)
    return list(await session.scalars(query))


async def category_counts(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[str, int]]:
    count = func.count().label("scans")
    rows = await session.execute(
        select(Scan.category, count)
        .where(Scan.user_id == user_id, Scan.status == ScanStatus.COMPLETED)
        .group_by(Scan.category)
        .order_by(count.desc(), Scan.category)
    )
    return [(row.category, row.scans) for row in rows]


async def object_keys_of(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    rows = await session.execute(
        select(Scan.source_key, Scan.image_key, Scan.thumbnail_key).where(Scan.user_id == user_id)
    )
    return [key for row in rows for key in row if key]


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(Scan).where(Scan.user_id == user_id))


async def mark_failed(session: AsyncSession, scan_id: uuid.UUID, reason: str) -> None:
    scan = await get(session, scan_id)
    if scan is not None and scan.stage < STAGES[ScanStatus.FAILED]:
        scan.status = ScanStatus.FAILED
        scan.stage = STAGES[ScanStatus.FAILED]
        scan.failure_reason = reason
        scan.completed_at = func.now()
        scan.updated_at = func.now()
