"""Thin Celery tasks over the report services. They take ids only.

``acks_late`` and ``task_reject_on_worker_lost`` come from the global Celery
configuration: a report whose worker dies is delivered again, and the claim in
``report_run`` makes that second delivery harmless."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from . import services

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(bind=True, name="reports.tasks.run_report", max_retries=5)
def run_report(self, task_id):
    try:
        task = services.report_run(task_id=task_id, celery_task_id=self.request.id or "")
    except SoftTimeLimitExceeded:
        services.report_fail(task_id=task_id, error=services.ERROR_TIMED_OUT)
        raise
    except TRANSIENT_ERRORS as exc:
        # A database hiccup: the row was marked failed; put it back and try
        # again with backoff, unless retries are used up or someone asked again.
        if self.request.retries < self.max_retries and services.report_requeue(task_id=task_id):
            raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
        raise
    return task.status if task else "already taken"
