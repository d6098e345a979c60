"""Enrollment codes: generation batches, the codes themselves, and redemptions.

A code's status is derived, never stored: Deactivated, else Expired, else Used
(uses reached the limit), else Active. ``EnrollmentCode.status`` computes it for
one row; ``EnrollmentCodeQuerySet.with_status()`` and ``.filter_status()`` do the
same in SQL for tables, filters and exports.

An expiry is a date, ``expires_on``: the last day a code works, in the time
zone chosen when generating it (``CodeBatch.time_zone``; codes made before
there was a choice have the site's ``TIME_ZONE``). It works until the end of
that day there and is Expired from the next midnight there: ``expires_at``,
that instant, is what status checks compare with now, so a code's validity
does not depend on the zone of whoever looks. Pages and exports show the date
the course team chose with its zone.
"""

import datetime
import zoneinfo

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from courses.models import MAX_DURATION_DAYS, Course
from organisations.models import Group


def _now():
    return timezone.now()


class Status(models.TextChoices):
    ACTIVE = "active", _("Active")
    USED = "used", _("Used")
    EXPIRED = "expired", _("Expired")
    DEACTIVATED = "deactivated", _("Deactivated")


EXPIRES_ON_HELP = _("The last day it works, until the end of that day in the batch's time zone; blank for never.")


def site_time_zone() -> str:
    """The site's time zone name (TIME_ZONE): the zone of batches made before one was chosen."""
    return settings.TIME_ZONE


def zone_today(time_zone: str, now: datetime.datetime | None = None) -> datetime.date:
    """Today in ``time_zone``, whatever time zone is active."""
    return timezone.localdate(now or _now(), zoneinfo.ZoneInfo(time_zone))


def end_of_day(day: datetime.date, time_zone: str) -> datetime.datetime:
    """The first instant after ``day`` in ``time_zone`` (its next midnight there, or
    the first instant of the next day where a DST change skips midnight): when a code
    that expires on ``day`` stops working."""
    next_day = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=zoneinfo.ZoneInfo(time_zone))
    # A wall time a DST gap skips is not an instant; going through UTC settles it
    # on the instant the clocks jumped past.
    return next_day.astimezone(datetime.UTC)


class CodeBatch(models.Model):
    """One generation: who made it, when, what the codes unlock and with which options."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    courses: "models.ManyToManyField[Course, CodeBatchCourse]" = models.ManyToManyField(
        Course, blank=True, related_name="code_batches", through="CodeBatchCourse", verbose_name=_("courses"),
    )
    groups: "models.ManyToManyField[Group, CodeBatchGroup]" = models.ManyToManyField(
        Group, blank=True, related_name="code_batches", through="CodeBatchGroup", verbose_name=_("groups"),
    )
    count = models.PositiveIntegerField(_("number of codes"))
    prefix = models.CharField(_("prefix"), max_length=20, blank=True)
    expires_on = models.DateField(_("expires on"), null=True, blank=True, help_text=EXPIRES_ON_HELP)
    # The zone whose end of ``expires_on`` ends the codes; the default (the site's
    # zone) is also what batches made before the choice existed were given.
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=site_time_zone, help_text=_("The codes expire at the end of their expiry day in this time zone."),
    )
    max_uses = models.PositiveIntegerField(_("max uses"), null=True, blank=True, help_text=_("Per code; blank for unlimited."))
    # Its creator's word that these codes may enroll past a course's cap
    # (max_enrollments); without it a full course refuses the redemption.
    may_exceed_cap = models.BooleanField(
        _("may exceed the cap"), default=False, help_text=_("Codes of this batch enroll even when a course is full."),
    )
    # Access from redeeming, e.g. 365 for "a year of access"; blank: the course's default period.
    duration_days = models.PositiveIntegerField(
        _("days of access"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_DAYS)],
        help_text=_("Days of access from redeeming; blank for the course's default."),
    )

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("code batch")
        verbose_name_plural = _("code batches")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_days__isnull=True) | models.Q(duration_days__gte=1, duration_days__lte=MAX_DURATION_DAYS),
                name="codebatch_duration_in_range",
            ),
        ]
        indexes = [
            # The platform-wide Batch filter: the newest batches, read in order and no further.
            models.Index(fields=["-created", "-id"], name="codebatch_newest"),
        ]

    def __str__(self):
        codes = ngettext("%(n)s code", "%(n)s codes", self.count) % {"n": self.count}
        label = gettext("Batch %(id)s · %(created)s · %(codes)s") % {"id": self.pk, "created": f"{self.created:%Y-%m-%d %H:%M}", "codes": codes}
        return f"{label} · {self.prefix}" if self.prefix else label


class CodeBatchTarget(models.Model):
    """A course or group a batch unlocks (a row of ``CodeBatch.courses`` or
    ``.groups``), with a copy of its batch's ``created``, written with the link
    (``through_defaults``) and never changed, as the batch's is not: so that a
    course's or group's newest batches are one index range read in order,
    ``LIMIT`` rows and no more, however many batches it has (an order on the
    batch table's own column would read and sort all of them first)."""

    # No index of its own: the unique (codebatch, target) index leads with it.
    codebatch = models.ForeignKey(CodeBatch, on_delete=models.CASCADE, related_name="+", db_index=False)
    created = models.DateTimeField()

    class Meta:
        abstract = True


class CodeBatchCourse(CodeBatchTarget):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+", db_index=False)  # led by the index below

    class Meta:
        db_table = "codes_codebatch_courses"  # the table the link has always had
        unique_together = [("codebatch", "course")]
        indexes = [models.Index(fields=["course", "-created", "-codebatch"], name="codebatch_course_newest")]


class CodeBatchGroup(CodeBatchTarget):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+", db_index=False)  # led by the index below

    class Meta:
        db_table = "codes_codebatch_groups"
        unique_together = [("codebatch", "group")]
        indexes = [models.Index(fields=["group", "-created", "-codebatch"], name="codebatch_group_newest")]


class EnrollmentCodeQuerySet(models.QuerySet["EnrollmentCode"]):
    def with_status(self, now=None):
        """Annotate ``status_value`` with the derived status, in the same order of precedence as ``status``."""
        now = now or _now()
        return self.annotate(
            status_value=Case(
                When(deactivated_at__isnull=False, then=Value(Status.DEACTIVATED)),
                When(expires_at__lte=now, then=Value(Status.EXPIRED)),
                When(max_uses__isnull=False, uses__gte=F("max_uses"), then=Value(Status.USED)),
                default=Value(Status.ACTIVE),
                output_field=models.CharField(),
            )
        )

    def filter_status(self, status: str, now=None):
        """Codes whose derived status is ``status`` (plain WHERE clauses, index friendly)."""
        now = now or _now()
        live = Q(deactivated_at__isnull=True)
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        used_up = Q(max_uses__isnull=False, uses__gte=F("max_uses"))
        if status == Status.DEACTIVATED:
            return self.filter(deactivated_at__isnull=False)
        if status == Status.EXPIRED:
            return self.filter(live, expires_at__lte=now)
        if status == Status.USED:
            return self.filter(live & not_expired & used_up)
        if status == Status.ACTIVE:
            return self.filter(live & not_expired).exclude(used_up)
        raise ValueError(f"Unknown status {status!r}")


class EnrollmentCode(models.Model):
    """A code learners redeem. ``code`` is what people see (PREFIX-XXXX-XXXX-XXXX);
    ``normalized`` is the comparison key (NFKC, upper case, no spaces or dashes),
    unique across the site, which redemption looks up and locks."""

    code = models.CharField(_("code"), max_length=40)
    normalized = models.CharField(_("normalized code"), max_length=40, unique=True, editable=False)
    # Indexed by code_batch_id below (batch, -id), which also serves the plain FK lookups.
    batch = models.ForeignKey(CodeBatch, on_delete=models.PROTECT, related_name="codes", db_index=False, verbose_name=_("batch"))
    max_uses = models.PositiveIntegerField(_("max uses"), null=True, blank=True, help_text=_("Blank for unlimited."))
    uses = models.PositiveIntegerField(_("uses"), default=0)
    expires_on = models.DateField(_("expires on"), null=True, blank=True, help_text=EXPIRES_ON_HELP)
    # The end of ``expires_on`` in the batch's time zone (``end_of_day``): the
    # status compares it with now, the same instant in every zone and in SQL.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, editable=False)
    deactivated_at = models.DateTimeField(_("deactivated at"), null=True, blank=True)
    deactivated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("deactivated by"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = EnrollmentCodeQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("enrollment code")
        verbose_name_plural = _("enrollment codes")
        constraints = [
            # An expiry day always has its instant, and only then.
            models.CheckConstraint(condition=Q(expires_on__isnull=True, expires_at__isnull=True) | Q(expires_on__isnull=False, expires_at__isnull=False), name="code_expiry_day_and_instant"),
            # The backstop behind the row lock: a code is never used past its limit.
            models.CheckConstraint(condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")), name="code_uses_within_limit"),
            models.CheckConstraint(condition=Q(max_uses__isnull=True) | Q(max_uses__gte=1), name="code_max_uses_positive"),
        ]
        indexes = [
            # the codes table of one batch, newest first
            models.Index(fields=["batch", "-id"], name="code_batch_id"),
        ]

    def __str__(self):
        return self.code

    def status_at(self, now) -> str:
        if self.deactivated_at is not None:
            return Status.DEACTIVATED
        if self.expires_at is not None and self.expires_at <= now:
            return Status.EXPIRED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return Status.USED
        return Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at(_now())

    def get_status_display(self) -> str:
        return str(Status(getattr(self, "status_value", None) or self.status).label)

    @property
    def uses_left(self) -> int | None:
        return None if self.max_uses is None else max(self.max_uses - self.uses, 0)


class Redemption(models.Model):
    """A learner redeemed a code. One per (code, user), enforced by the database."""

    code = models.ForeignKey(EnrollmentCode, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("code"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="code_redemptions", verbose_name=_("user"))
    created = models.DateTimeField(_("redeemed"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        constraints = [models.UniqueConstraint(fields=["code", "user"], name="redemption_once_per_user_and_code")]
        indexes = [
            # a code's redemptions newest first, in keyset pages: one range scan from the cursor, however many uses
            models.Index(fields=["code", "-created", "-id"], name="redemption_code_created"),
        ]

    def __str__(self):
        return gettext("%(user)s redeemed %(code)s") % {"user": self.user, "code": self.code}
