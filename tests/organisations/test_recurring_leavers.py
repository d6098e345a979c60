"""A recurring origin renews only the people it still takes in: someone who
leaves the unit (taken out of it, or placed in another department) or stops
matching the rule is reminded before the end and their enrollment ends like
any other, unless another recurring origin still covers them. Both databases."""

import datetime

import pytest
from django.utils import timezone

from enrollments.models import Enrollment, Notification, Source
from enrollments.services import enrollment_batch_update, enrollments_expire, enrollments_remind
from organisations.models import Assignment, EnrollmentOrigin, EnrollmentRule, UnitKind
from organisations.selectors import Target
from organisations.services import (
    assignment_apply,
    assignment_link,
    rule_apply,
    rule_save,
    unit_members_add,
    unit_members_remove,
    user_profile_update,
)

from ..factories import CourseFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(datetime.datetime(2026, 6, 1, 9, 0))
DAY = datetime.timedelta(days=1)


def _reminded():
    return sorted(Notification.objects.filter(kind=Notification.Kind.EXPIRING).values_list("recipient", flat=True))


def _active(course):
    return sorted(Enrollment.objects.filter(course=course, is_active=True).values_list("user__username", flat=True))


def _ending_soon(course):
    """Every period of ``course`` ends in 3 days; reminders go 7 days ahead."""
    Enrollment.objects.filter(course=course).update(access_until=NOW + 3 * DAY)


def _recurring_unit(platform_admin, course, kind, members):
    unit = OrgUnitFactory(kind=kind)
    target = Target(unit=unit)
    if kind == UnitKind.TEAM:
        unit_members_add(target=target, users=members, actor=platform_admin)
    else:
        for member in members:
            user_profile_update(user=member, actor=platform_admin, department=unit)
    assignment = assignment_link(target=target, course=course, actor=platform_admin)
    Assignment.objects.filter(pk=assignment.pk).update(recur_months=12)
    assignment_apply(target=target, course=course, actor=platform_admin)
    return target


@pytest.mark.parametrize("kind", [UnitKind.TEAM, UnitKind.DEPARTMENT])
def test_a_member_who_leaves_the_unit_is_reminded_and_ends_while_one_who_stays_renews(platform_admin, kind):
    course = CourseFactory(expiry_reminder_days=7)
    stays, leaves = UserFactory(username="stays"), UserFactory(username="leaves")
    target = _recurring_unit(platform_admin, course, kind, [stays, leaves])
    _ending_soon(course)
    assert enrollments_remind(now=NOW).learners == 0  # both renew: nobody is told their access ends

    if kind == UnitKind.TEAM:
        unit_members_remove(target=target, users=[leaves], actor=platform_admin)
    else:
        user_profile_update(user=leaves, actor=platform_admin, department=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    assert _active(course) == ["leaves", "stays"]  # leaving unenrolls nobody
    assert enrollments_remind(now=NOW + DAY).learners == 1
    assert _reminded() == ["leaves@example.com"]

    run = enrollments_expire(now=NOW + 3 * DAY)
    assert (run.ended, run.renewed) == (1, 1)
    assert _active(course) == ["stays"]


def test_a_leaver_still_covered_by_a_recurring_rule_keeps_renewing(platform_admin):
    course = CourseFactory(expiry_reminder_days=7)
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    covered, uncovered = UserFactory(username="covered", department=dept), UserFactory(username="uncovered")
    target = _recurring_unit(platform_admin, course, UnitKind.TEAM, [covered, uncovered])
    # Ended once by an automatic source, then enrolled again by the rule: two recurring origins for one enrollment.
    enrollment_batch_update(course=course, identifiers=["covered"], action="unenroll", auto_enroll=False, email_students=False,
                            actor=None, source=Source.UNIT)
    rule = rule_save(rule=EnrollmentRule(name="Compliance", department=dept, recur_months=12), courses=[course], actor=platform_admin)
    rule_apply(rule=rule, actor=platform_admin)
    assert set(EnrollmentOrigin.objects.filter(user=covered).values_list("origin", flat=True)) == {rule.origin, target.origin}
    unit_members_remove(target=target, users=[covered, uncovered], actor=platform_admin)
    _ending_soon(course)

    assert enrollments_remind(now=NOW).learners == 1
    assert _reminded() == ["uncovered@example.com"]
    run = enrollments_expire(now=NOW + 3 * DAY)
    assert (run.ended, run.renewed) == (1, 1)
    assert _active(course) == ["covered"]


def test_a_rule_whose_criteria_a_person_no_longer_matches_stops_renewing_them(platform_admin):
    course = CourseFactory(expiry_reminder_days=7)
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    _stays, moves = UserFactory(username="stays", department=dept), UserFactory(username="moves", department=dept)
    rule = rule_save(rule=EnrollmentRule(name="Compliance", department=dept, recur_months=12), courses=[course], actor=platform_admin)
    rule_apply(rule=rule, actor=platform_admin)
    user_profile_update(user=moves, actor=platform_admin, department=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    _ending_soon(course)
    assert _active(course) == ["moves", "stays"]  # the rule does not unenroll those who stop matching

    assert enrollments_remind(now=NOW).learners == 1
    assert _reminded() == ["moves@example.com"]
    run = enrollments_expire(now=NOW + 3 * DAY)
    assert (run.ended, run.renewed) == (1, 1)
    assert _active(course) == ["stays"]
