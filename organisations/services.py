"""Changes to group membership."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import ngettext

from courses.models import Course
from courses.rules import courses_managed_by
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.tasks import enqueue_on_commit
from enrollments.models import Enrollment, EnrollmentAudit, Source, State
from enrollments.services import Outcome, enrollment_batch_update, identifier_for

from .models import (
    SINGLE_KINDS,
    Assignment,
    EnrollmentOrigin,
    EnrollmentRule,
    Group,
    GroupMembership,
    OrgImport,
    OrgJob,
    OrgUnit,
    UnitKind,
    UnitMembership,
)
from .rules import is_own_report
from .selectors import Target, course_coverage_q, rule_users

User = get_user_model()


def user_identifier(user) -> str:
    """What to hand enrollment_batch_update for a known user (see identifier_for)."""
    return identifier_for(user)


@transaction.atomic
def group_add_members(*, group: Group, users: Iterable, actor, source: str = Source.ADMIN, reason: str = "") -> list:
    """Add users to a group and enroll them in each of its courses.

    Idempotent: people already in the group stay as they are (their joining
    date is kept) and only missing enrollments are made, each audited with
    ``source``. Returns the users who were not members before. Queries grow
    with the number of the group's courses, not with the number of users."""
    users = {u.pk: u for u in users if u is not None and u.is_active}
    if not users:
        return []
    existing = set(GroupMembership.objects.filter(group=group, user_id__in=users).values_list("user_id", flat=True))
    now = timezone.now()
    # ignore_conflicts: a concurrent add of the same person is not an error, the
    # unique (user, group) constraint keeps one row.
    GroupMembership.objects.bulk_create(
        [GroupMembership(group=group, user_id=pk, joined=now, source=source) for pk in sorted(users) if pk not in existing],
        ignore_conflicts=True,
    )
    identifiers = [user_identifier(users[pk]) for pk in sorted(users)]
    before = rules_snapshot(user_ids=sorted(users))
    # Course-id order, like every other multi-course write, so that two
    # transactions touching the same enrollments lock them in the same order.
    # The group's own courses and those of qualifications assigned to it.
    for course in Course.objects.filter(pk__in=Target(group=group).course_ids()).order_by("id"):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=False,
            actor=actor, reason=reason or f"Joined group {group.name}", source=source,
        )
    # Joining a group can make people match rules that name it.
    rules_reconcile(user_ids=sorted(users), before=before, actor=actor)
    return [users[pk] for pk in sorted(users) if pk not in existing]


# --- Organisation units, assignments and enrollment rules --------------------
#
# Every path that enrolls people because of where they sit in the organisation
# goes through plan_enroll / plan_unenroll (reads only: the previews show
# exactly these) and plan_execute (the writes, through enrollment_batch_update
# so that enrollments, audit entries and emails behave as in batch enrollment).
# Queries grow with the number of courses involved, never with the number of
# people; big sets are cut into chunks that also drive the job's progress bar.

CHUNK = 5000
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
        return self.email if "@" in self.username else self.username

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
    label: str
    source: str
    courses: list[CoursePlan] = field(default_factory=list)

    LISTS = ("enroll", "reactivate", "already", "removed_by_hand", "unenroll")
    LABELS = {
        "enroll": "Would be enrolled", "reactivate": "Reactivated", "already": "Left alone: already enrolled",
        "removed_by_hand": "Left alone: removed by hand", "unenroll": "Unenrolled",
    }

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
        return [PlanList(name, self.LABELS[name], self.count(name), self.names(name), self.listed(name)) for name in self.LISTS]


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
    for user_id, username, email, first_name, last_name, is_active, last_source, last_after in rows.iterator(chunk_size=CHUNK):
        person = Person(user_id, username, email, first_name, last_name)
        if is_active:
            plan.already.append(person)
        elif last_after == State.UNENROLLED and last_source in AUTO_SOURCES:
            plan.reactivate.append(person)
        else:
            plan.removed_by_hand.append(person)
    new = users.exclude(pk__in=Enrollment.objects.filter(course=course).values("user_id")).order_by("pk")
    plan.enroll = [Person(*row) for row in new.values_list("pk", *PERSON_FIELDS).iterator(chunk_size=CHUNK)]
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


def plan_execute(*, plan: Plan, actor, email_students: bool = False, reason: str = "", job=None) -> dict[str, int]:
    """Carry out ``plan``: enroll and reactivate (recording this origin as the
    provenance), unenroll. Returns the counts done. ``job`` (an OrgJob) gets
    its progress updated after every chunk."""
    from .models import OrgJob

    reason = reason or f"{'Rule' if plan.source == Source.RULE else 'Organisation unit'}: {plan.label}"
    done = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    progress = 0
    for cp in sorted(plan.courses, key=lambda cp: cp.course.pk):
        todo = cp.enroll + cp.reactivate
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            with transaction.atomic():
                operation_id = uuid.uuid4()
                result = enrollment_batch_update(
                    course=cp.course, identifiers=[p.identifier for p in chunk], action="enroll", auto_enroll=True,
                    email_students=email_students, actor=actor, reason=reason, source=plan.source, operation_id=operation_id,
                )
                changed = {r.username for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED)}
                now = timezone.now()
                bulk_insert(
                    EnrollmentOrigin,
                    [{"user_id": p.id, "course_id": cp.course.pk, "origin": plan.origin, "operation_id": operation_id, "created": now}
                     for p in chunk if p.username in changed],
                    unique_fields=["origin", "course", "user"], update_fields=["operation_id", "created"],
                )
                summary = result.summary
                done["enrolled"] += summary.get(Outcome.ENROLLED, 0)
                done["reactivated"] += summary.get(Outcome.REACTIVATED, 0)
            progress += len(chunk)
            if job is not None:
                OrgJob.objects.filter(pk=job.pk).update(done=progress, heartbeat_at=timezone.now())
        for start in range(0, len(cp.unenroll), CHUNK):
            chunk = cp.unenroll[start:start + CHUNK]
            result = enrollment_batch_update(
                course=cp.course, identifiers=[p.identifier for p in chunk], action="unenroll", auto_enroll=False,
                email_students=email_students, actor=actor, reason=f"No longer qualifies: {reason}", source=plan.source,
            )
            done["unenrolled"] += result.summary.get(Outcome.UNENROLLED, 0)
            progress += len(chunk)
            if job is not None:
                OrgJob.objects.filter(pk=job.pk).update(done=progress, heartbeat_at=timezone.now())
    return done


def _courses(ids) -> list[Course]:
    return list(Course.objects.filter(pk__in=list(ids)).order_by("pk"))


# --- Assignments -------------------------------------------------------------

def assignment_courses(*, course: Course | None = None, qualification: OrgUnit | None = None) -> list[Course]:
    if course is not None:
        return [course]
    return _courses(Assignment.objects.filter(unit=qualification, course__isnull=False).values_list("course_id", flat=True))


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
        plan = Plan(origin=t.origin, label=t.label, source=Source.UNIT)
        members = t.members()
        plan.courses = [plan_enroll(course=c, users=members) for c in courses]
        plans.append(plan)
    return plans


@transaction.atomic
def assignment_link(*, target: Target, course: Course | None = None, qualification: OrgUnit | None = None, actor) -> Assignment:
    """Link a course or a qualification to a unit or a group (idempotent). The
    enrollments follow with :func:`assignment_apply` (in the request or a job)."""
    if (course is None) == (qualification is None):
        raise ValidationError("Link a course or a qualification.")
    if qualification is not None and (qualification.kind != UnitKind.QUALIFICATION or qualification == target.unit):
        raise ValidationError("Only a qualification can be linked as a qualification, and not to itself.")
    if qualification is not None and target.unit is not None and target.unit.kind == UnitKind.QUALIFICATION:
        raise ValidationError("A qualification bundles courses, not other qualifications.")
    field_name = "group" if target.group is not None else "unit"
    assignment, _ = Assignment.objects.get_or_create(
        **{field_name: target.obj}, course=course, qualification=qualification, defaults={"created_by": actor}
    )
    if target.group is not None and course is not None:
        # Codes and group_add_members enroll new members in group.courses.
        target.group.courses.add(course)
    return assignment


def assignment_apply(*, target: Target, course: Course | None = None, qualification: OrgUnit | None = None, actor,
                     email_students: bool = False, job=None) -> dict[str, int]:
    """Enroll the present members of ``target`` (and of the units a
    qualification reaches) in what was linked. Idempotent."""
    totals: dict[str, int] = {}
    for plan in assignment_plan(target=target, course=course, qualification=qualification):
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, job=job).items():
            totals[key] = totals.get(key, 0) + value
    return totals


class _DryRun(Exception):
    pass


def _dry_run(change, compute):
    """Make ``change`` in a savepoint, ``compute`` the plan, roll the change back:
    the preview sees exactly what the real change would see, and nothing stays written."""
    box = {}
    try:
        with transaction.atomic():
            change()
            box["plan"] = compute()
            raise _DryRun
    except _DryRun:
        pass
    return box["plan"]


def _unlink_plans(assignment: Assignment, courses: list[Course]) -> list[Plan]:
    target = Target(unit=assignment.unit, group=assignment.group)
    targets = _targets_reached(target) if assignment.course_id else [target]
    plans = []
    for t in targets:
        plan = Plan(origin=t.origin, label=t.label, source=Source.UNIT)
        for c in courses:
            cp = CoursePlan(course=c)
            cp.unenroll = plan_unenroll(course=c, origin=t.origin)
            plan.courses.append(cp)
        plans.append(plan)
    return plans


def _unlink(assignment: Assignment) -> None:
    if assignment.group_id and assignment.course_id:
        assignment.group.courses.remove(assignment.course)
    Assignment.objects.filter(pk=assignment.pk).delete()


def assignment_unlink_preview(*, assignment: Assignment) -> list[Plan]:
    """Who would be unenrolled if the link were removed with "also unenroll" (reads only)."""
    courses = assignment_courses(course=assignment.course, qualification=assignment.qualification)
    return _dry_run(lambda: _unlink(assignment), lambda: _unlink_plans(assignment, courses))


@transaction.atomic
def assignment_unlink(*, assignment: Assignment, also_unenroll: bool, actor, email_students: bool = False) -> dict[str, int]:
    """Remove a link. Nobody is unenrolled unless ``also_unenroll``; then only
    enrollments this unit made, of people who no longer qualify otherwise."""
    courses = assignment_courses(course=assignment.course, qualification=assignment.qualification)
    _unlink(assignment)
    totals = {"unenrolled": 0}
    if also_unenroll:
        for plan in _unlink_plans(assignment, courses):
            totals["unenrolled"] += plan_execute(plan=plan, actor=actor, email_students=email_students)["unenrolled"]
    return totals


# --- Memberships and user attributes ------------------------------------------

def rules_snapshot(*, user_ids: list[int]) -> dict[int, set[int]]:
    """Which of ``user_ids`` each active rule matches now: one query per rule.
    Taken before a change, so that non-retroactive rules enroll only newcomers."""
    return {
        rule.pk: set(rule_users(rule).filter(pk__in=user_ids).values_list("pk", flat=True))
        for rule in EnrollmentRule.objects.filter(is_active=True)
    }


def rules_reconcile(*, user_ids: list[int], before: dict[int, set[int]], actor, email_students: bool = False) -> dict[str, int]:
    """After a change to ``user_ids`` (new accounts, units, attributes): enroll
    those who came to match a rule, and unenroll (where the rule says so) those
    who stopped matching. Queries grow with the number of rules and courses."""
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    if not user_ids:
        return totals
    for rule in EnrollmentRule.objects.filter(is_active=True).prefetch_related("courses").order_by("pk"):
        now = set(rule_users(rule).filter(pk__in=user_ids).values_list("pk", flat=True))
        newcomers = now - before.get(rule.pk, set())
        # A retroactive rule covers everyone who matches; others only newcomers.
        targets = now if rule.retroactive else newcomers
        left = set(user_ids) - now
        plan = Plan(origin=rule.origin, label=rule.name, source=Source.RULE)
        for course in sorted(rule.courses.all(), key=lambda c: c.pk):
            cp = plan_enroll(course=course, users=User.objects.filter(pk__in=sorted(targets))) if targets else CoursePlan(course=course)
            if rule.unenroll_unmatched and left:
                cp.unenroll = plan_unenroll(course=course, origin=rule.origin, users=User.objects.filter(pk__in=sorted(left)))
            plan.courses.append(cp)
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, reason=f"Rule: {rule.name}").items():
            totals[key] += value
    return totals


def _join(target: Target, user_ids: list[int], source: str) -> None:
    now = timezone.now()
    if target.group is not None:
        GroupMembership.objects.bulk_create(
            [GroupMembership(group=target.group, user_id=pk, joined=now, source=source) for pk in user_ids], ignore_conflicts=True
        )
    elif target.unit.kind in SINGLE_KINDS:
        User.objects.filter(pk__in=user_ids).update(**{f"{target.unit.kind}_id": target.unit.pk})
    else:
        UnitMembership.objects.bulk_create(
            [UnitMembership(unit=target.unit, user_id=pk, joined=now, source=source) for pk in user_ids], ignore_conflicts=True
        )


def _leave(target: Target, user_ids: list[int]) -> None:
    if target.group is not None:
        GroupMembership.objects.filter(group=target.group, user_id__in=user_ids).delete()
    elif target.unit.kind in SINGLE_KINDS:
        User.objects.filter(pk__in=user_ids, **{f"{target.unit.kind}_id": target.unit.pk}).update(**{f"{target.unit.kind}_id": None})
    else:
        UnitMembership.objects.filter(unit=target.unit, user_id__in=user_ids).delete()


@transaction.atomic
def unit_members_add(*, target: Target, users: Iterable, actor, email_students: bool = False, source: str = "admin") -> dict[str, int]:
    """Add people to a unit or group (a company or department replaces the
    one they had) and enroll them in its courses; then apply the rules.
    Idempotent. Moving someone out of their old company never unenrolls them."""
    user_ids = sorted({u.pk for u in users if u is not None and u.is_active})
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    if not user_ids:
        return totals
    before = rules_snapshot(user_ids=user_ids)
    _join(target, user_ids, source)
    plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
    plan.courses = [plan_enroll(course=c, users=User.objects.filter(pk__in=user_ids, is_active=True)) for c in _courses(target.course_ids())]
    for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students).items():
        totals[key] += value
    for key, value in rules_reconcile(user_ids=user_ids, before=before, actor=actor, email_students=email_students).items():
        totals[key] += value
    return totals


@dataclass
class MemberOutcome:
    """What adding one identifier to a unit did (the Members tab's results)."""

    ADDED = "added"
    ALREADY = "already a member"
    MOVED = "moved"
    NO_SUCH_USER = "no such user"
    INVALID = "invalid"
    ERRORS = (NO_SUCH_USER, INVALID)

    identifier: str
    outcome: str
    username: str = ""
    full_name: str = ""
    moved_from: str = ""

    @property
    def text(self) -> str:
        return f"moved from {self.moved_from}" if self.outcome == self.MOVED else self.outcome

    def as_dict(self) -> dict:
        return {"identifier": self.identifier, "outcome": self.outcome, "text": self.text, "username": self.username,
                "full_name": self.full_name, "error": self.outcome in self.ERRORS}


def member_outcomes(*, resolved: list[tuple], already: set[int], previous: dict[int, str]) -> list[MemberOutcome]:
    """Decide each identifier's outcome (pure: no queries). ``resolved`` pairs
    each parsed identifier with its account or None, ``already`` holds the ids
    of people in the unit now, ``previous`` the name of the company or
    department someone leaves by joining. A person named twice (by username
    and by email) gets the first outcome twice."""
    from enrollment_site.lib.identifiers import Kind

    outcomes: list[MemberOutcome] = []
    seen: dict[int, MemberOutcome] = {}
    for ident, user in resolved:
        if user is None:
            outcome = MemberOutcome.INVALID if ident.kind == Kind.INVALID else MemberOutcome.NO_SUCH_USER
            outcomes.append(MemberOutcome(ident.text, outcome))
            continue
        if user.pk in seen:
            first = seen[user.pk]
            outcomes.append(MemberOutcome(ident.text, first.outcome, first.username, first.full_name, first.moved_from))
            continue
        if user.pk in already:
            result = MemberOutcome(ident.text, MemberOutcome.ALREADY, user.username, user.get_full_name())
        elif user.pk in previous:
            result = MemberOutcome(ident.text, MemberOutcome.MOVED, user.username, user.get_full_name(), previous[user.pk])
        else:
            result = MemberOutcome(ident.text, MemberOutcome.ADDED, user.username, user.get_full_name())
        seen[user.pk] = result
        outcomes.append(result)
    return outcomes


@dataclass
class MembersAdded:
    outcomes: list[MemberOutcome]
    enrollments: dict[str, int]

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return counts


@transaction.atomic
def unit_members_add_identifiers(*, target: Target, identifiers: str | list[str], actor, email_students: bool = False) -> MembersAdded:
    """Add the people named by usernames or emails to a unit or group, with
    an outcome per identifier: added, already a member, moved from their old
    company or department (a person belongs to one of each), no such user
    (no active account) or invalid. Unknown identifiers do not stop the
    others from being added. Enrollments and rules follow as in unit_members_add."""
    from enrollment_site.lib.identifiers import parse_identifiers

    from .selectors import users_by_identifier

    resolved = users_by_identifier(parse_identifiers(identifiers))
    user_ids = sorted({u.pk for _, u in resolved if u is not None})
    previous: dict[int, str] = {}
    if target.unit is not None and target.unit.kind in SINGLE_KINDS:
        # Lock the people's rows: if another administrator moves the same
        # person at the same moment, "moved from" must name the unit this
        # update replaced, not one read before theirs.
        current = dict(
            User.objects.select_for_update().filter(pk__in=user_ids).order_by("pk").values_list("pk", f"{target.unit.kind}_id")
        )
        already = {pk for pk, unit_id in current.items() if unit_id == target.unit.pk}
        names = dict(OrgUnit.objects.filter(pk__in={u for u in current.values() if u}).values_list("pk", "name"))
        previous = {pk: names[unit_id] for pk, unit_id in current.items() if unit_id and unit_id != target.unit.pk}
    else:
        already = set(target.members().filter(pk__in=user_ids).values_list("pk", flat=True))
    outcomes = member_outcomes(resolved=resolved, already=already, previous=previous)
    # Everyone found goes through unit_members_add, present members too: it
    # is idempotent and makes any enrollment of the unit's courses they miss.
    enrollments = unit_members_add(target=target, users=[u for _, u in resolved if u is not None], actor=actor,
                                   email_students=email_students)
    return MembersAdded(outcomes=outcomes, enrollments=enrollments)


@transaction.atomic
def unit_members_remove(*, target: Target, users: Iterable, actor, also_unenroll: bool = False, email_students: bool = False) -> dict[str, int]:
    """Take people out of a unit or group. Nobody is unenrolled unless
    ``also_unenroll``: then only from enrollments this unit made, where they
    no longer qualify otherwise. Rules are applied to the changed people."""
    user_ids = sorted({u.pk for u in users if u is not None})
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    if not user_ids:
        return totals
    before = rules_snapshot(user_ids=user_ids)
    _leave(target, user_ids)
    if also_unenroll:
        plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
        for c in _courses(target.course_ids()):
            cp = CoursePlan(course=c)
            cp.unenroll = plan_unenroll(course=c, origin=target.origin, users=User.objects.filter(pk__in=user_ids))
            plan.courses.append(cp)
        totals["unenrolled"] += plan_execute(plan=plan, actor=actor, email_students=email_students)["unenrolled"]
    for key, value in rules_reconcile(user_ids=user_ids, before=before, actor=actor, email_students=email_students).items():
        totals[key] += value
    return totals


PROFILE_FIELDS = ("company", "department", "manager", "language", "first_name", "last_name")


@transaction.atomic
def user_profile_update(*, user, actor, teams=None, functions=None, email_students: bool = False, **changes) -> dict[str, int]:
    """Change where a person sits (company, department, manager, language,
    teams, functions) and apply what follows: the courses of units they join
    and the rules they come to match (or stop matching)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not a profile field: {', '.join(sorted(unknown))}")
    before = rules_snapshot(user_ids=[user.pk])
    joined: list[Target] = []
    for name in ("company", "department"):
        if name in changes and changes[name] is not None and getattr(user, f"{name}_id") != changes[name].pk:
            joined.append(Target(unit=changes[name]))
    for name, value in changes.items():
        setattr(user, name, value)
    if changes:
        user.save(update_fields=list(changes))
    for kind, wanted in ((UnitKind.TEAM, teams), (UnitKind.FUNCTION, functions)):
        if wanted is None:
            continue
        wanted_ids = {u.pk for u in wanted}
        current = set(UnitMembership.objects.filter(user=user, unit__kind=kind).values_list("unit_id", flat=True))
        UnitMembership.objects.filter(user=user, unit_id__in=current - wanted_ids).delete()
        UnitMembership.objects.bulk_create(
            [UnitMembership(user=user, unit_id=pk, source="admin") for pk in sorted(wanted_ids - current)], ignore_conflicts=True
        )
        joined += [Target(unit=u) for u in wanted if u.pk not in current]
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    for target in joined:
        plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
        plan.courses = [plan_enroll(course=c, users=User.objects.filter(pk=user.pk, is_active=True)) for c in _courses(target.course_ids())]
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students).items():
            totals[key] += value
    for key, value in rules_reconcile(user_ids=[user.pk], before=before, actor=actor, email_students=email_students).items():
        totals[key] += value
    return totals


def user_joined(*, user) -> dict[str, int]:
    """A new account: apply every rule it matches (it matched none before)."""
    return rules_reconcile(user_ids=[user.pk], before={}, actor=None)


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


def _rule_write(rule: EnrollmentRule, courses) -> EnrollmentRule:
    rule.full_clean(exclude=["courses"])
    rule.save()
    rule.courses.set(courses)
    return rule


def rule_preview(*, rule: EnrollmentRule, courses) -> Plan:
    """What saving ``rule`` (new or changed, not yet saved) with ``courses``
    would do: computed in a savepoint that is rolled back, so nothing stays written."""
    pk, adding = rule.pk, rule._state.adding
    try:
        return _dry_run(lambda: _rule_write(rule, courses), lambda: rule_plan(rule=rule))
    finally:
        # the rolled-back insert must not leave its id on the unsaved rule
        rule.pk, rule._state.adding = pk, adding


@transaction.atomic
def rule_save(*, rule: EnrollmentRule, courses, actor) -> EnrollmentRule:
    """Create or change a rule. The enrollments follow with :func:`rule_apply`."""
    if rule.pk is None:
        rule.created_by = actor
    return _rule_write(rule, courses)


def rule_apply(*, rule: EnrollmentRule, actor, email_students: bool = False, job=None) -> dict[str, int]:
    """Evaluate a saved rule over everyone: idempotent, set-based."""
    if not rule.is_active:
        return {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    return plan_execute(plan=rule_plan(rule=rule), actor=actor, email_students=email_students, job=job)


# --- Background jobs -------------------------------------------------------------

def org_job_create(*, kind: str, payload: dict, total: int, actor) -> OrgJob:
    from .tasks import run_org_job

    job = OrgJob.objects.create(kind=kind, payload=payload, total=total, requester=actor if getattr(actor, "is_authenticated", False) else None)
    enqueue_on_commit(run_org_job, job.pk)
    return job


def org_job_run(*, job_id: int) -> OrgJob | None:
    """Run a queued job once: the conditional UPDATE claims it, so a second
    delivery of the task returns quietly."""
    now = timezone.now()
    if not OrgJob.objects.filter(pk=job_id, status=OrgJob.Status.QUEUED).update(status=OrgJob.Status.RUNNING, started=now, heartbeat_at=now):
        return None
    job = OrgJob.objects.select_related("requester").get(pk=job_id)
    p = job.payload
    try:
        if job.kind == OrgJob.Kind.RULE:
            summary = rule_apply(rule=EnrollmentRule.objects.get(pk=p["rule_id"]), actor=job.requester, email_students=p.get("email_students", False), job=job)
        elif job.kind == OrgJob.Kind.ASSIGNMENT:
            target = Target.parse(p["kind"], p["target_id"])
            course = Course.objects.get(pk=p["course_id"]) if p.get("course_id") else None
            qualification = OrgUnit.objects.get(pk=p["qualification_id"]) if p.get("qualification_id") else None
            summary = assignment_apply(target=target, course=course, qualification=qualification, actor=job.requester,
                                       email_students=p.get("email_students", False), job=job)
        else:
            from .imports import import_run

            summary = import_run(org_import=OrgImport.objects.get(pk=p["import_id"]), actor=job.requester, job=job)
    except Exception as exc:  # a failed job says why, it never stays running
        OrgJob.objects.filter(pk=job.pk).update(status=OrgJob.Status.FAILED, finished=timezone.now(), error=str(exc)[:2000])
    else:
        OrgJob.objects.filter(pk=job.pk).update(status=OrgJob.Status.SUCCEEDED, finished=timezone.now(), done=job.total, summary=summary)
    job.refresh_from_db()
    return job


def unit_save(*, obj) -> object:
    """Create or rename a unit or group (enrollments follow from assignments, not names)."""
    obj.full_clean()
    obj.save()
    return obj


@transaction.atomic
def unit_remove(*, obj) -> None:
    """Delete a unit or group. Nobody is unenrolled: their enrollments stay as
    they are. Raises ProtectedError while a rule names the unit."""
    obj.delete()


def user_enroll_courses(*, user, courses, actor, email_students: bool = False, source: str = Source.ADMIN, reason: str = "") -> int:
    """Enroll one person in several courses at once (the user page, My Team):
    audited like batch enrollment. Returns how many enrollments were made."""
    made = 0
    with transaction.atomic():
        for course in sorted(courses, key=lambda c: c.pk):
            result = enrollment_batch_update(
                course=course, identifiers=[user_identifier(user)], action="enroll", auto_enroll=True,
                email_students=email_students, actor=actor, reason=reason, source=source,
            )
            made += sum(1 for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED))
    return made


def org_jobs_fail_stale(*, running_hours: int = 2, queued_hours: int = 6) -> int:
    """A job whose worker died shows as failed with its reason, never as
    pending forever: called whenever a job's progress is read. A running job
    is lost when its last heartbeat (its start, before the first) is older
    than ``running_hours``; a long job that still beats keeps running."""
    now = timezone.now()
    lost = now - timezone.timedelta(hours=running_hours)
    running = OrgJob.objects.filter(Q(heartbeat_at__lt=lost) | Q(heartbeat_at__isnull=True, started__lt=lost), status=OrgJob.Status.RUNNING).update(
        status=OrgJob.Status.FAILED, finished=now, error="The worker was lost or the job timed out."
    )
    queued = OrgJob.objects.filter(status=OrgJob.Status.QUEUED, created__lt=now - timezone.timedelta(hours=queued_hours)).update(
        status=OrgJob.Status.FAILED, finished=now, error="The job never started: is a worker running?"
    )
    return running + queued


def rules_refresh() -> dict[str, int]:
    """Periodic: what time alone changes ("added within the last N days",
    "added before"). Retroactive rules are evaluated in full; the others only
    unenroll (where they say so) people who stopped matching, since enrolling
    everyone who matches would not be "newcomers only"."""
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    for rule in EnrollmentRule.objects.filter(is_active=True).order_by("pk"):
        if not (rule.retroactive or rule.unenroll_unmatched):
            continue
        plan = rule_plan(rule=rule, retro=rule.retroactive)
        for key, value in plan_execute(plan=plan, actor=None).items():
            totals[key] += value
    return totals


# --- My Team -------------------------------------------------------------------------

def team_enroll_refusals(*, courses: list[Course], managed_ids: set[int], active: dict[int, int], newcomers: dict[int, int], at) -> list[str]:
    """Why a manager may not put reports into some of ``courses`` (pure: no
    queries). A course the manager manages anyway (its team, or a platform
    admin) is never refused. Any other course must be one a report could join
    by themself: self-enrollment on, no enrollment key, not invitation-only,
    within the enrollment window, and enough seats left for ``newcomers`` (the
    chosen reports not yet enrolled in it) on top of ``active`` enrollments."""
    refusals = []
    for course in courses:
        if course.pk in managed_ids:
            continue
        name = course.display_name
        if course.invitation_only:
            refusals.append(f"{name} is by invitation only.")
        elif not course.self_enrollment:
            refusals.append(f"{name} does not take self-enrollment; its course team enrolls its learners.")
        elif course.enrollment_key:
            refusals.append(f"{name} needs an enrollment key; ask its course team.")
        elif not course.enrollment_is_open(at):
            refusals.append(f"Enrollment in {name} is closed.")
        elif course.max_enrollments is not None and active.get(course.pk, 0) + newcomers.get(course.pk, 0) > course.max_enrollments:
            left = max(course.max_enrollments - active.get(course.pk, 0), 0)
            chosen = newcomers.get(course.pk, 0)
            refusals.append(
                ngettext("%(name)s has %(left)s seat left", "%(name)s has %(left)s seats left", left) % {"name": name, "left": left}
                + ngettext("; you chose %(n)s person not yet enrolled.", "; you chose %(n)s people not yet enrolled.", chosen) % {"n": chosen}
            )
    return refusals


@transaction.atomic
def team_enroll(*, manager, users, courses, email_students: bool = False) -> dict[str, int]:
    """Enroll a manager's own reports in ``courses`` (My Team), audited with
    the manager as actor and source "team". Raises PermissionDenied if anyone
    is not the manager's active report, and ValidationError (nothing written)
    when a course is not open to the reports (see ``team_enroll_refusals``).
    Returns {"enrolled": new or reactivated enrollments, "already": left alone}.
    Queries grow with the number of courses, not of people."""
    people = sorted({u.pk: u for u in users}.values(), key=lambda u: u.pk)
    if not all(is_own_report(manager, u) for u in people):
        raise PermissionDenied("You can enroll your own reports only.")
    ids = sorted(c.pk for c in courses)
    # Lock the course rows in id order: two managers (or a manager and a
    # self-enrolling learner, who takes the same lock) filling the last seats
    # at once must not both get in past the cap.
    locked = list(Course.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    managed_ids = set(courses_managed_by(user=manager).filter(pk__in=ids).values_list("pk", flat=True))
    active = dict(
        Enrollment.objects.filter(course_id__in=ids, is_active=True).values("course_id").annotate(n=Count("id")).values_list("course_id", "n")
    )
    enrolled_pairs = set(
        Enrollment.objects.filter(course_id__in=ids, user_id__in=[u.pk for u in people], is_active=True).values_list("course_id", "user_id")
    )
    newcomers = {pk: sum(1 for u in people if (pk, u.pk) not in enrolled_pairs) for pk in ids}
    refusals = team_enroll_refusals(courses=locked, managed_ids=managed_ids, active=active, newcomers=newcomers, at=timezone.now())
    if refusals:
        raise ValidationError(refusals)
    done = {"enrolled": 0, "already": 0}
    identifiers = [user_identifier(u) for u in people]
    for course in locked:
        result = enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=email_students,
            actor=manager, reason=f"My Team: enrolled by manager {manager.username}", source=Source.TEAM,
        )
        done["enrolled"] += sum(1 for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED))
        done["already"] += sum(1 for r in result.results if r.outcome == Outcome.ALREADY_ENROLLED)
    return done
