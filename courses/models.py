import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.utils.translation import gettext_lazy as _

COURSE_KEY_RE = re.compile(r"^course-v1:(?P<org>[A-Za-z0-9_.~-]+)\+(?P<number>[A-Za-z0-9_.~-]+)\+(?P<run>[A-Za-z0-9_.~-]+)$")
# The longest period of access a course, a batch, a code or a rule may give: ten years.
MAX_DURATION_DAYS = 3650
COURSE_KEY_PATTERN = r"course-v1:[A-Za-z0-9_.~-]+\+[A-Za-z0-9_.~-]+\+[A-Za-z0-9_.~-]+"


def validate_course_key(value: str) -> None:
    if not COURSE_KEY_RE.match(value or ""):
        raise ValidationError(
            gettext("Enter a course key of the form course-v1:ORG+NUMBER+RUN "
                    "(letters, digits, '.', '_', '-' or '~' in each part)."),
            code="invalid_course_key",
        )


class Mode(models.TextChoices):
    AUDIT = "audit", _("Audit")
    HONOR = "honor", _("Honor")
    VERIFIED = "verified", _("Verified")
    PROFESSIONAL = "professional", _("Professional")


def validate_modes(value: str) -> None:
    modes = [m.strip() for m in (value or "").split(",") if m.strip()]
    if not modes:
        raise ValidationError(gettext("A course offers at least one mode."))
    unknown = [m for m in modes if m not in Mode.values]
    if unknown:
        raise ValidationError(
            # Two sentences, each marked: the second is the same whatever the count.
            ngettext("Unknown mode: %(modes)s.", "Unknown modes: %(modes)s.", len(unknown)) % {"modes": ", ".join(unknown)}
            + " " + gettext("Choose from %(modes)s.") % {"modes": ", ".join(Mode.values)}
        )
    if len(set(modes)) != len(modes):
        raise ValidationError(gettext("Each mode may be listed once."))


class Course(models.Model):
    key = models.CharField(_("course key"), max_length=255, unique=True, validators=[validate_course_key])
    display_name = models.CharField(_("display name"), max_length=255)
    org = models.CharField(_("organisation"), max_length=100, editable=False, db_index=True)
    description = models.TextField(_("description"), blank=True)
    start = models.DateTimeField(_("start"), null=True, blank=True)
    end = models.DateTimeField(_("end"), null=True, blank=True)
    enrollment_start = models.DateTimeField(_("enrollment start"), null=True, blank=True)
    enrollment_end = models.DateTimeField(_("enrollment end"), null=True, blank=True)
    modes = models.CharField(
        _("modes"), max_length=100,
        default="audit",
        validators=[validate_modes],
        help_text=_("Comma-separated modes the course offers, default mode first (audit, honor, verified, professional)."),
    )
    self_enrollment = models.BooleanField(_("self-enrollment"), default=True, help_text=_("Learners may enroll themselves."))
    enrollment_key = models.CharField(_("enrollment key"), max_length=100, blank=True, help_text=_("If set, learners must type it to self-enroll."))
    max_enrollments = models.PositiveIntegerField(_("cap on enrollments"), null=True, blank=True, help_text=_("Cap on active enrollments; blank for none."))
    invitation_only = models.BooleanField(_("invitation only"), default=False, help_text=_("Only invited people (with an allowance) may self-enroll."))
    # Enrollment periods: what a way in gives when it sets no period of its own.
    default_duration_days = models.PositiveIntegerField(
        _("default days of access"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_DAYS)],
        help_text=_("Days of access from enrolling; blank for no limit."),
    )
    default_access_until = models.DateTimeField(_("default end of access"), null=True, blank=True, help_text=_("Access ends at this time for everyone; blank for no end."))
    expiry_reminder_days = models.PositiveSmallIntegerField(
        _("reminder days"), null=True, blank=True, default=7, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Days before access ends to remind the learner; blank for no reminder."),
    )
    expiry_reminder_team = models.BooleanField(_("summary to the course team"), default=False, help_text=_("Also tell the course team, in one summary email, whose access is ending."))
    # The language of emails to addresses with no account (an invitation to
    # register); a person with an account gets their own language.
    language = models.CharField(
        gettext_lazy("language"), max_length=10, blank=True, choices=settings.LANGUAGES,
        help_text=gettext_lazy("The language of emails to people who have no account yet; blank for the site's language."),
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by"))
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["key"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(start__isnull=True) | models.Q(end__gte=models.F("start")),
                name="course_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(enrollment_end__isnull=True)
                | models.Q(enrollment_start__isnull=True)
                | models.Q(enrollment_end__gte=models.F("enrollment_start")),
                name="course_enrollment_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(default_duration_days__isnull=True) | models.Q(default_duration_days__gte=1, default_duration_days__lte=MAX_DURATION_DAYS),
                name="course_default_duration_in_range",
            ),
        ]

    def __str__(self):
        return self.key

    def save(self, *args, **kwargs):
        # org is a pure function of the key, kept as a column for filtering.
        match = COURSE_KEY_RE.match(self.key or "")
        if match:
            self.org = match["org"]
        super().save(*args, **kwargs)

    def clean(self):
        if self.start and self.end and self.end < self.start:
            raise ValidationError({"end": gettext("The course cannot end before it starts.")})
        if self.enrollment_start and self.enrollment_end and self.enrollment_end < self.enrollment_start:
            raise ValidationError({"enrollment_end": gettext("Enrollment cannot close before it opens.")})

    @property
    def number(self) -> str:
        match = COURSE_KEY_RE.match(self.key)
        return match["number"] if match else ""

    @property
    def run(self) -> str:
        match = COURSE_KEY_RE.match(self.key)
        return match["run"] if match else ""

    @property
    def mode_list(self) -> list[str]:
        return [m.strip() for m in self.modes.split(",") if m.strip()]

    @property
    def default_mode(self) -> str:
        modes = self.mode_list
        return modes[0] if modes else Mode.AUDIT

    def enrollment_is_open(self, at=None) -> bool:
        at = at or timezone.now()
        if self.enrollment_start and at < self.enrollment_start:
            return False
        if self.enrollment_end and at > self.enrollment_end:
            return False
        return True


class Cohort(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="cohorts", verbose_name=_("course"))
    name = models.CharField(_("name"), max_length=255)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["course", "name"]
        verbose_name = _("cohort")
        verbose_name_plural = _("cohorts")
        constraints = [models.UniqueConstraint(fields=["course", "name"], name="cohort_unique_name_per_course")]

    def __str__(self):
        return f"{self.name} ({self.course.key})"


class CohortMembership(models.Model):
    """A learner is in at most one cohort of a course (as in Open edX)."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("cohort"))
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+", verbose_name=_("course"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cohort_memberships", verbose_name=_("user"))
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("cohort membership")
        verbose_name_plural = _("cohort memberships")
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="cohort_membership_one_per_course")]

    def __str__(self):
        return f"{self.user} in {self.cohort}"


class CourseRole(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        STAFF = "staff", _("Staff")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="roles", verbose_name=_("course"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_roles", verbose_name=_("user"))
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["course", "role", "user__username"]
        verbose_name = _("course team member")
        verbose_name_plural = _("course team")
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="course_role_one_per_user_course"),
            models.CheckConstraint(condition=models.Q(role__in=["admin", "staff"]), name="course_role_valid"),
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.course}"


class CourseSettingsChangeQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The course settings history is append-only.")

    def delete(self):
        raise PermissionError("The course settings history is append-only.")


class CourseSettingsChange(models.Model):
    """Append-only history of a course's own settings and cohorts, as the
    settings page shows it: who changed what, when, and each field's value
    before and after (``changes``: field → [before, after], the enrollment key
    masked); cohort changes carry their summary in ``summary``."""

    class Kind(models.TextChoices):
        SETTINGS = "settings", _("Settings changed")
        COHORT_CREATED = "cohort_created", _("Cohort created")
        COHORT_RENAMED = "cohort_renamed", _("Cohort renamed")
        COHORT_DELETED = "cohort_deleted", _("Cohort deleted")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="settings_changes", verbose_name=_("course"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("actor"))
    created = models.DateTimeField(_("created"), default=timezone.now)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.SETTINGS)
    changes = models.JSONField(default=dict, blank=True)
    summary = models.CharField(_("summary"), max_length=500, blank=True)

    objects = CourseSettingsChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("settings change")
        verbose_name_plural = _("settings changes")
        # The settings page shows a course's newest changes first.
        indexes = [models.Index(fields=["course", "-created", "-id"], name="settingschange_course_created")]

    def __str__(self):
        return f"{self.get_kind_display()} in {self.course} by {self.actor}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The course settings history is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The course settings history is append-only.")
