"""Enrollment rules: saving a rule (with a preview of what it would do),
applying it over everyone, and reconciling the rules after people change."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.types import Actor
from enrollment_site.lib.jobs import JobRun
from enrollments.models import Source

from .. import reasons
from ..models import EnrollmentRule
from ..selectors.plans import CoursePlan, Plan, plan_enroll, plan_unenroll, rule_plan
from ..selectors.targets import rule_users
from .plans import dry_run, plan_execute

User = get_user_model()


def rules_reconcile(*, user_ids: list[int], before: dict[int, set[int]], actor: Actor, email_students: bool = False,
                    operation_id: uuid.UUID | None = None) -> dict[str, int]:
    """After a change to ``user_ids`` (new accounts, units, attributes): enroll
    those who came to match a rule, and unenroll (where the rule says so) those
    who stopped matching, audited under ``operation_id`` (the change's own, so
    that its undo takes this back too; a new one if not given). Queries grow
    with the number of rules and courses."""
    operation_id = operation_id or uuid.uuid4()
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
        for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, reason=reasons.RULE % {"rule": rule.name},
                                       operation_id=operation_id).items():
            totals[key] += value
    return totals


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
        return dry_run(lambda: _rule_write(rule, courses), lambda: rule_plan(rule=rule))
    finally:
        # the rolled-back insert must not leave its id on the unsaved rule
        rule.pk, rule._state.adding = pk, adding


@transaction.atomic
def rule_save(*, rule: EnrollmentRule, courses, actor: Actor) -> EnrollmentRule:
    """Create or change a rule. The enrollments follow with :func:`rule_apply`."""
    if rule.pk is None:
        rule.created_by = actor
    return _rule_write(rule, courses)


def rule_apply(*, rule: EnrollmentRule, actor: Actor, email_students: bool = False, run: JobRun | None = None,
               operation_id: uuid.UUID | None = None) -> dict[str, int]:
    """Evaluate a saved rule over everyone: idempotent (a job taken over
    evaluates it again and carries on with what is left, under the same
    ``operation_id``), set-based, one operation in every course."""
    if not rule.is_active:
        return {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    return plan_execute(plan=rule_plan(rule=rule), actor=actor, email_students=email_students, run=run, operation_id=operation_id)

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
