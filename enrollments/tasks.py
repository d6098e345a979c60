"""Thin Celery tasks over the enrollment services. They take ids only."""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(
    name="enrollments.tasks.send_notifications",
    autoretry_for=(OperationalError, OSError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_notifications(operation_id=None):
    return services.notifications_send(operation_id=operation_id)


@shared_task(name="enrollments.tasks.sweep_notifications")
def sweep_notifications():
    """Periodic: deliver whatever a broker outage or a dead worker left behind
    (notifications only; stale jobs are the job sweep's, ``sweep_jobs``)."""
    services.notifications_requeue_stale()
    return services.notifications_send()


@shared_task(name="enrollments.tasks.run_batch_job")
def run_batch_job(job_id):
    job = services.batch_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="enrollments.tasks.run_bulk_enroll_job")
def run_bulk_enroll_job(job_id):
    job = services.bulk_enroll_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="enrollments.tasks.run_roster_job")
def run_roster_job(job_id):
    job = services.roster_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="enrollments.tasks.run_undo_job")
def run_undo_job(job_id):
    job = services.undo_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="enrollments.tasks.run_preview_job")
def run_preview_job(job_id):
    job = services.preview_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="enrollments.tasks.sweep_previews")
def sweep_previews():
    """Periodic (beat, hourly): remove previews and read uploads nobody confirmed within PREVIEW_KEEP_HOURS."""
    previews, uploads = services.previews_sweep()
    return {"previews": previews, "uploads": uploads}


@shared_task(name="enrollments.tasks.check_enrollment_counts")
def check_enrollment_counts(fix=False):
    """Periodic (daily): recount and compare the enrollment counters, logging any
    drift; fixes only when asked. Returns the drift's summary."""
    return services.enrollment_counts_check(fix=fix).summary()


@shared_task(name="enrollments.tasks.expire_enrollments")
def expire_enrollments():
    """Periodic (beat, every 5 minutes): end, or renew when recurring, every
    enrollment whose period of access has ended. Several at once share the work."""
    run = services.enrollments_expire()
    return {"ended": run.ended, "renewed": run.renewed}


@shared_task(name="enrollments.tasks.remind_expiring")
def remind_expiring():
    """Periodic (beat, hourly): the expiry reminders, once per enrollment and period."""
    return services.enrollments_remind().summary()
