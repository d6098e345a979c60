"""Starting Celery tasks after the surrounding transaction commits."""

import logging
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)


def _send(task, args, kwargs):
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception:
        # The change itself is committed; a broker outage must not turn it into
        # an error. Outbox rows and job rows stay pending and the periodic
        # sweep picks them up once the broker is back.
        logger.exception("could not enqueue %s; it will be picked up by the sweep", task.name)


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue ``task`` once the current transaction commits (never if it rolls back)."""
    transaction.on_commit(partial(_send, task, args, kwargs))
