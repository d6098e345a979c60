"""Assignments: linking a course or a qualification to a unit or a group,
enrolling its members, and unlinking (with a preview of who would be unenrolled)."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib.jobs import JobRun

from ..models import Assignment, OrgUnit, UnitKind
from ..selectors.plans import Plan, assignment_courses, assignment_plan, assignment_unlink_plans
from ..selectors.targets import Target
from .plans import dry_run, plan_execute


@transaction.atomic
def assignment_link(*, target: Target, course: Course | None = None, qualification: OrgUnit | None = None, actor: Actor,
                    duration_days: int | None = None, recur_months: int | None = None) -> Assignment:
    """Link a course or a qualification to a unit or a group (idempotent). The
    enrollments follow with :func:`assignment_apply` (in the request or a job).
    ``duration_days`` and ``recur_months`` are the link's terms (the period
    the enrollments it makes get, and their renewal); linking again sets them
    anew, for the enrollments made from then on and the renewals to come."""
    if (course is None) == (qualification is None):
        raise ValidationError(_("Link a course or a qualification."))
    if qualification is not None and (qualification.kind != UnitKind.QUALIFICATION or qualification == target.unit):
        raise ValidationError(_("Only a qualification can be linked as a qualification, and not to itself."))
    if qualification is not None and target.unit is not None and target.unit.kind == UnitKind.QUALIFICATION:
        raise ValidationError(_("A qualification bundles courses, not other qualifications."))
    field_name = "group" if target.group is not None else "unit"
    terms = {"duration_days": duration_days, "recur_months": recur_months}
    assignment, created = Assignment.objects.get_or_create(
        **{field_name: target.obj}, course=course, qualification=qualification, defaults={"created_by": actor, **terms}
    )
    if not created and (assignment.duration_days, assignment.recur_months) != (duration_days, recur_months):
        Assignment.objects.filter(pk=assignment.pk).update(**terms)
        assignment.duration_days, assignment.recur_months = duration_days, recur_months
    if target.group is not None and course is not None:
        # Codes and group_add_members enroll new members in group.courses.
        target.group.courses.add(course)
    return assignment


def assignment_apply(*, target: Target, course: Course | None = None, qualification: OrgUnit | None = None, actor: Actor,
                     email_students: bool = False, run: JobRun | None = None, operation_id: uuid.UUID | None = None) -> dict[str, int]:
    """Enroll the present members of ``target`` (and of the units a
    qualification reaches) in what was linked. Idempotent. One operation
    (``operation_id``, a new one if not given; a job passes its own, kept
    across takeovers) in every course, so that one undo takes it all back."""
    operation_id = operation_id or uuid.uuid4()
    totals: dict[str, int] = {}
    for plan in assignment_plan(target=target, course=course, qualification=qualification):
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, run=run, operation_id=operation_id).items():
            totals[key] = totals.get(key, 0) + value
    return totals


def _unlink(assignment: Assignment) -> None:
    if assignment.group is not None and assignment.course_id is not None:
        assignment.group.courses.remove(assignment.course_id)
    Assignment.objects.filter(pk=assignment.pk).delete()


def assignment_unlink_preview(*, assignment: Assignment) -> list[Plan]:
    """Who would be unenrolled if the link were removed with "also unenroll" (reads only)."""
    courses = assignment_courses(course=assignment.course, qualification=assignment.qualification)
    return dry_run(lambda: _unlink(assignment), lambda: assignment_unlink_plans(assignment=assignment, courses=courses))


@transaction.atomic
def assignment_unlink(*, assignment: Assignment, also_unenroll: bool, actor: Actor, email_students: bool = False) -> dict[str, int]:
    """Remove a link. Nobody is unenrolled unless ``also_unenroll``; then only
    enrollments this unit made, of people who no longer qualify otherwise."""
    courses = assignment_courses(course=assignment.course, qualification=assignment.qualification)
    _unlink(assignment)
    totals = {"unenrolled": 0}
    if also_unenroll:
        operation_id = uuid.uuid4()  # one undo for every course
        for plan in assignment_unlink_plans(assignment=assignment, courses=courses):
            totals["unenrolled"] += plan_execute(plan=plan, actor=actor, email_students=email_students, operation_id=operation_id)["unenrolled"]
    return totals
