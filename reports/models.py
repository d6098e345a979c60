"""Report tasks: a report a course team asked for, produced by a worker.

The row is the only status the pages read (never Celery's ``AsyncResult``,
whose PENDING means both "waiting" and "unknown"). A worker claims a queued
row, records progress and a heartbeat on it chunk by chunk, and stores the
file through Django's storage API, so any web process can serve it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from courses.models import Course


class ReportTask(models.Model):
    class Kind(models.TextChoices):
        MAY_ENROLL = "may_enroll", "Learners who can enroll"
        ENROLLED_PROFILES = "enrolled_profiles", "Enrolled learner profiles"
        CODES = "codes", "Enrollment codes"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    PENDING_STATES = (State.QUEUED, State.RUNNING)

    kind = models.CharField(max_length=30, choices=Kind.choices)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="report_tasks")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to="reports/", max_length=255, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            # Asking for a report while the same one is pending must not start a
            # second: two concurrent requests race, and only the database decides.
            models.UniqueConstraint(
                fields=["course", "kind"],
                condition=Q(state__in=["queued", "running"]),
                name="reporttask_one_pending_per_course_kind",
            ),
        ]
        indexes = [
            # the Data tab: a course's tasks, newest first
            models.Index(fields=["course", "-created"], name="reporttask_course_created"),
            # the reaper looks for running rows with an old heartbeat, queued rows by age
            models.Index(fields=["state", "heartbeat_at"], name="reporttask_state_heartbeat"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.course} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state in self.PENDING_STATES

    @property
    def percent(self) -> int:
        if self.total:
            return min(100, int(100 * self.done / self.total))
        return 100 if self.state == self.State.SUCCEEDED else 0

    @property
    def filename(self) -> str:
        """The file's own name, without the storage directory."""
        return self.file.name.rsplit("/", 1)[-1] if self.file else ""
