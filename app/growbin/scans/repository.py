"""SQL of the scans domain (API side; the workers' writes go through growbin.worker.drain)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.tasks import INGEST_TASK, STORAGE_QUEUE, ingest_task_id
from growbin.scans.models import STAGES, OutboxMessage, Scan, ScanStatus

# The scan and its ingest task in one statement: the task row exists exactly when the scan row
# was inserted. Written as SQL because SQLAlchemy does not cache the compiled form of
# PostgreSQL's INSERT ... ON CONFLICT; this text is compiled once.
_ACCEPT = text(
    """
    WITH accepted AS (
        INSERT INTO scans
            (id, user_id, idempotency_key, request_fingerprint, status, stage, source_key)
        VALUES
            (:id, :user_id, :idempotency_key, :fingerprint, :status, :stage, :source_key)
        ON CONFLICT ON CONSTRAINT uq_scans_user_id_idempotency_key DO NOTHING
        RETURNING *
    ), queued AS (
        INSERT INTO scan_outbox (task, queue, task_id, args)
        SELECT CAST(:task AS text), CAST(:queue AS text), CAST(:task_id AS text), :args
        FROM accepted
    )
    SELECT * FROM accepted
    """
).bindparams(bindparam("args", type_=JSONB))


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
) -> Scan | None:
    """Insert a queued scan and its ingest task in the outbox (the caller's transaction).

    None, and nothing written, if another request took the idempotency key first.
    """
    statement = select(Scan).from_statement(_ACCEPT)
    params = {
        "id": scan_id,
        "user_id": user_id,
        "idempotency_key": idempotency_key,
        "fingerprint": fingerprint,
        "status": ScanStatus.QUEUED.value,
        "stage": STAGES[ScanStatus.QUEUED],
        "source_key": source_key,
        "task": INGEST_TASK,
        "queue": STORAGE_QUEUE,
        "task_id": ingest_task_id(str(scan_id)),
        "args": [str(scan_id), str(user_id), source_key],
    }
    return (await session.scalars(statement, params)).first()


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


def try_relay_lock(key: int) -> Select[tuple[bool]]:
    """Take the relay's advisory lock for the transaction, or answer False at once."""
    return select(func.pg_try_advisory_xact_lock(key))


async def pending_outbox(session: AsyncSession, limit: int) -> list[OutboxMessage]:
    """The oldest unsent outbox messages, locked until the transaction ends."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update()
    )
    return list(await session.scalars(query))


async def mark_outbox_sent(session: AsyncSession, ids: list[int]) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(sent_at=func.now())
    )


async def outbox_backlog(session: AsyncSession) -> tuple[int, float]:
    """How many messages wait to be published, and the age of the oldest in seconds."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.extract("epoch", func.now() - func.min(OutboxMessage.created_at)), 0
                ),
            ).where(OutboxMessage.sent_at.is_(None))
        )
    ).one()
    return int(row[0]), float(row[1])


async def prune_outbox(session: AsyncSession, older_than_seconds: int) -> int:
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.sent_at < func.now() - timedelta(seconds=older_than_seconds)
        )
    )
    return result.rowcount or 0
