"""The "your access ends soon" reminder and recurring enrollments: a learner
whose enrollment a recurring rule or assignment made is renewed, not ended, so
the reminder scan leaves them out (and the course team's summary does not list
them); a learner of the same course enrolled otherwise is still reminded, and
once the rule no longer recurs the reminder comes back. Both databases."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses.models import CourseRole
from enrollments.models import Enrollment, Notification
from enrollments.services import enrollment_batch_update, enrollments_expire, enrollments_remind
from organisations.models import EnrollmentRule, UnitKind
from organisations.services import rule_apply, rule_save

from ..factories import CourseFactory, CourseRoleFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(datetime.datetime(2026, 6, 1, 9, 0))
DAY = datetime.timedelta(days=1)


def _recurring_course(platform_admin, *, ruled: list[str], by_hand: list[str], **course_fields):
    """A course with reminders 7 days ahead, a rule re-enrolling ``ruled``
    every 12 months and ``by_hand`` enrolled by a batch, every period ending in 3 days."""
    course = CourseFactory(expiry_reminder_days=7, **course_fields)
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    for name in ruled:
        UserFactory(username=name, department=dept)
    for name in by_hand:
        UserFactory(username=name)
    rule = rule_save(rule=EnrollmentRule(name="Compliance", department=dept, recur_months=12), courses=[course], actor=platform_admin)
    rule_apply(rule=rule, actor=platform_admin)
    enrollment_batch_update(course=course, identifiers=by_hand, action="enroll", auto_enroll=True, email_students=False, actor=None)
    Enrollment.objects.filter(course=course).update(access_until=NOW + 3 * DAY)
    return course, rule


def _reminded():
    return sorted(Notification.objects.filter(kind=Notification.Kind.EXPIRING).values_list("recipient", flat=True))


def test_a_recurring_learner_gets_no_reminder_and_gets_it_back_once_the_rule_stops_recurring(platform_admin):
    course, rule = _recurring_course(platform_admin, ruled=["ruled"], by_hand=["byhand"], expiry_reminder_team=True)
    staff = CourseRoleFactory(course=course, role=CourseRole.Role.STAFF).user
    assert enrollments_remind(now=NOW).summary() == {"learners": 1, "team_summaries": 1}
    assert _reminded() == ["byhand@example.com"]
    summary = Notification.objects.get(kind=Notification.Kind.EXPIRING_TEAM, recipient=staff.email).body
    assert "byhand" in summary and "ruled" not in summary
    assert enrollments_remind(now=NOW + DAY).learners == 0  # still renews: still left out

    EnrollmentRule.objects.filter(pk=rule.pk).update(recur_months=None)  # no longer recurs: the access will end
    assert enrollments_remind(now=NOW + DAY).learners == 1
    assert _reminded() == ["byhand@example.com", "ruled@example.com"]


def test_the_reminder_leaves_out_exactly_whom_the_expiry_run_renews(platform_admin):
    course, _rule = _recurring_course(platform_admin, ruled=["ruled"], by_hand=["byhand"])
    enrollments_remind(now=NOW)
    run = enrollments_expire(now=NOW + 3 * DAY)
    assert (run.ended, run.renewed) == (1, 1)
    reminded = set(_reminded())
    ended = {e.user.email for e in Enrollment.objects.filter(course=course, is_active=False).select_related("user")}
    assert reminded == ended == {"byhand@example.com"}


def test_recurring_learners_cost_the_scan_the_same_queries_for_few_and_many(platform_admin):
    def queries_for(count):
        Notification.objects.all().delete()
        Enrollment.objects.all().delete()
        _recurring_course(platform_admin, ruled=[f"r{count}_{i}" for i in range(count)], by_hand=[f"h{count}_{i}" for i in range(count)])
        with CaptureQueriesContext(connection) as queries:
            assert enrollments_remind(now=NOW).learners == count
        return len(queries)

    assert queries_for(2) == queries_for(6)
