"""The Celery application.

Tasks are thin wrappers over services and must be idempotent: with ``acks_late``
a message is acknowledged only after its task finished, so a worker that dies
mid-task (``task_reject_on_worker_lost``) gets the message delivered again, and
a job whose worker died is taken over and resumed (``enrollment_site.lib.jobs``).
Time limits stay below the Redis visibility timeout, or a long task would be
delivered a second time while the first run still works on it.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

app = Celery("enrollment_site")
app.config_from_object("django.conf:settings", namespace="CELERY")

SOFT_TIME_LIMIT = 25 * 60
HARD_TIME_LIMIT = 30 * 60
VISIBILITY_TIMEOUT = 2 * 60 * 60
# Tasks are sent from web requests once their transaction commits. With the broker
# down, kombu's defaults retry the connection for about 6 seconds (waits of 2 and 4 s)
# and a connect to an unreachable host waits for the OS; the user would wait with it.
# One attempt of at most a second instead: what was not sent stays queued in its job
# or outbox row, and the periodic sweeps send it once the broker is back. (A worker's
# own connection to consume is retried as before: broker_connection_max_retries.)
BROKER_CONNECT_TIMEOUT = 1.0
BROKER_PUBLISH_CONNECT_RETRIES = 0

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    task_soft_time_limit=SOFT_TIME_LIMIT,
    task_time_limit=HARD_TIME_LIMIT,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_connect_timeout": BROKER_CONNECT_TIMEOUT,
        "max_retries": BROKER_PUBLISH_CONNECT_RETRIES,
    },
    broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
    broker_connection_retry_on_startup=True,
    # A notification must never wait behind a million-row report.
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("email"), Queue("bulk"), Queue("reports")),
    task_routes={
        "enrollments.tasks.send_notifications": {"queue": "email"},
        "enrollments.tasks.sweep_notifications": {"queue": "email"},
        "enrollments.tasks.run_batch_job": {"queue": "bulk"},
        "enrollments.tasks.run_bulk_enroll_job": {"queue": "bulk"},
        "enrollments.tasks.run_roster_job": {"queue": "bulk"},
        "enrollments.tasks.run_undo_job": {"queue": "bulk"},
        "enrollments.tasks.run_preview_job": {"queue": "bulk"},
        "enrollments.tasks.expire_enrollments": {"queue": "bulk"},
        "enrollments.tasks.remind_expiring": {"queue": "bulk"},
        "reports.tasks.*": {"queue": "reports"},
        "organisations.tasks.*": {"queue": "bulk"},
    },
    beat_schedule={
        "sweep-notifications": {"task": "enrollments.tasks.sweep_notifications", "schedule": 60.0},
        "sweep-jobs": {"task": "enrollment_site.sweep_jobs", "schedule": 60.0},
        "refresh-enrollment-rules": {"task": "organisations.tasks.refresh_rules", "schedule": 3600.0},
        "sweep-previews": {"task": "enrollments.tasks.sweep_previews", "schedule": 3600.0},
        # Reports drift of the enrollment counters; fixing is a person's decision (enrollment_counts_check --fix).
        "check-enrollment-counts": {"task": "enrollments.tasks.check_enrollment_counts", "schedule": 86400.0},
        # Periods of access: ended (or renewed) within five minutes of their end; reminders within the hour.
        "expire-enrollments": {"task": "enrollments.tasks.expire_enrollments", "schedule": 300.0},
        "remind-expiring-enrollments": {"task": "enrollments.tasks.remind_expiring", "schedule": 3600.0},
    },
)
app.autodiscover_tasks()


@app.task(name="enrollment_site.ping")
def ping(value: str = "pong") -> str:
    """Echo task: lets the health check and tests prove a worker is consuming."""
    return value


# On the default queue on purpose: the sweep must run even when every bulk or
# reports worker is busy with a long job or dead (which is when it is needed).
@app.task(name="enrollment_site.sweep_jobs")
def sweep_jobs() -> int:
    """Periodic (beat, every minute): the one job sweep, over every job kind:
    takes over jobs whose worker died and sends again jobs never started."""
    from enrollment_site.lib.jobs import all_jobs_sweep

    return all_jobs_sweep()
