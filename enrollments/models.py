import uuid
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from courses.models import MAX_DURATION_DAYS, Course
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.jobs import ProgressJob, ProgressJobChunk
from enrollment_site.lib.stored_texts import shown

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class Source(models.TextChoices):
    """How an enrollment change came about (the audit trail's 'source')."""

    BATCH = "batch", _("Batch page")
    API = "api", _("API")
    ADMIN = "admin", _("Admin")
    CODE = "code", _("Code")
    RULE = "rule", _("Rule")
    UNIT = "unit", _("Organisation unit")
    IMPORT = "import", _("Import")
    SELF = "self", _("Self")
    TEAM = "team", _("Course team")
    ACTIVATION = "activation", _("Account activation")
    ROSTER = "roster", _("Learners table")
    UNDO = "undo", _("Undo")
    EXPIRY = "expiry", _("Expiry")
    RENEWAL = "renewal", _("Renewal")


class EnrollmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Enrollment(models.Model):
    """One row per (user, course). Unenrolling only clears ``is_active``; the row,
    its mode and its creation date survive, and re-enrolling reactivates it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, verbose_name=_("course"), on_delete=models.CASCADE, related_name="enrollments")
    is_active = models.BooleanField(verbose_name=_("active"), default=True)
    mode = models.CharField(verbose_name=_("mode"), max_length=20, default="audit")
    source = models.CharField(verbose_name=_("source"), max_length=20, choices=Source.choices, default=Source.BATCH, help_text=_("How the learner first came in."))
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    # The period of access (both optional): enrolled means active and within it.
    # The expiry task ends an active enrollment once ``access_until`` has passed.
    access_from = models.DateTimeField(verbose_name=_("access from"), null=True, blank=True, help_text=_("Access starts at; blank for at once."))
    access_until = models.DateTimeField(verbose_name=_("access until"), null=True, blank=True, help_text=_("Access ends at; blank for no end."))
    # The ``access_until`` the expiry reminder was sent for: one reminder per
    # period, and a new period (extended, renewed) gets its own.
    reminded_until = models.DateTimeField(verbose_name=_("reminded until"), null=True, blank=True, editable=False)

    objects = EnrollmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="enrollment_unique_user_course"),
            models.CheckConstraint(
                condition=Q(access_from__isnull=True) | Q(access_until__isnull=True) | Q(access_until__gt=F("access_from")),
                name="enrollment_access_until_after_from",
            ),
        ]
        indexes = [
            # counts per mode on Course info, and the enrolled-learners report
            models.Index(fields=["course", "is_active", "mode"], name="enrollment_course_active_mode"),
            # the chart over time, and the API's newest-first listing per course
            models.Index(fields=["course", "-created", "-id"], name="enrollment_course_created"),
            # the API's newest-first listing over every course
            models.Index(fields=["-created", "-id"], name="enrollment_created"),
            # the roster: a filter by source (with or without a date range), and the sort by last change
            models.Index(fields=["course", "source", "-created", "-id"], name="enrollment_course_source_crtd"),
            models.Index(fields=["course", "-updated", "-id"], name="enrollment_course_updated"),
            # the expiry and reminder scans: only active rows with an end, soonest first
            models.Index(fields=["access_until", "id"], name="enrollment_expiry_due", condition=Q(is_active=True, access_until__isnull=False)),
            # the roster's upcoming and expired filters and Course info's "not started" and "ending soon":
            # rows with a period only, so a course's rows without one cost nothing
            models.Index(fields=["course", "access_from"], name="enrollment_course_upcoming", condition=Q(is_active=True, access_from__isnull=False)),
            models.Index(fields=["course", "access_until"], name="enrollment_course_ends", condition=Q(access_until__isnull=False)),
        ]

    def __str__(self):
        return f"{self.user} in {self.course} ({'active' if self.is_active else 'inactive'})"


class Allowance(models.Model):
    """Permission for an email address (any spelling) to join a course before it
    has an account. ``email_key`` is the address's key
    (``enrollment_site.lib.emails.email_key``: lower-cased, punycode domain), the
    one the database keeps unique per course and accounts are matched on;
    ``email`` keeps what the course team typed."""

    course = models.ForeignKey(Course, verbose_name=_("course"), on_delete=models.CASCADE, related_name="allowances")
    email = models.EmailField(verbose_name=_("email"), max_length=320)
    email_key = models.CharField(verbose_name=_("email key"), max_length=320, editable=False)
    auto_enroll = models.BooleanField(verbose_name=_("enroll on activation"), default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)
    used_at = models.DateTimeField(verbose_name=_("used at"), null=True, blank=True, help_text=_("When the allowance turned into an enrollment."))
    # The period the invitation asked for (all blank: the course's default when
    # the person enrolls). A duration counts from enrolling (on activation, or
    # when they enroll themself), not from the invitation.
    access_from = models.DateTimeField(verbose_name=_("access from"), null=True, blank=True)
    access_until = models.DateTimeField(verbose_name=_("access until"), null=True, blank=True)
    duration_days = models.PositiveIntegerField(verbose_name=_("days of access"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_DAYS)])

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.UniqueConstraint(fields=["course", "email_key"], name="allowance_unique_course_email"),
            models.CheckConstraint(
                condition=Q(access_from__isnull=True) | Q(access_until__isnull=True) | Q(access_until__gt=F("access_from")),
                name="allowance_access_until_after_from",
            ),
            models.CheckConstraint(
                condition=Q(duration_days__isnull=True) | Q(duration_days__gte=1, duration_days__lte=MAX_DURATION_DAYS) & Q(access_until__isnull=True),
                name="allowance_duration_in_range_without_end",
            ),
        ]
        indexes = [
            models.Index(fields=["email_key"], name="allowance_email_key"),
            # the invitations table (allowances not yet used), newest first, keyset pages
            models.Index(fields=["course", "-created", "-id"], name="allowance_course_open", condition=Q(used_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.email} may enroll in {self.course}"

    def save(self, *args, **kwargs):
        self.email_key = email_key(self.email)
        super().save(*args, **kwargs)


class State(models.TextChoices):
    """A person's enrollment state in a course, as the audit trail records it."""

    NONE = "none", _("not enrolled")
    ALLOWED = "allowed", _("allowed: must enroll themself")
    ALLOWED_AUTO = "allowed_auto", _("allowed: will enroll on activation")
    ENROLLED = "enrolled", _("enrolled")
    UNENROLLED = "unenrolled", _("unenrolled")


class Action(models.TextChoices):
    """What a batch does: the keys are contracts (form values, the API's JSON, job rows)."""

    ENROLL = "enroll", _("Enroll")
    UNENROLL = "unenroll", _("Unenroll")


class RosterAction(models.TextChoices):
    """What a learners-table action does to the chosen enrollments: the keys
    are contracts (URLs, form values, job rows)."""

    UNENROLL = "unenroll", _("Unenroll")
    ENROLL_AGAIN = "enroll_again", _("Enroll again")
    CHANGE_MODE = "change_mode", _("Change mode")
    MOVE_COHORT = "move_cohort", _("Move to a cohort")
    EXTEND = "extend", _("Extend access")


class Outcome(models.TextChoices):
    """What a batch did for one identifier. The keys are what job rows store
    (``BatchJob.summary`` and ``results``, an import's summary); the labels are
    what the results table, its summary and the results CSV say."""

    ENROLLED = "enrolled", _("enrolled")
    REACTIVATED = "reactivated", _("enrolled again")
    ALREADY_ENROLLED = "already_enrolled", _("already enrolled")
    ALLOWED_AUTO = "allowed_auto", _("allowed: will enroll on activation")
    ALLOWED = "allowed", _("allowed: must enroll themself")
    ALREADY_ALLOWED = "already_allowed", _("already invited")
    UNENROLLED = "unenrolled", _("unenrolled")
    ALLOWANCE_REMOVED = "allowance_removed", _("allowance removed")
    NOT_ENROLLED = "not_enrolled", _("was not enrolled")
    DUPLICATE = "duplicate", _("named twice")
    INVALID_EMAIL = "invalid_email", _("invalid email")
    NO_SUCH_USER = "no_such_user", _("no such user")

    # Declared here, set below: an enum's body cannot hold a tuple of its own members.
    ERRORS: ClassVar[tuple["Outcome", ...]]
    ORDER: ClassVar[tuple["Outcome", ...]]

    @classmethod
    def label_of(cls, key: str) -> str:
        """The label of an outcome key, in the active language; a key no longer known is shown as it is."""
        try:
            return str(cls(key).label)
        except ValueError:
            return key


Outcome.ERRORS = (Outcome.INVALID_EMAIL, Outcome.NO_SUCH_USER)
# The order of the summary: changes first, then what needed nothing, then problems.
Outcome.ORDER = (
    Outcome.ENROLLED, Outcome.REACTIVATED, Outcome.ALLOWED_AUTO, Outcome.ALLOWED, Outcome.UNENROLLED, Outcome.ALLOWANCE_REMOVED,
    Outcome.ALREADY_ENROLLED, Outcome.ALREADY_ALLOWED, Outcome.NOT_ENROLLED, Outcome.DUPLICATE, Outcome.INVALID_EMAIL, Outcome.NO_SUCH_USER,
)


# What a preview says each outcome would be (the results say what it was: Outcome's labels).
PREVIEW_LABELS: "dict[str, StrOrPromise]" = {
    Outcome.ENROLLED: _("will enroll"),
    Outcome.REACTIVATED: _("will enroll again"),
    Outcome.ALREADY_ENROLLED: _("already enrolled"),
    Outcome.ALLOWED_AUTO: _("will be invited, enrolled on activation"),
    Outcome.ALLOWED: _("will be invited, must enroll themself"),
    Outcome.ALREADY_ALLOWED: _("already invited"),
    Outcome.UNENROLLED: _("will be unenrolled"),
    Outcome.ALLOWANCE_REMOVED: _("invitation withdrawn"),
    Outcome.NOT_ENROLLED: _("not enrolled"),
    Outcome.DUPLICATE: _("named twice"),
    Outcome.INVALID_EMAIL: _("invalid email"),
    Outcome.NO_SUCH_USER: _("no such user"),
}


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit entries are append-only.")

    def delete(self):
        raise PermissionError("Audit entries are append-only.")


class EnrollmentAudit(models.Model):
    """Append-only record of every manual change of enrollment state."""

    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    course = models.ForeignKey(Course, verbose_name=_("course"), on_delete=models.CASCADE, related_name="audit_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL, related_name="enrollment_audit")
    identifier = models.CharField(verbose_name=_("identifier"), max_length=320)
    state_before = models.CharField(verbose_name=_("state before"), max_length=20, choices=State.choices)
    state_after = models.CharField(verbose_name=_("state after"), max_length=20, choices=State.choices)
    source = models.CharField(verbose_name=_("source"), max_length=20, choices=Source.choices)
    reason = models.TextField(verbose_name=_("reason"), blank=True)
    operation_id = models.UUIDField(verbose_name=_("operation"), null=True, blank=True, help_text=_("The batch this change belonged to."))
    # What undo restores besides the state. Set by the learners table's actions
    # (mode and cohort as they were and became; a blank cohort is no cohort);
    # blank in rows written before they existed and by ways in that record only the state.
    mode_before = models.CharField(verbose_name=_("mode before"), max_length=20, blank=True)
    mode_after = models.CharField(verbose_name=_("mode after"), max_length=20, blank=True)
    cohort_before = models.CharField(verbose_name=_("cohort before"), max_length=255, blank=True, help_text=_("The cohort's name; blank for no cohort."))
    cohort_after = models.CharField(verbose_name=_("cohort after"), max_length=255, blank=True, help_text=_("The cohort's name; blank for no cohort."))
    undoes = models.UUIDField(verbose_name=_("undoes"), null=True, blank=True, help_text=_("For an undo: the operation it undid."))
    # The period of access as it was and became, for changes that set, extend,
    # end or renew one (null where there was none, and in rows that record only
    # the state): the history of each period, and what undo restores.
    access_from_before = models.DateTimeField(verbose_name=_("access from before"), null=True, blank=True)
    access_from_after = models.DateTimeField(verbose_name=_("access from after"), null=True, blank=True)
    access_until_before = models.DateTimeField(verbose_name=_("access until before"), null=True, blank=True)
    access_until_after = models.DateTimeField(verbose_name=_("access until after"), null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        # The audit log page reads newest first in keyset pages on (created, id),
        # each filter from an index led by (course, <filter column>) so that a
        # page costs the same at 2,000 and at 2,000,000 rows (bench/audit_log.py).
        indexes = [
            models.Index(fields=["course", "-created", "-id"], name="audit_course_created_id"),
            # one operation's rows, and the counts per operation
            models.Index(fields=["course", "operation_id", "-created", "-id"], name="audit_course_operation"),
            models.Index(fields=["course", "source", "-created", "-id"], name="audit_course_source"),
            models.Index(fields=["course", "actor", "-created", "-id"], name="audit_course_actor"),
            models.Index(fields=["course", "state_after", "-created", "-id"], name="audit_course_state_after"),
            # a learner's story: their rows by account, and by the address or username typed
            models.Index(fields=["user", "course"], name="audit_user_course"),
            models.Index(F("course"), Lower("identifier"), name="audit_course_identifier"),
            # whether an operation was undone already
            models.Index(fields=["course", "undoes"], name="audit_course_undoes", condition=Q(undoes__isnull=False)),
            # An undo reads its operation in every course it changed (an organisation operation spans several),
            # and asks whether it was undone already, in any course.
            models.Index(fields=["operation_id"], name="audit_operation"),
            models.Index(fields=["undoes"], name="audit_undoes", condition=Q(undoes__isnull=False)),
        ]
        verbose_name = _("enrollment audit entry")
        verbose_name_plural = _("enrollment audit entries")

    def __str__(self):
        return f"{self.identifier}: {self.state_before} → {self.state_after} ({self.source})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only.")


class Notification(models.Model):
    """Outbox row: an email written in the same transaction as the change it
    announces, delivered later by a task. ``state`` moves pending → sending →
    sent; a retried task only touches rows that are not sent."""

    class Kind(models.TextChoices):
        ENROLLED = "enrolled", _("Enrolled")
        ALLOWED = "allowed", _("Allowed to enroll")
        UNENROLLED = "unenrolled", _("Unenrolled")
        ALLOWANCE_REMOVED = "allowance_removed", _("Invitation withdrawn")
        # The period of access (``services/expiry.py``, ``services/reminders.py``).
        EXPIRED = "expired", _("Access ended")
        RENEWED = "renewed", _("Access renewed")
        EXPIRING = "expiring", _("Access ending soon")
        EXPIRING_TEAM = "expiring_team", _("Access ending soon (course team summary)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    # Indexed as the leading column of the unique constraint below.
    operation_id = models.UUIDField(verbose_name=_("operation"), default=uuid.uuid4)
    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=Kind.choices)
    recipient = models.EmailField(verbose_name=_("recipient"), max_length=320)
    recipient_key = models.CharField(verbose_name=_("recipient key"), max_length=320, editable=False)
    subject = models.CharField(verbose_name=_("subject"), max_length=255)
    # The text is rendered when the message is sent (from kind, course, name and
    # auto_enroll), so that a batch of 100,000 writes small rows; a body stored
    # here is sent as it is.
    body = models.TextField(verbose_name=_("body"), blank=True)
    name = models.CharField(verbose_name=_("name"), max_length=150, blank=True, help_text=_("How the message greets the recipient."))
    reason = models.TextField(verbose_name=_("reason"), blank=True, help_text=_("The reason the course team gave, quoted in the message."))
    auto_enroll = models.BooleanField(verbose_name=_("enroll on activation"), default=False, help_text=_("For invitations: enrolled on activation, or must enroll themself."))
    # The period the message tells of: an enrollment's, or what an invitation will give (a duration from enrolling).
    access_from = models.DateTimeField(verbose_name=_("access from"), null=True, blank=True)
    access_until = models.DateTimeField(verbose_name=_("access until"), null=True, blank=True)
    duration_days = models.PositiveIntegerField(verbose_name=_("days of access"), null=True, blank=True)
    course = models.ForeignKey(Course, verbose_name=_("course"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)
    claimed_at = models.DateTimeField(verbose_name=_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent at"), null=True, blank=True)
    message_id = models.CharField(verbose_name=_("message id"), max_length=255, blank=True)
    error = models.TextField(verbose_name=_("error"), blank=True)

    class Meta:
        verbose_name = _("email notification")
        verbose_name_plural = _("email notifications")
        constraints = [
            # Per course: one organisation operation (an assignment of several courses) enrolls a person in each.
            models.UniqueConstraint(fields=["operation_id", "course", "recipient_key", "kind"], name="notification_once_per_operation_course"),
        ]
        indexes = [
            # the sender and the sweep look for unsent rows, oldest first
            models.Index(fields=["status", "created"], name="notification_status_created"),
            # a learner's story and the invitations table: the emails a course sent one address
            models.Index(fields=["course", "recipient_key", "-created"], name="notification_course_recipient"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.recipient} ({self.status})"


class BatchJob(ProgressJob):
    """A batch enrollment of the Membership page.

    A batch too large for the request (or uploaded as a file) is run by a
    worker, with progress the page polls and its results as a CSV file; an
    uploaded file is kept in ``upload`` and read by the worker first. A
    smaller batch runs in the request and is recorded here finished, with its
    results in ``results``, so that the page can redirect to them."""

    task_name = "enrollments.tasks.run_batch_job"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="batch_jobs")
    action = models.CharField(max_length=10, choices=Action.choices)
    auto_enroll = models.BooleanField(default=True)
    email_students = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.BATCH)
    identifiers = models.TextField(blank=True, help_text=_("The identifiers, one per line, for a worker to run."))
    ran_in_request = models.BooleanField(default=False, help_text=_("Run within the request, its results kept in ``results``."))
    input_note = models.CharField(max_length=500, blank=True, help_text=_("Where the identifiers came from, e.g. which column of which file."))
    summary = models.JSONField(default=dict, blank=True)
    results = models.JSONField(
        null=True, blank=True,
        help_text=_("A batch run in the request: one {identifier, outcome, username, email, note} per distinct identifier."),
    )
    results_file = models.FileField(upload_to="batch-results/", blank=True)
    upload = models.FileField(upload_to="batch-uploads/", max_length=255, blank=True,
                              help_text=_("An uploaded file of identifiers, as uploaded: the worker reads it (the request never does)."))
    upload_name = models.CharField(max_length=255, blank=True, help_text=_("The uploaded file's name, as the person's computer gave it."))
    upload_rows = models.JSONField(
        null=True, blank=True,
        help_text=_("The uploaded file's rows as the worker read them, kept for the column choice (bounded by the upload limits)."),
    )
    expected_fingerprint = models.CharField(
        max_length=64, blank=True,
        help_text=_("A confirmed preview's fingerprint: the worker applies the whole list at once, and only if it still decides that."),
    )
    period = models.JSONField(
        default=dict, blank=True,
        help_text=_("The period asked for ({access_from, access_until, duration_days}, as given); empty: the course's default."),
    )
    celery_task_id = models.CharField(max_length=255, blank=True)

    class Meta(ProgressJob.Meta):
        verbose_name = _("batch job")
        verbose_name_plural = _("batch jobs")
        indexes = [models.Index(fields=["course", "status", "-created"], name="batchjob_course_status")]

    def __str__(self):
        return f"{self.action} of {self.total} in {self.course} ({self.status})"

    @property
    def summary_items(self) -> list[tuple[str, int]]:
        """The summary's (outcome, count) pairs in a fixed order (a JSON column
        does not keep the order of its keys)."""
        rank = {outcome: index for index, outcome in enumerate(Outcome.ORDER)}
        return sorted(self.summary.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))

    @property
    def awaiting_column(self) -> bool:
        """An uploaded file read by the worker, waiting for the course team to choose its column."""
        # A list of jobs annotates ``has_upload_rows`` instead of loading every job's rows.
        has_rows = self.__dict__.get("has_upload_rows")
        if has_rows is None:
            has_rows = self.upload_rows is not None
        return bool(has_rows) and not self.input_note

    @property
    def made_changes(self) -> bool:
        """Whether the batch changed anyone (and so has an operation to undo)."""
        changes = (Outcome.ENROLLED, Outcome.REACTIVATED, Outcome.ALLOWED_AUTO, Outcome.ALLOWED, Outcome.UNENROLLED, Outcome.ALLOWANCE_REMOVED)
        return any(self.summary.get(outcome) for outcome in changes)

    @property
    def summary_lines(self) -> list[tuple[str, int]]:
        """``summary_items`` as the page says them: (label, count)."""
        return [(Outcome.label_of(key), n) for key, n in self.summary_items]

    @property
    def result_rows(self) -> list[dict]:
        """``results`` as the page and its CSV show them: each outcome by its label."""
        # Each distinct outcome translated once, not once per row (10,000 rows name a handful).
        labels: dict[str, str] = {}
        return [{**row, "outcome": labels.get(row["outcome"]) or labels.setdefault(row["outcome"], Outcome.label_of(row["outcome"]))}
                for row in self.results or []]


class BatchJobChunk(ProgressJobChunk):
    """A committed chunk of a queued batch: its rows of the results file and
    the people it named (``enrollment_site.lib.jobs``)."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="chunks")

    class Meta(ProgressJobChunk.Meta):
        constraints = [models.UniqueConstraint(fields=["job", "start"], name="batchjobchunk_one_per_start")]


class BulkEnrollJob(ProgressJob):
    """A bulk enroll API call too large to answer in the request. The validated
    request is kept in ``payload``; a worker runs it, recording progress here,
    and stores the same JSON answer the API gives synchronously in ``result``."""

    task_name = "enrollments.tasks.run_bulk_enroll_job"

    payload = models.JSONField(default=dict, help_text=_("The validated request: courses, cohorts, identifiers and options."))
    done = models.PositiveIntegerField(default=0, help_text=_("Identifiers processed, counted over all courses."))
    result = models.JSONField(null=True, blank=True, help_text=_("The API answer, once the job succeeded."))

    class Meta(ProgressJob.Meta):
        verbose_name = _("bulk enroll job")
        verbose_name_plural = _("bulk enroll jobs")
        indexes = [
            # the stale-job sweep looks for running jobs without a recent heartbeat
            models.Index(fields=["status", "heartbeat_at"], name="bulkenrolljob_status_heartbeat"),
        ]

    def __str__(self):
        return f"bulk {self.payload.get('action', '')} of {self.total} ({self.status})"


class BulkEnrollJobChunk(ProgressJobChunk):
    """A committed chunk of an API bulk job: its part of the answer."""

    job = models.ForeignKey(BulkEnrollJob, on_delete=models.CASCADE, related_name="chunks")

    class Meta(ProgressJobChunk.Meta):
        constraints = [models.UniqueConstraint(fields=["job", "start"], name="bulkenrolljobchunk_one_per_start")]


class RosterJob(ProgressJob):
    """A learners-table action over more rows than a request handles
    (``ENROLLMENT_SYNC_LIMIT``): the chosen enrollment ids are kept here and a
    worker applies the action a chunk per transaction, each chunk committing
    its changes together with ``done`` and ``summary``, so that a redelivered
    task resumes after the last committed chunk and counts every row once."""

    task_name = "enrollments.tasks.run_roster_job"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="roster_jobs")
    action = models.CharField(max_length=20, choices=RosterAction.choices)
    mode = models.CharField(max_length=20, blank=True, help_text=_("The mode to change to (change_mode)."))
    extend_days = models.PositiveIntegerField(null=True, blank=True, help_text=_("extend: the days to add to each end (or to now, once ended)."))
    extend_until = models.DateTimeField(null=True, blank=True, help_text=_("extend: the new end of access."))
    # The target of move_cohort: null with a blank name means "no cohort"; null
    # with a name means the cohort was deleted before the job ran (it fails).
    cohort = models.ForeignKey("courses.Cohort", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cohort_name = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    email_students = models.BooleanField(default=True)
    operation_id = models.UUIDField(default=uuid.uuid4, help_text=_("The operation its audit entries and emails belong to."))
    enrollment_ids = models.JSONField(default=list, help_text=_("The chosen enrollment ids, sorted."))
    summary = models.JSONField(default=dict, blank=True, help_text=_("changed, unchanged and refused counts so far."))
    refused = models.JSONField(default=list, blank=True, help_text=_("Why rows were left alone (the first few)."))
    celery_task_id = models.CharField(max_length=255, blank=True)

    class Meta(ProgressJob.Meta):
        verbose_name = _("learners table job")
        verbose_name_plural = _("learners table jobs")
        indexes = [models.Index(fields=["course", "status", "-created"], name="rosterjob_course_status")]

    def __str__(self):
        return f"{self.action} of {self.total} in {self.course} ({self.status})"


class UndoJob(ProgressJob):
    """An undo of an operation over more people than a request handles
    (``ENROLLMENT_SYNC_LIMIT``): a worker restores a chunk of people per
    transaction, each chunk deciding "changed since" under its own locks and
    committing its writes with the job's position and ``summary``, so a
    resumed job never restores anyone twice."""

    task_name = "enrollments.tasks.run_undo_job"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="undo_jobs")
    operation_id = models.UUIDField(help_text=_("The operation undone."))
    undo_operation_id = models.UUIDField(default=uuid.uuid4, help_text=_("The undo's own operation: its audit rows and emails."))
    email_students = models.BooleanField(default=False)
    summary = models.JSONField(default=dict, blank=True, help_text=_("restored, unchanged and left_alone counts so far."))
    left_alone = models.JSONField(default=list, blank=True, help_text=_("Who was left alone and why (the first few)."))

    class Meta(ProgressJob.Meta):
        verbose_name = _("undo job")
        verbose_name_plural = _("undo jobs")
        indexes = [models.Index(fields=["course", "status", "-created"], name="undojob_course_status")]

    def __str__(self):
        return f"undo of {self.operation_id} in {self.course} ({self.status})"

    @property
    def left_alone_shown(self) -> list[tuple[str, str]]:
        """``left_alone`` (each "identifier: why", in English) as (identifier, why in the reader's language) pairs."""
        pairs = [note.partition(": ") for note in self.left_alone]
        return [(identifier, shown(why)) if why else ("", shown(identifier)) for identifier, _colon, why in pairs]


class MembershipPreview(ProgressJob):
    """A Membership batch's preview, kept until it is confirmed (once) or swept.

    A list the request can handle is previewed there and recorded finished,
    holding what the page showed (``shown``, identifier and outcome pairs);
    the page makes the preview again from the course on each view. A larger
    list is previewed by a worker in chunks, with progress; its rows are kept
    in ``MembershipPreviewRow`` and the page shows them as they were found.
    Either way ``fingerprint`` (``services.batch_preview.batch_fingerprint``)
    is what its Confirm must still find, and the Confirm claims the preview
    by setting ``confirmed_at`` with a conditional UPDATE, so a preview is
    confirmed once however many Confirms arrive together. Previews not
    confirmed within ``PREVIEW_KEEP_HOURS`` are swept (``previews_sweep``)."""

    task_name = "enrollments.tasks.run_preview_job"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="membership_previews")
    action = models.CharField(max_length=10, choices=Action.choices)
    auto_enroll = models.BooleanField(default=True)
    email_students = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    identifiers = models.TextField(blank=True, help_text=_("A large list's distinct identifiers, one per line, for the worker and the batch."))
    input_note = models.CharField(max_length=500, blank=True, help_text=_("Where the identifiers came from, e.g. which column of which file."))
    upload = models.ForeignKey(BatchJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               help_text=_("The read upload the identifiers came from: dropped once the preview is confirmed."))
    in_request = models.BooleanField(default=False, help_text=_("Previewed in the request (made again on each view) rather than by a worker."))
    shown = models.JSONField(default=list, blank=True, help_text=_("A list previewed in the request: [identifier, outcome] as last shown."))
    fingerprint = models.CharField(max_length=64, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text=_("Outcome counts (a worker's, so far)."))
    emails = models.PositiveIntegerField(default=0, help_text=_("How many emails the batch would send."))
    team_unenrolled = models.JSONField(default=list, blank=True, help_text=_("Usernames of course team members it would unenroll."))
    over_cap = models.JSONField(null=True, blank=True, help_text=_("[cap, active enrollments after] when it would pass the course's cap."))
    period = models.JSONField(
        default=dict, blank=True,
        help_text=_("The period asked for ({access_from, access_until, duration_days}, as given); empty: the course's default."),
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch_job = models.ForeignKey(BatchJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="previews",
                                  help_text=_("The batch its Confirm ran or queued."))
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals",
                                 help_text=_("The preview this one renews: the course had changed when that one's batch ran."))

    class Meta(ProgressJob.Meta):
        verbose_name = _("membership preview")
        verbose_name_plural = _("membership previews")
        indexes = [
            # the sweep: unconfirmed previews by age
            models.Index(fields=["created"], name="preview_unconfirmed_created", condition=Q(confirmed_at__isnull=True)),
        ]

    def __str__(self):
        return f"preview of {self.action} of {self.total} in {self.course} ({self.status})"

    @property
    def changes(self) -> int:
        changes = (Outcome.ENROLLED, Outcome.REACTIVATED, Outcome.ALLOWED_AUTO, Outcome.ALLOWED, Outcome.UNENROLLED, Outcome.ALLOWANCE_REMOVED)
        return sum(self.summary.get(outcome, 0) for outcome in changes)


class MembershipPreviewRow(models.Model):
    """One identifier of a large preview, as the worker found it."""

    preview = models.ForeignKey(MembershipPreview, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField()
    identifier = models.CharField(max_length=320)
    outcome = models.CharField(max_length=30)
    username = models.CharField(max_length=150, blank=True)
    email = models.CharField(max_length=320, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["preview", "position"], name="previewrow_one_per_position")]
        # the first rows of each outcome, and one outcome's rows in pages
        indexes = [models.Index(fields=["preview", "outcome", "position"], name="previewrow_outcome")]

    @property
    def is_error(self) -> bool:
        return self.outcome in Outcome.ERRORS


class EnrollmentCount(models.Model):
    """How many of a course's enrollments are in a mode, active and not: kept
    by database triggers (``enrollments/counters.py``) in the transaction of
    every change to ``Enrollment``, whatever writes it. Pages and the cap
    check read these few rows instead of counting a course's enrollments."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=20)
    active = models.BigIntegerField(default=0)
    inactive = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "mode"], name="enrollmentcount_unique_course_mode")]

    def __str__(self):
        return f"{self.course_id}/{self.mode}: {self.active} active, {self.inactive} inactive"


class EnrollmentDayCount(models.Model):
    """A course's enrollments by the day (in the site's time zone) they were
    first made: how many (``new``, those who left since included) and how many
    of them are active today (``active``); and how many enrollments ended that
    day (``ended``: went from active to inactive, whenever they were made).
    Kept by the same triggers; the Course info chart reads these rows, one per
    day with anything to show."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    new = models.BigIntegerField(default=0)
    active = models.BigIntegerField(default=0)
    # A column here rather than a table of its own: the same key (course, day),
    # one query for the chart, and one upsert per statement in (course, day)
    # order, so concurrent writers still lock the rows in one order. An event
    # count, unlike the two above (see enrollments/counters.py); the database
    # default lets the triggers' inserts that do not end anything leave it out.
    ended = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "day"], name="enrollmentdaycount_unique_course_day")]

    def __str__(self):
        return f"{self.course_id} {self.day}: {self.new} new, {self.active} active, {self.ended} ended"
