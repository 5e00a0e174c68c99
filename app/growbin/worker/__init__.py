"""Celery workers: image ingest (queue ``storage``) and classification (queue ``ai``)."""
