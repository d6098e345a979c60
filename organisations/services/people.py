"""People: what to hand the batch for a person, their place in the
organisation (company, department, manager, teams...), a new account, and
enrolling one person in several courses (the user page)."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.selectors import identifier_for
from accounts.types import Actor
from enrollments.models import Outcome, Source
from enrollments.services import enrollment_batch_update

from ..models import Placement, UnitKind, UnitMembership
from ..selectors.plans import Plan, courses_in, plan_enroll
from ..selectors.targets import Target, rules_snapshot
from .enrollment_rules import rules_reconcile
from .plans import plan_execute

User = get_user_model()


def place_in(*, kind: str, unit_id: int, user_ids: list[int]) -> None:
    """Set the company or department (``kind``) of these people to ``unit_id``,
    replacing the one they had: one upsert, their other column untouched."""
    # update_conflicts: a person already placed keeps their row (and their
    # other unit); the unique user column names the conflict.
    Placement.objects.bulk_create(
        [Placement(user_id=pk, **{f"{kind}_id": unit_id}) for pk in user_ids],
        update_conflicts=True, unique_fields=["user"], update_fields=[kind],
    )


# company and department are the person's Placement, the rest the user's own fields
PLACEMENT_FIELDS = ("company", "department")
PROFILE_FIELDS = (*PLACEMENT_FIELDS, "manager", "language", "first_name", "last_name")


@transaction.atomic
def user_profile_update(*, user, actor: Actor, teams=None, functions=None, email_students: bool = False, **changes) -> dict[str, int]:
    """Change where a person sits (company, department, manager, language,
    teams, functions) and apply what follows: the courses of units they join
    and the rules they come to match (or stop matching)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not a profile field: {', '.join(sorted(unknown))}")
    before = rules_snapshot(user_ids=[user.pk])
    joined: list[Target] = []
    placed = {name: changes.pop(name) for name in PLACEMENT_FIELDS if name in changes}
    if placed:
        was = Placement.objects.filter(user=user).values(*(f"{name}_id" for name in placed)).first() or {}
        for name, unit in placed.items():
            if unit is not None and was.get(f"{name}_id") != unit.pk:
                joined.append(Target(unit=unit))
        # update_conflicts: one statement whether or not the person has a row yet.
        Placement.objects.bulk_create(
            [Placement(user_id=user.pk, **placed)], update_conflicts=True, unique_fields=["user"], update_fields=list(placed),
        )
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
    operation_id = uuid.uuid4()  # one undo for every unit, course and rule
    for target in joined:
        plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
        plan.courses = [plan_enroll(course=c, users=User.objects.filter(pk=user.pk, is_active=True)) for c in courses_in(target.course_ids())]
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, operation_id=operation_id).items():
            totals[key] += value
    for key, value in rules_reconcile(user_ids=[user.pk], before=before, actor=actor, email_students=email_students,
                                      operation_id=operation_id).items():
        totals[key] += value
    return totals


def user_joined(*, user) -> dict[str, int]:
    """A new account: apply every rule it matches (it matched none before)."""
    return rules_reconcile(user_ids=[user.pk], before={}, actor=None)


def user_enroll_courses(*, user, courses, actor: Actor, email_students: bool = False, source: str = Source.ADMIN, reason: str = "") -> int:
    """Enroll one person in several courses at once (the user page, My Team):
    audited like batch enrollment. Returns how many enrollments were made."""
    made = 0
    with transaction.atomic():
        for course in sorted(courses, key=lambda c: c.pk):
            result = enrollment_batch_update(
                course=course, identifiers=[identifier_for(user)], action="enroll", auto_enroll=True,
                email_students=email_students, actor=actor, reason=reason, source=source,
            )
            made += sum(1 for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED))
    return made
