"""Recurring enrollment for compliance: what an assignment or a rule that
says "re-enroll every N months" made is renewed by the expiry run instead of
ended, period after period, each period kept in the audit trail; and the
period an assignment or rule gives the enrollments it makes."""

import datetime

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, Notification, Source, State
from enrollments.services import enrollment_batch_update
from enrollments.tasks import expire_enrollments
from organisations.models import Assignment, EnrollmentRule, UnitKind
from organisations.selectors import Target
from organisations.selectors.terms import OriginTerms, origin_terms, recurring_months
from organisations.services import assignment_apply, assignment_link, rule_apply, rule_save, unit_members_add

from ..factories import CourseFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

START = timezone.make_aware(datetime.datetime(2026, 1, 15, 10, 0))

def _link(target, course, actor, **terms):
    assignment = assignment_link(target=target, course=course, actor=actor)
    Assignment.objects.filter(pk=assignment.pk).update(**terms)
    return assignment


def test_a_recurring_assignment_renews_every_year_for_three_years_and_keeps_each_period(platform_admin):
    course = CourseFactory(display_name="Annual safety")
    team = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    member, outsider = UserFactory(username="member"), UserFactory(username="outsider")
    with time_machine.travel(START, tick=False):
        unit_members_add(target=team, users=[member], actor=platform_admin)
        _link(team, course, platform_admin)
        assignment_apply(target=team, course=course, actor=platform_admin)
        Assignment.objects.update(recur_months=12)
        enrollment_batch_update(course=course, identifiers=["outsider"], action="enroll", auto_enroll=True, email_students=False, actor=None)
        # The first period of a year (what the assignment's terms ask the batch for).
        Enrollment.objects.filter(course=course).update(access_until=START.replace(year=2027))

    ends = [START.replace(year=year) for year in (2027, 2028, 2029)]
    for end in ends:
        with time_machine.travel(end - datetime.timedelta(seconds=1), tick=False):
            assert expire_enrollments() == {"ended": 0, "renewed": 0}
        with time_machine.travel(end, tick=False):
            assert expire_enrollments() == {"ended": 1 if end == ends[0] else 0, "renewed": 1}

    renewal = Enrollment.objects.get(user=member, course=course)
    assert renewal.is_active
    assert (renewal.access_from, renewal.access_until) == (START.replace(year=2029), START.replace(year=2030))
    assert not Enrollment.objects.get(user=outsider, course=course).is_active  # not recurring: ended
    periods = list(
        EnrollmentAudit.objects.filter(user=member, source=Source.RENEWAL).order_by("created", "id")
        .values_list("state_before", "state_after", "access_until_before", "access_from_after", "access_until_after")
    )
    assert periods == [
        (State.ENROLLED, State.ENROLLED, end, end, end.replace(year=end.year + 1)) for end in ends
    ]
    notes = Notification.objects.filter(kind=Notification.Kind.RENEWED, recipient=member.email).order_by("id")
    assert notes.count() == 3
    assert f"until {START.replace(year=2030):%-d %B %Y}" in notes.last().body


def test_a_run_after_a_long_pause_starts_the_period_that_holds_now(platform_admin):
    course = CourseFactory()
    team = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    member = UserFactory()
    unit_members_add(target=team, users=[member], actor=platform_admin)
    _link(team, course, platform_admin)
    assignment_apply(target=team, course=course, actor=platform_admin)
    # Enrolled by a unit that renews every six months; then the task did not run for 14 months.
    Assignment.objects.update(recur_months=6)
    Enrollment.objects.filter(user=member).update(access_until=START)
    with time_machine.travel(START.replace(year=2027, month=3), tick=False):
        assert expire_enrollments() == {"ended": 0, "renewed": 1}
    enrollment = Enrollment.objects.get(user=member)
    assert (enrollment.access_from, enrollment.access_until) == (START.replace(year=2027), START.replace(year=2027, month=7))


def test_a_recurring_rule_renews_what_it_made_and_ends_what_others_made(platform_admin):
    course = CourseFactory()
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    ruled = UserFactory(username="ruled", department=dept)
    by_hand = UserFactory(username="byhand")
    rule = rule_save(rule=EnrollmentRule(name="Compliance", department=dept, recur_months=12), courses=[course], actor=platform_admin)
    EnrollmentRule.objects.filter(pk=rule.pk).update(recur_months=None)  # the first enrollment without a period: the batch's
    rule_apply(rule=rule, actor=platform_admin)
    EnrollmentRule.objects.filter(pk=rule.pk).update(recur_months=12)
    enrollment_batch_update(course=course, identifiers=["byhand"], action="enroll", auto_enroll=True, email_students=False, actor=None)
    Enrollment.objects.filter(course=course).update(access_until=START)
    with time_machine.travel(START, tick=False):
        assert expire_enrollments() == {"ended": 1, "renewed": 1}
    assert Enrollment.objects.get(user=ruled).is_active
    assert not Enrollment.objects.get(user=by_hand).is_active


def test_terms_reach_a_qualifications_courses_through_its_assignment(platform_admin):
    first, second = CourseFactory(), CourseFactory()
    qualification = OrgUnitFactory(kind=UnitKind.QUALIFICATION)
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    assignment_link(target=Target(unit=qualification), course=first, actor=platform_admin)
    assignment_link(target=Target(unit=qualification), course=second, actor=platform_admin)
    linked = assignment_link(target=Target(unit=dept), qualification=qualification, actor=platform_admin)
    Assignment.objects.filter(pk=linked.pk).update(duration_days=90, recur_months=12)
    terms = origin_terms()
    assert terms == {(f"unit:{dept.pk}", first.pk): OriginTerms(90, 12), (f"unit:{dept.pk}", second.pk): OriginTerms(90, 12)}


def test_nothing_recurring_costs_the_expiry_run_two_small_queries(django_assert_num_queries):
    with django_assert_num_queries(2):  # the rules and the assignments that recur: none
        assert recurring_months([(1, 2, 3)]) == {}


@pytest.mark.parametrize(("field", "value"), [("duration_days", 0), ("duration_days", 3651), ("recur_months", 0), ("recur_months", 121)])
def test_the_database_refuses_terms_out_of_range(field, value):
    rule = EnrollmentRule.objects.create(name="R")
    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentRule.objects.filter(pk=rule.pk).update(**{field: value})


def test_an_assignment_with_a_duration_gives_its_members_that_period(platform_admin):
    course = CourseFactory(default_duration_days=365)
    team = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    member = UserFactory()
    unit_members_add(target=team, users=[member], actor=platform_admin)
    _link(team, course, platform_admin, duration_days=30)
    with time_machine.travel(START, tick=False):
        assignment_apply(target=team, course=course, actor=platform_admin)
    assert Enrollment.objects.get(user=member).access_until == START + datetime.timedelta(days=30)


def test_a_recurring_assignment_without_a_duration_gives_a_first_period_of_its_months(platform_admin):
    course = CourseFactory()
    team = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    member = UserFactory()
    _link(team, course, platform_admin, recur_months=12)
    with time_machine.travel(START, tick=False):
        unit_members_add(target=team, users=[member], actor=platform_admin)
    assert Enrollment.objects.get(user=member).access_until == START.replace(year=2027)
