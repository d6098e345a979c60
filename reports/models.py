"""Report tasks: a report a course team asked for, produced by a worker.

The row is the only status the pages read (never Celery's ``AsyncResult``,
whose PENDING means both "waiting" and "unknown"). A worker claims a queued
row, records progress and a heartbeat on it chunk by chunk, and stores the
file through Django's storage API, so any web process can serve it.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from courses.models import Course
from enrollment_site.lib.jobs import ProgressJob


def error_label(error: str) -> str:
    """A report's stored error as the reader sees it: the known English ones translated, others as they are."""
    labels = {
        ReportTask.ERROR_LOST: gettext("worker lost again and again"),
        ReportTask.ERROR_NEVER_STARTED: gettext("never started"),
        ReportTask.ERROR_TIMED_OUT: gettext("timed out"),
    }
    return labels.get(error, error)


class ReportTask(ProgressJob):
    """A report asked for on the Data download tab, on the shared job lifecycle."""

    class Kind(models.TextChoices):
        MAY_ENROLL = "may_enroll", _("Learners who can enroll")
        ENROLLED_PROFILES = "enrolled_profiles", _("Enrolled learner profiles")
        CODES = "codes", _("Enrollment codes")
        PERIODS = "periods", _("Periods of access")

    # The Data download page's own wording for what the sweep writes. Stored
    # in English (the row has no reader's language); ``error_label`` translates.
    ERROR_LOST = "worker lost again and again"
    ERROR_NEVER_STARTED = "never started"
    ERROR_TIMED_OUT = "timed out"
    # A pending report blocks asking for the same one again (the unique index
    # below), so a report no worker took is given up on sooner than other jobs.
    queued_timeout = timedelta(hours=1)
    task_name = "reports.tasks.run_report"

    kind = models.CharField(_("report"), max_length=30, choices=Kind.choices)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="report_tasks", verbose_name=_("course"))
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("requested by"),
    )
    # The requester's language when asking: the file's header and words are in it.
    language = models.CharField(_("language"), max_length=10, blank=True, help_text=_("The language of the file's header and words."))
    celery_task_id = models.CharField(_("Celery task id"), max_length=255, blank=True)
    file = models.FileField(_("file"), upload_to="reports/", max_length=255, blank=True)

    class Meta(ProgressJob.Meta):
        ordering = ["-created", "-id"]
        verbose_name = _("report task")
        verbose_name_plural = _("report tasks")
        constraints = [
            # Asking for a report while the same one is pending must not start a
            # second: two concurrent requests race, and only the database decides.
            models.UniqueConstraint(
                fields=["course", "kind"],
                condition=Q(status__in=["queued", "running"]),
                name="reporttask_one_pending_per_course_kind",
            ),
        ]
        indexes = [
            # the Data tab: a course's tasks, newest first
            models.Index(fields=["course", "-created"], name="reporttask_course_created"),
            # the reaper looks for running rows with an old heartbeat, queued rows by age
            models.Index(fields=["status", "heartbeat_at"], name="reporttask_status_heartbeat"),
        ]

    def __str__(self):
        return gettext("%(report)s for %(course)s (%(status)s)") % {
            "report": self.get_kind_display(), "course": self.course, "status": self.get_status_display(),
        }

    @property
    def error_label(self) -> str:
        """The error in the reader's language where it is one of the sweep's or the time limit's own."""
        return error_label(self.error)

    @property
    def filename(self) -> str:
        """The file's own name, without the storage directory."""
        return self.file.name.rsplit("/", 1)[-1] if self.file else ""
