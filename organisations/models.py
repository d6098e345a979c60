import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from courses.models import MAX_DURATION_DAYS, Course
from enrollment_site.lib.jobs import ProgressJob, ProgressJobChunk

if TYPE_CHECKING:
    from accounts.models import User


# "Re-enroll every N months": from one month to ten years.
MAX_RECUR_MONTHS = 120


class Terms(models.Model):
    """The period of access an assignment or a rule gives the enrollments it
    makes, and whether they recur (the expiry run renews them instead of
    ending them: ``organisations.selectors.terms``)."""

    duration_days = models.PositiveIntegerField(verbose_name=_("days of access"),
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_DAYS)],
        help_text=_("Days of access from enrolling; blank for the course's default."),
    )
    recur_months = models.PositiveSmallIntegerField(verbose_name=_("re-enroll every N months"),
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_RECUR_MONTHS)],
        help_text=_("Re-enroll every N months: when a period ends a new one of N months begins; blank for no renewal."),
    )

    class Meta:
        abstract = True

    @classmethod
    def terms_constraints(cls, prefix: str) -> list[models.BaseConstraint]:
        return [
            models.CheckConstraint(
                condition=models.Q(duration_days__isnull=True) | models.Q(duration_days__gte=1, duration_days__lte=MAX_DURATION_DAYS),
                name=f"{prefix}_duration_days_range",
            ),
            models.CheckConstraint(
                condition=models.Q(recur_months__isnull=True) | models.Q(recur_months__gte=1, recur_months__lte=MAX_RECUR_MONTHS),
                name=f"{prefix}_recur_months_range",
            ),
        ]


class Group(models.Model):
    """A named set of learners with leaders, linked to courses: joining the
    group enrolls the member in every linked course."""

    name = models.CharField(verbose_name=_("name"), max_length=255)
    description = models.TextField(verbose_name=_("description"), blank=True)
    leaders = models.ManyToManyField(settings.AUTH_USER_MODEL, verbose_name=_("leaders"), blank=True, related_name="led_groups")
    members: "models.ManyToManyField[User, GroupMembership]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), through="GroupMembership", blank=True, related_name="member_groups"
    )
    courses = models.ManyToManyField(Course, verbose_name=_("courses"), blank=True, related_name="learner_groups")
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("learner group")
        verbose_name_plural = _("learner groups")

    def __str__(self):
        return self.name


class GroupMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="group_memberships")
    group = models.ForeignKey(Group, verbose_name=_("group"), on_delete=models.CASCADE, related_name="memberships")
    joined = models.DateTimeField(verbose_name=_("joined"), default=timezone.now)
    source = models.CharField(verbose_name=_("source"), max_length=20, blank=True, help_text=_("How the member joined (code, admin, ...)."))

    class Meta:
        verbose_name = _("group membership")
        verbose_name_plural = _("group memberships")
        ordering = ["group", "-joined"]
        constraints = [models.UniqueConstraint(fields=["user", "group"], name="group_membership_unique_user_group")]
        indexes = [models.Index(fields=["group", "-joined"], name="group_membership_group_joined")]

    def __str__(self):
        return f"{self.user} in {self.group}"


class UnitKind(models.TextChoices):
    """The kinds of organisation unit. ``group`` is the learner Group above: it
    has its own model but is assigned courses and named by rules like the rest."""

    COMPANY = "company", _("Company")
    DEPARTMENT = "department", _("Department")
    TEAM = "team", _("Team")
    FUNCTION = "function", pgettext_lazy("organisation unit", "Function")
    QUALIFICATION = "qualification", _("Qualification")
    GROUP = "group", _("Group")


UNIT_KIND_PLURALS = {
    UnitKind.COMPANY: _("Companies"), UnitKind.DEPARTMENT: _("Departments"), UnitKind.TEAM: _("Teams"),
    UnitKind.FUNCTION: pgettext_lazy("organisation unit", "Functions"), UnitKind.QUALIFICATION: _("Qualifications"), UnitKind.GROUP: _("Groups"),
}

# Kinds stored as OrgUnit rows (a Group is its own model).
ORG_UNIT_KINDS = [k for k in UnitKind if k != UnitKind.GROUP]
# A user belongs to at most one of these (their Placement) ...
SINGLE_KINDS = (UnitKind.COMPANY, UnitKind.DEPARTMENT)
# ... and to any number of these (UnitMembership rows).
MULTI_KINDS = (UnitKind.TEAM, UnitKind.FUNCTION, UnitKind.QUALIFICATION)


class OrgUnit(models.Model):
    """A company, department, team, function or qualification. A qualification
    is a named bundle of courses: the courses assigned to it."""

    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=[(k.value, k.label) for k in ORG_UNIT_KINDS])
    name = models.CharField(verbose_name=_("name"), max_length=255)
    description = models.TextField(verbose_name=_("description"), blank=True)
    members: "models.ManyToManyField[User, UnitMembership]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), through="UnitMembership", blank=True, related_name="org_units"
    )
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["kind", "name", "id"]
        verbose_name = _("organisation unit")
        verbose_name_plural = _("organisation units")
        constraints = [
            # Import files and rules name units by (kind, name), whatever the case.
            models.UniqueConstraint("kind", models.functions.Lower("name"), name="orgunit_unique_kind_name_ci"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name}"


class UnitMembership(models.Model):
    """Membership of a team, function or qualification (a person's company
    and department are their Placement: at most one each)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="unit_memberships")
    unit = models.ForeignKey(OrgUnit, verbose_name=_("unit"), on_delete=models.CASCADE, related_name="memberships")
    joined = models.DateTimeField(verbose_name=_("joined"), default=timezone.now)
    source = models.CharField(verbose_name=_("source"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("unit membership")
        verbose_name_plural = _("unit memberships")
        ordering = ["unit", "-joined"]
        constraints = [models.UniqueConstraint(fields=["unit", "user"], name="unit_membership_unique_unit_user")]
        # the unique constraint indexes (unit, user); rules look members up by user too
        indexes = [models.Index(fields=["user"], name="unit_membership_user")]

    def __str__(self):
        return f"{self.user} in {self.unit}"


class Placement(models.Model):
    """Where a person sits: their company and their department, at most one of
    each, either unset. No row is the same as a row with both unset.

    One row per person rather than company and department rows in
    UnitMembership: "at most one each" is the shape of the table instead of a
    partial unique constraint plus a copy of the unit's kind that nothing in
    the database keeps equal to it; a move is one upsert of a column, and the
    unit it replaces ("moved from <old department>") is that column's value
    read under the person's lock; rules match on one indexed column, as they
    did when these were foreign keys on the user. Deleting a unit empties the
    column (SET_NULL), as it did then."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="placement")
    company = models.ForeignKey(
        OrgUnit, verbose_name=_("company"), null=True, blank=True, on_delete=models.SET_NULL, related_name="company_placements",
        limit_choices_to={"kind": UnitKind.COMPANY},
    )
    department = models.ForeignKey(
        OrgUnit, verbose_name=_("department"), null=True, blank=True, on_delete=models.SET_NULL, related_name="department_placements",
        limit_choices_to={"kind": UnitKind.DEPARTMENT},
    )

    class Meta:
        verbose_name = _("placement")
        verbose_name_plural = _("placements")

    def __str__(self):
        return f"{self.user}: {self.company or '-'}, {self.department or '-'}"


class Assignment(Terms):
    """A course or a qualification linked to a unit or a group: every member,
    present and future, is enrolled in the course (or each of the
    qualification's courses). A course linked to a qualification unit is part
    of that qualification's bundle."""

    unit = models.ForeignKey(OrgUnit, verbose_name=_("unit"), null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    group = models.ForeignKey(Group, verbose_name=_("group"), null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    course = models.ForeignKey(Course, verbose_name=_("course"), null=True, blank=True, on_delete=models.CASCADE, related_name="unit_assignments")
    qualification = models.ForeignKey(
        OrgUnit, verbose_name=_("qualification"), null=True, blank=True, on_delete=models.CASCADE, related_name="assigned_to",
        limit_choices_to={"kind": UnitKind.QUALIFICATION},
    )
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(unit__isnull=False) & models.Q(group__isnull=True))
                | (models.Q(unit__isnull=True) & models.Q(group__isnull=False)),
                name="assignment_unit_xor_group",
            ),
            models.CheckConstraint(
                condition=(models.Q(course__isnull=False) & models.Q(qualification__isnull=True))
                | (models.Q(course__isnull=True) & models.Q(qualification__isnull=False)),
                name="assignment_course_xor_qualification",
            ),
            models.UniqueConstraint(fields=["unit", "course"], condition=models.Q(unit__isnull=False, course__isnull=False), name="assignment_unique_unit_course"),
            models.UniqueConstraint(
                fields=["unit", "qualification"], condition=models.Q(unit__isnull=False, qualification__isnull=False), name="assignment_unique_unit_qual"
            ),
            models.UniqueConstraint(fields=["group", "course"], condition=models.Q(group__isnull=False, course__isnull=False), name="assignment_unique_group_course"),
            models.UniqueConstraint(
                fields=["group", "qualification"], condition=models.Q(group__isnull=False, qualification__isnull=False), name="assignment_unique_group_qual"
            ),
            *Terms.terms_constraints("assignment"),
        ]
        indexes = [models.Index(fields=["course"], name="assignment_course")]

    def __str__(self):
        what = self.course or self.qualification
        return f"{what} → {self.unit or self.group}"


class EnrollmentOrigin(models.Model):
    """Provenance: which unit, group or rule made an enrollment. ``origin`` is
    ``unit:<id>``, ``group:<id>`` or ``rule:<id>``; ``operation_id`` is the
    batch that enrolled the person, matched against the audit trail so that an
    enrollment changed by anyone since (by hand, by a code) is never treated as
    this origin's to end."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, verbose_name=_("course"), on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(verbose_name=_("origin"), max_length=40)
    operation_id = models.UUIDField(verbose_name=_("operation"), )
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("enrollment origin")
        verbose_name_plural = _("enrollment origins")
        constraints = [models.UniqueConstraint(fields=["origin", "course", "user"], name="enrollment_origin_unique")]

    def __str__(self):
        return f"{self.user} in {self.course} by {self.origin}"


class EnrollmentOriginChange(models.Model):
    """What an operation found in an ``EnrollmentOrigin`` row it wrote or
    removed: the row's ``operation_id`` and ``created`` before it (both null:
    there was none). Undoing the operation puts that back (``origins_restore``)."""

    operation_id = models.UUIDField(verbose_name=_("operation"), )
    origin = models.CharField(verbose_name=_("origin"), max_length=40)
    course = models.ForeignKey(Course, verbose_name=_("course"), on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    before_operation_id = models.UUIDField(verbose_name=_("operation before"), null=True, blank=True)
    before_created = models.DateTimeField(verbose_name=_("created before"), null=True, blank=True)

    class Meta:
        verbose_name = _("enrollment origin change")
        verbose_name_plural = _("enrollment origin changes")
        constraints = [
            # Leading operation_id: the undo reads an operation's changes in one course.
            models.UniqueConstraint(fields=["operation_id", "course", "user", "origin"], name="enrollment_origin_change_once"),
        ]

    def __str__(self):
        return f"{self.origin} of {self.user} in {self.course} before {self.operation_id}"


class EnrollmentRule(Terms):
    """Courses and criteria; a user matches when every criterion that is set holds.

    ``retroactive``: saving the rule also enrolls people who already match;
    otherwise only people who come to match later. ``unenroll_unmatched``:
    people this rule enrolled are unenrolled when they stop matching."""

    name = models.CharField(verbose_name=_("name"), max_length=255)
    courses = models.ManyToManyField(Course, verbose_name=_("courses"), related_name="enrollment_rules")
    company = models.ForeignKey(OrgUnit, verbose_name=_("company"), null=True, blank=True, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": UnitKind.COMPANY})
    department = models.ForeignKey(
        OrgUnit, verbose_name=_("department"), null=True, blank=True, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": UnitKind.DEPARTMENT}
    )
    team = models.ForeignKey(OrgUnit, verbose_name=_("team"), null=True, blank=True, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": UnitKind.TEAM})
    function = models.ForeignKey(OrgUnit, verbose_name=pgettext_lazy("organisation unit", "function"), null=True, blank=True, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": UnitKind.FUNCTION})
    group = models.ForeignKey(Group, verbose_name=_("group"), null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    language = models.CharField(verbose_name=_("language"), max_length=10, blank=True)
    added_before = models.DateField(verbose_name=_("added before"), null=True, blank=True, help_text=_("Added to the platform before this date."))
    added_after = models.DateField(verbose_name=_("added after"), null=True, blank=True, help_text=_("Added to the platform after this date."))
    added_within_days = models.PositiveIntegerField(verbose_name=_("added within (days)"), null=True, blank=True, help_text=_("Added within the last N days."))
    manager = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("manager"), null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    retroactive = models.BooleanField(verbose_name=_("retroactive"), default=True, help_text=_("Also enroll people who already match when the rule is saved."))
    unenroll_unmatched = models.BooleanField(verbose_name=_("unenroll when no longer matching"), default=False, help_text=_("Unenroll people this rule enrolled once they no longer match."))
    is_active = models.BooleanField(verbose_name=_("active"), default=True)
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    CRITERIA = ("company", "department", "team", "function", "group", "language", "added_before", "added_after", "added_within_days", "manager")

    class Meta:
        verbose_name = _("enrollment rule")
        verbose_name_plural = _("enrollment rules")
        ordering = ["name", "id"]
        constraints = Terms.terms_constraints("enrollmentrule")

    def __str__(self):
        return self.name

    @property
    def origin(self) -> str:
        return f"rule:{self.pk}"


class OrgJob(ProgressJob):
    """Background organisation work (a large assignment, a rule evaluation, an
    import) with the progress its page polls."""

    task_name = "organisations.tasks.run_org_job"

    class Kind(models.TextChoices):
        ASSIGNMENT = "assignment", _("Assignment")
        RULE = "rule", _("Rule")
        IMPORT = "import", _("Import")
        CHECK = "check", _("File check")

    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=Kind.choices)
    payload = models.JSONField(verbose_name=_("payload"), default=dict, blank=True)
    summary = models.JSONField(verbose_name=_("summary"), default=dict, blank=True)

    class Meta(ProgressJob.Meta):
        verbose_name = _("organisation job")
        verbose_name_plural = _("organisation jobs")

    def __str__(self):
        return f"{self.kind} job ({self.status})"

    @property
    def progress_text(self) -> str:
        """"7 of 7 rows" (an import counts rows) or "3 of 5 enrollment changes"."""
        from .texts import job_progress_text

        return job_progress_text(kind=self.kind, done=self.done, total=self.total)

    @property
    def summary_text(self) -> str:
        """What the job did, as a sentence: "1 person updated, 2 invitations created, ..."."""
        from .texts import job_summary_text

        return job_summary_text(self.summary)


class OrgJobChunk(ProgressJobChunk):
    """A committed chunk of an import job: what happened to its rows."""

    job = models.ForeignKey(OrgJob, verbose_name=_("job"), on_delete=models.CASCADE, related_name="chunks")

    class Meta(ProgressJobChunk.Meta):
        constraints = [models.UniqueConstraint(fields=["job", "start"], name="orgjobchunk_one_per_start")]


class OrgImport(models.Model):
    """An uploaded import file. The request only keeps the file (``upload``)
    and queues its check (``check_job``); once checked, the valid rows (as
    parsed) wait here for "Start import", ``errors`` lists every row that
    cannot be imported, and the file itself is deleted."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Being checked")
        CHECKED = "checked", _("Checked")
        STARTED = "started", _("Started")

    public_id = models.UUIDField(verbose_name=_("public id"), default=uuid.uuid4, unique=True, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True, on_delete=models.SET_NULL, related_name="+")
    course = models.ForeignKey(Course, verbose_name=_("course"), null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text=_("Set when imported from a course's Membership tab: that course only."))
    filename = models.CharField(verbose_name=_("file name"), max_length=255)
    rows = models.JSONField(verbose_name=_("rows"), default=list, blank=True)
    errors = models.JSONField(verbose_name=_("errors"), default=list, blank=True)
    preview = models.JSONField(verbose_name=_("preview"), default=dict, blank=True)
    email_students = models.BooleanField(verbose_name=_("notify people by email"), default=False)
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.CHECKED)
    job = models.ForeignKey(OrgJob, verbose_name=_("job"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    upload = models.FileField(verbose_name=_("uploaded file"), upload_to="organisation-imports/uploads/", max_length=255, blank=True,
                              help_text=_("The file as uploaded, until its check has read it."))
    check_job = models.ForeignKey(OrgJob, verbose_name=_("check job"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  help_text=_("The job that reads and checks the uploaded file."))
    results_file = models.FileField(verbose_name=_("results file"), upload_to="organisation-imports/", max_length=255, blank=True,
                                    help_text=_("What happened to each row (CSV), written when the import finishes."))
    created = models.DateTimeField(verbose_name=_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("organisation import")
        verbose_name_plural = _("organisation imports")
        ordering = ["-created"]

    def __str__(self):
        return f"import {self.filename} ({self.status})"
