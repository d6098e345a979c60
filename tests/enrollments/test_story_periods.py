"""A learner's story shows their access periods over time, from the audit
trail: extended, ended by expiry or by unenrolling, renewed, still current."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments.models import EnrollmentAudit, RosterAction, Source, State
from enrollments.periods import period_request
from enrollments.selectors.history import period_lines
from enrollments.services import enrollment_batch_update, roster_apply

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def audit(course, user, before, after, source, when, start=None, end=None):
    return EnrollmentAudit.objects.create(
        course=course, user=user, identifier=user.username, state_before=before, state_after=after, source=source,
        operation_id=uuid.uuid4(), created=when, access_from_after=start, access_until_after=end,
    )


def test_periods_over_time_from_the_audit_trail(client_for, course, course_admin):
    now = timezone.now()
    user = UserFactory(username="lea")
    first = (now - 400 * DAY, now - 35 * DAY)
    second = (now - 30 * DAY, now + 335 * DAY)
    audit(course, user, State.NONE, State.ENROLLED, Source.BATCH, now - 400 * DAY, *first)
    audit(course, user, State.ENROLLED, State.UNENROLLED, Source.EXPIRY, now - 34 * DAY)
    audit(course, user, State.UNENROLLED, State.ENROLLED, Source.RENEWAL, now - 30 * DAY, *second)
    enrollment = EnrollmentFactory(course=course, user=user, access_from=second[0], access_until=second[1])
    # extended from the roster: the same period, a later end
    roster_apply(actor=course_admin, course=course, action=RosterAction.EXTEND, enrollment_ids=[enrollment.pk], extend_days=30)
    enrollment.refresh_from_db()
    lines = period_lines(list(EnrollmentAudit.objects.filter(course=course)), enrollment, timezone.now())
    assert [(line.access_from, line.access_until, line.extended, line.ended) for line in lines] == [
        (*first, 0, "ended by expiry"),
        (second[0], second[1] + 30 * DAY, 1, "still current"),
    ]
    html = client_for(course_admin).get(reverse("learner_story", args=[course.key]), {"who": "lea"}).content.decode()
    assert "Access periods" in html and ", ended by expiry</li>" in html and ", extended, still current</li>" in html
    assert f"{timezone.localtime(first[0]):%-d %b %Y}</time> – <time" in html


def test_a_period_given_without_an_audited_period_and_one_ended_by_unenrolling(course, course_admin):
    now = timezone.now()
    kim = EnrollmentFactory(course=course, user=UserFactory(username="kim"), access_until=now + 10 * DAY)
    roster_apply(actor=course_admin, course=course, action=RosterAction.UNENROLL, enrollment_ids=[kim.pk], email_students=False)
    kim.refresh_from_db()
    lines = period_lines(list(EnrollmentAudit.objects.filter(course=course)), kim, now)
    assert [(line.access_until, line.ended) for line in lines] == [(now + 10 * DAY, "not enrolled")]
    open_ended = EnrollmentFactory(course=course, user=UserFactory(username="pat"))
    assert period_lines([], open_ended, now) == []


def test_an_ended_period_made_active_again_shows_as_two(course, course_admin):
    now = timezone.now()
    lea = EnrollmentFactory(course=course, user=UserFactory(username="lea"), is_active=False, access_until=now - 2 * DAY)
    roster_apply(actor=course_admin, course=course, action=RosterAction.EXTEND, enrollment_ids=[lea.pk], extend_days=30)
    lea.refresh_from_db()
    lines = period_lines(list(EnrollmentAudit.objects.filter(course=course)), lea, timezone.now())
    assert [(line.access_until, line.ended) for line in lines] == [(now - 2 * DAY, "ended"), (lea.access_until, "still current")]


def test_a_period_ended_by_unenrolling_shows_once_when_enrolled_again(course):
    now = timezone.now()
    UserFactory(username="jo")
    first = (now - 5 * DAY, now + 50 * DAY)
    batch = {"course": course, "identifiers": ["jo"], "auto_enroll": False, "email_students": False, "actor": None}
    enrollment_batch_update(action="enroll", period=period_request(access_from=first[0], access_until=first[1]), **batch)
    enrollment_batch_update(action="unenroll", **batch)
    result = enrollment_batch_update(action="enroll", period=period_request(duration_days=30), **batch)
    lines = period_lines(list(EnrollmentAudit.objects.filter(course=course)), None, timezone.now())
    assert [(line.access_from, line.access_until, line.ended) for line in lines] == [
        (*first, "ended by unenrolling (Batch page)"), (None, result.period.access_until, "still current"),
    ]
