"""The Celery application: ``celery -A growbin.worker.celery_app worker -Q storage`` (or ``ai``).

Delivery guarantees: a message is acknowledged only after its task returned (``acks_late``),
having journalled its outcome; a worker that dies mid-task leaves the message unacknowledged,
so RabbitMQ redelivers it (``reject_on_worker_lost`` covers a killed pool process). One message
in flight per worker process (prefetch multiplier 1). Queues are durable classic queues that
dead-letter into ``growbin.dlx`` (docs/CONTRACTS.md); the worker declares the dead-letter
exchange and the ``<queue>.dlq`` queues too, with the same arguments as the rabbitmq role, so
a fresh broker works.

In the worker's main process the journal drain loop and the metrics endpoint start once the
worker is ready.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from kombu import Exchange, Queue

from growbin.core.settings import get_settings
from growbin.core.tasks import AI_QUEUE, CLASSIFY_TASK, INGEST_TASK, STORAGE_QUEUE

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "growbin.dlx"
TASK_EXCHANGE = Exchange("growbin", type="direct", durable=True)
# A task that runs longer than this is killed (and, with acks_late, redelivered).
TASK_TIME_LIMIT_SECONDS = 300


def queue_arguments(name: str) -> dict[str, Any]:
    return {
        "x-queue-type": "classic",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": name,
    }


def task_queue(name: str) -> Queue:
    return Queue(
        name,
        TASK_EXCHANGE,
        routing_key=name,
        durable=True,
        queue_arguments=queue_arguments(name),
    )


def dead_letter_queue(name: str) -> Queue:
    return Queue(
        f"{name}.dlq",
        Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "classic"},
    )


def create_celery() -> Celery:
    settings = get_settings()
    celery = Celery("growbin", include=["growbin.worker.tasks"])
    celery.conf.update(
        broker_url=settings.broker.url.get_secret_value(),
        broker_connection_retry_on_startup=True,
        # Publishing waits for the broker's confirmation: an accepted scan is really queued.
        broker_transport_options={"confirm_publish": True},
        task_queues=[task_queue(STORAGE_QUEUE), task_queue(AI_QUEUE)],
        task_default_queue=STORAGE_QUEUE,
        task_default_exchange=TASK_EXCHANGE.name,
        task_default_routing_key=STORAGE_QUEUE,
        task_routes={
            INGEST_TASK: {"queue": STORAGE_QUEUE, "routing_key": STORAGE_QUEUE},
            CLASSIFY_TASK: {"queue": AI_QUEUE, "routing_key": AI_QUEUE},
        },
        task_create_missing_queues=False,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=TASK_TIME_LIMIT_SECONDS,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return celery


app = create_celery()


def declare_dead_letter_topology() -> None:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in (STORAGE_QUEUE, AI_QUEUE):
            dead_letter_queue(name)(channel).declare()


_drainer = None


@worker_ready.connect
def _start_worker_services(**_: Any) -> None:
    from growbin.worker.drain import Drainer
    from growbin.worker.journal import Journal
    from growbin.worker.metrics import serve

    global _drainer
    settings = get_settings()
    declare_dead_letter_topology()
    journal = Journal(settings.worker.wal_path)
    pending = journal.depth()
    if pending:
        log.warning("replaying %d journal entries left by the previous run", pending)
    serve(journal, settings.worker.metrics_port)
    _drainer = Drainer(journal, settings.worker.drain_interval_seconds)
    _drainer.start()


@worker_shutdown.connect
def _stop_worker_services(**_: Any) -> None:
    if _drainer is not None:
        _drainer.stop()
