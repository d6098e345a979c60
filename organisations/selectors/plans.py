"""Plans: what an organisation change would do, course by course (reads only).

Every path that enrolls people because of where they sit in the organisation
(assignments, rules, membership changes, the import) computes a ``Plan`` here:
who would be enrolled, reactivated, left alone or unenrolled. The previews show
exactly these plans, and ``organisations/services/plans.py`` carries them out.
Queries grow with the number of courses involved, never with the number of people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils.translation import gettext_lazy

from accounts.selectors import identifier_for
from courses.models import Course
from enrollments.models import Enrollment, EnrollmentAudit, Source, State

from ..models import Assignment, EnrollmentOrigin, EnrollmentRule, OrgUnit, UnitKind
from .targets import Target, course_coverage_q, rule_users

User = get_user_model()

# Rows fetched per round trip when a plan lists many people.
FETCH_CHUNK = 5000
# A preview names the first few people of each list inline, and lists up to
# PEOPLE_LISTED of them (with how many more there are) under "Show all".
NAMES_SHOWN = 10
PEOPLE_LISTED = 500
AUTO_SOURCES = (Source.RULE, Source.UNIT)


@dataclass
class Person:
    id: int
    username: str
    email: str
    first_name: str
    last_name: str = ""

    @property
    def identifier(self) -> str:
        return identifier_for(self)

    @property
    def shown(self) -> str:
        """The username, and the full name where there is one: first names alone are ambiguous."""
        full_name = f"{self.first_name} {self.last_name}".strip()
        return f"{self.username} ({full_name})" if full_name else self.username


PERSON_FIELDS = ("username", "email", "first_name", "last_name")


@dataclass
class CoursePlan:
    course: Course
    enroll: list[Person] = field(default_factory=list)
    reactivate: list[Person] = field(default_factory=list)
    already: list[Person] = field(default_factory=list)
    removed_by_hand: list[Person] = field(default_factory=list)
    unenroll: list[Person] = field(default_factory=list)


@dataclass
class PlanList:
    """One line of a preview: its count, the first names inline and the longer list behind "Show all"."""

    name: str
    label: str
    count: int
    names: list[str]
    listed: list[str]

    @property
    def more(self) -> int:
        return self.count - len(self.listed)


@dataclass
class Plan:
    """The effect of an assignment, a rule or a membership change, per course."""

    origin: str
    label: str  # for audit reasons, stored: never translated
    source: str
    courses: list[CoursePlan] = field(default_factory=list)
    title: str = ""  # the preview's heading, in the page's language (``label`` without one)

    LISTS = ("enroll", "reactivate", "already", "removed_by_hand", "unenroll")
    LABELS = {
        "enroll": gettext_lazy("Would be enrolled"), "reactivate": gettext_lazy("Reactivated"),
        "already": gettext_lazy("Left alone: already enrolled"), "removed_by_hand": gettext_lazy("Left alone: removed by hand"),
        "unenroll": gettext_lazy("Unenrolled"),
    }

    @property
    def heading(self) -> str:
        return self.title or self.label

    def count(self, name: str) -> int:
        return sum(len(getattr(cp, name)) for cp in self.courses)

    def names(self, name: str, limit: int = NAMES_SHOWN) -> list[str]:
        """The first ``limit`` distinct people of a list (someone in several courses counts once)."""
        shown: list[str] = []
        seen: set[int] = set()
        for cp in self.courses:
            for person in getattr(cp, name):
                if len(shown) >= limit:
                    return shown
                if person.id not in seen:
                    seen.add(person.id)
                    shown.append(person.shown)
        return shown

    def listed(self, name: str, limit: int | None = None) -> list[str]:
        """Up to ``limit`` (PEOPLE_LISTED) entries of a list, each with its course when the plan has several."""
        limit = PEOPLE_LISTED if limit is None else limit
        several = len(self.courses) > 1
        entries: list[str] = []
        for cp in self.courses:
            for person in getattr(cp, name):
                if len(entries) >= limit:
                    return entries
                entries.append(f"{person.shown} · {cp.course.display_name}" if several else person.shown)
        return entries

    @property
    def counts(self) -> dict[str, int]:
        counts = {name: self.count(name) for name in self.LISTS}
        counts["left_alone"] = counts["already"] + counts["removed_by_hand"]
        return counts

    @property
    def work(self) -> int:
        return self.count("enroll") + self.count("reactivate") + self.count("unenroll")

    @property
    def lists(self) -> list[PlanList]:
        """The preview's lines, in order."""
        return [PlanList(name, str(self.LABELS[name]), self.count(name), self.names(name), self.listed(name)) for name in self.LISTS]


def courses_in(ids) -> list[Course]:
    """The courses of ``ids`` in id order: the order every multi-course write takes its locks in."""
    return list(Course.objects.filter(pk__in=list(ids)).order_by("pk"))


def _latest_audit(field_name: str):
    return Subquery(
        EnrollmentAudit.objects.filter(course=OuterRef("course_id"), user=OuterRef("user_id")).order_by("-created", "-id").values(field_name)[:1]
    )


def plan_enroll(*, course: Course, users: QuerySet) -> CoursePlan:
    """Who of ``users`` would be enrolled in ``course``, reactivated or left
    alone. People whose enrollment was ended by hand (the last audit entry is
    an unenrollment from anything but a unit or a rule) are left alone: an
    automatic source never overrides a person's decision. Two queries."""
    plan = CoursePlan(course=course)
    rows = (
        Enrollment.objects.filter(course=course, user__in=users.values("pk"))
        .annotate(last_source=_latest_audit("source"), last_after=_latest_audit("state_after"))
        .values_list("user_id", *(f"user__{f}" for f in PERSON_FIELDS), "is_active", "last_source", "last_after")
    )
    for user_id, username, email, first_name, last_name, is_active, last_source, last_after in rows.iterator(chunk_size=FETCH_CHUNK):
        person = Person(user_id, username, email, first_name, last_name)
        if is_active:
            plan.already.append(person)
        elif last_after == State.UNENROLLED and last_source in AUTO_SOURCES:
            plan.reactivate.append(person)
        else:
            plan.removed_by_hand.append(person)
    new = users.exclude(pk__in=Enrollment.objects.filter(course=course).values("user_id")).order_by("pk")
    plan.enroll = [Person(*row) for row in new.values_list("pk", *PERSON_FIELDS).iterator(chunk_size=FETCH_CHUNK)]
    return plan


def plan_unenroll(*, course: Course, origin: str, users: QuerySet | None = None) -> list[Person]:
    """Active enrollments in ``course`` that ``origin`` made (and nobody has
    touched since: the latest audit entry is still that origin's batch) of
    people who no longer qualify through any unit, group or rule. One query
    plus the coverage lookup."""
    candidates = EnrollmentOrigin.objects.filter(origin=origin, course=course)
    if users is not None:
        candidates = candidates.filter(user__in=users.values("pk"))
    still = User.objects.filter(is_active=True).filter(course_coverage_q(course.pk)).values("pk")
    candidates = (
        candidates.annotate(last_op=Subquery(
            EnrollmentAudit.objects.filter(course=OuterRef("course_id"), user=OuterRef("user_id")).order_by("-created", "-id").values("operation_id")[:1]
        ))
        .filter(last_op=F("operation_id"))
        .filter(user_id__in=Enrollment.objects.filter(course=course, is_active=True).values("user_id"))
        .exclude(user_id__in=still)
        .order_by("user_id")
    )
    return [Person(*row) for row in candidates.values_list("user_id", *(f"user__{f}" for f in PERSON_FIELDS))]


# --- Assignments -------------------------------------------------------------

def assignment_courses(*, course: Course | None = None, qualification: OrgUnit | None = None) -> list[Course]:
    """The courses a link brings: the course itself, or a qualification's courses."""
    if course is not None:
        return [course]
    return courses_in(Assignment.objects.filter(unit=qualification, course__isnull=False).values_list("course_id", flat=True))


def _targets_reached(target: Target) -> list[Target]:
    """A qualification's bundle reaches its own members and the members of every
    unit or group the qualification is assigned to."""
    targets = [target]
    if target.unit is not None and target.unit.kind == UnitKind.QUALIFICATION:
        for a in Assignment.objects.filter(qualification=target.unit).select_related("unit", "group").order_by("pk"):
            targets.append(Target(unit=a.unit, group=a.group))
    return targets


def assignment_plan(*, target: Target, course: Course | None = None, qualification: OrgUnit | None = None) -> list[Plan]:
    """What linking ``course`` or ``qualification`` to ``target`` would do (reads only)."""
    courses = assignment_courses(course=course, qualification=qualification)
    plans = []
    for t in _targets_reached(target) if course is not None else [target]:
        plan = Plan(origin=t.origin, label=t.label, source=Source.UNIT, title=t.title)
        members = t.members()
        plan.courses = [plan_enroll(course=c, users=members) for c in courses]
        plans.append(plan)
    return plans


def assignment_unlink_plans(*, assignment: Assignment, courses: list[Course]) -> list[Plan]:
    """Who removing ``assignment`` with "also unenroll" would unenroll from
    ``courses``, per target it reached. Computed after the link is gone (see
    ``assignment_unlink_preview``), so that it no longer counts as coverage."""
    target = Target(unit=assignment.unit, group=assignment.group)
    targets = _targets_reached(target) if assignment.course_id else [target]
    plans = []
    for t in targets:
        plan = Plan(origin=t.origin, label=t.label, source=Source.UNIT, title=t.title)
        for c in courses:
            cp = CoursePlan(course=c)
            cp.unenroll = plan_unenroll(course=c, origin=t.origin)
            plan.courses.append(cp)
        plans.append(plan)
    return plans


# --- Enrollment rules -----------------------------------------------------------

def rule_plan(*, rule: EnrollmentRule, retro: bool | None = None) -> Plan:
    """The effect of evaluating a saved rule over everyone (reads only):
    matching people to enroll or reactivate (when retroactive), those left
    alone, and where the rule says so those who stopped matching."""
    retro = rule.retroactive if retro is None else retro
    plan = Plan(origin=rule.origin, label=rule.name, source=Source.RULE)
    users = rule_users(rule)
    for course in rule.courses.order_by("pk"):
        cp = plan_enroll(course=course, users=users) if retro else CoursePlan(course=course)
        if rule.unenroll_unmatched:
            cp.unenroll = plan_unenroll(course=course, origin=rule.origin)
        plan.courses.append(cp)
    return plan
