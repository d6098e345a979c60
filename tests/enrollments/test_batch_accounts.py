"""The one-statement writes of known accounts and of invitations (PostgreSQL)
write what ``enrollment_batch_update`` writes for the same people: the same
enrollments, invitations, audit entries and outbox rows, and they report the
same changes. Each course below starts in the same states (new, former,
active, an account with an invitation, invitations either way) and takes the
same request, one course through each path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.selectors import identifier_for
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, Outcome, Source
from enrollments.periods import PeriodRequest
from enrollments.services import (
    AfterWrite,
    enrollment_accounts_enroll,
    enrollment_accounts_unenroll,
    enrollment_batch_update,
    enrollment_emails_invite,
)

from ..factories import AllowanceFactory, CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]

UNTIL = timezone.now().replace(microsecond=0) + timedelta(days=60)
SOON = UNTIL - timedelta(days=57)


@pytest.fixture
def people():
    named = UserFactory(username="ana", first_name="Ana", last_name="Lima")
    nameless = UserFactory(username="bo", first_name="", last_name="")
    former, active, invited = UserFactory(username="former"), UserFactory(username="active"), UserFactory(username="invited")
    return [named, nameless, former, active, invited]


def course_in_state(people, key: str):
    """A course where ``former`` left (with a period), ``active`` is enrolled, ``invited``'s address holds an invitation, and
    two more addresses hold one each way."""
    course = CourseFactory(key=f"course-v1:Acme+{key}+2026", display_name="Same name")
    _, _, former, active, invited = people
    EnrollmentFactory(course=course, user=former, is_active=False, mode="verified", access_until=SOON)
    EnrollmentFactory(course=course, user=active)
    AllowanceFactory(course=course, email=invited.email, auto_enroll=False)
    AllowanceFactory(course=course, email="other@example.org", auto_enroll=False)
    AllowanceFactory(course=course, email="same@example.org", auto_enroll=True)
    return course


def written(course) -> dict:
    """What a course holds, without what differs by course or moment (ids, times, the operation)."""
    return {
        "enrollments": sorted(Enrollment.objects.filter(course=course).values_list(
            "user__username", "is_active", "mode", "source", "access_from", "access_until")),
        "allowances": sorted(Allowance.objects.filter(course=course).values_list(
            "email", "email_key", "auto_enroll", "created_by", "access_from", "access_until", "duration_days", "used_at")),
        "audit": sorted(EnrollmentAudit.objects.filter(course=course).values_list(
            "actor", "user", "identifier", "state_before", "state_after", "source", "reason", "mode_before", "mode_after",
            "cohort_before", "cohort_after", "access_from_before", "access_until_before", "access_from_after", "access_until_after"),
            key=repr),
        "outbox": sorted(Notification.objects.filter(course=course).values_list(
            "kind", "recipient", "recipient_key", "subject", "body", "name", "auto_enroll", "reason", "status", "access_from",
            "access_until", "duration_days"), key=repr),
    }


def test_known_accounts_and_invitations_are_written_as_the_batch_writes_them(people, django_capture_on_commit_callbacks):
    staff = UserFactory(username="staff")
    emails = ["New@Example.org", "other@example.org", "same@example.org"]
    one, other = course_in_state(people, "ONE"), course_in_state(people, "TWO")
    for course in (one, other):
        CourseRoleFactory(course=course, user=staff, role="staff")
    common = {"actor": staff, "email_students": True, "reason": "Rule: everyone", "source": Source.RULE}
    period = PeriodRequest(access_until=UNTIL)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enrolled = enrollment_accounts_enroll(course=one, user_ids=[p.pk for p in people], period=period, operation_id=_op(), **common)
        invited = enrollment_emails_invite(course=one, emails=emails, keys=[e.lower() for e in emails], auto_enroll=True,
                                           period=period, operation_id=_op(), **common)
    result = enrollment_batch_update(course=other, identifiers=[identifier_for(p) for p in people] + emails, action="enroll", auto_enroll=True,
                                     period=period, **common)

    mine, theirs = written(one), written(other)
    for name in mine:
        assert mine[name] == theirs[name], (name, set(mine[name]) ^ set(theirs[name]))
    by_outcome = {r.identifier: r.outcome for r in result.results}
    assert {p.username: (Outcome.ENROLLED if created else Outcome.REACTIVATED) for p in people if (created := enrolled.get(p.pk)) is not None} == {
        u: o for u, o in by_outcome.items() if o in (Outcome.ENROLLED, Outcome.REACTIVATED)
    }
    assert set(invited) == {e.lower() for e, o in zip(emails, [by_outcome[e] for e in emails], strict=True) if o == Outcome.ALLOWED_AUTO}
    assert len(callbacks) == 2  # each write sends its messages after commit


def test_unenrolling_known_accounts_writes_what_the_batch_writes(people):
    staff = UserFactory(username="staff")
    named, nameless, former, active, invited = people
    courses = []
    for key in ("OUT1", "OUT2"):
        course = course_in_state(people, key)
        EnrollmentFactory(course=course, user=named)
        AllowanceFactory(course=course, email=named.email, auto_enroll=True)  # enrolled and invited: both go
        AllowanceFactory(course=course, email=former.email, auto_enroll=True)  # a former learner's invitation goes
        courses.append(course)
    common = {"actor": staff, "email_students": True, "reason": "No longer qualifies: Rule: everyone", "source": Source.RULE}
    changed = enrollment_accounts_unenroll(course=courses[0], user_ids=[p.pk for p in people], operation_id=_op(), **common)
    result = enrollment_batch_update(course=courses[1], identifiers=[identifier_for(p) for p in people], action="unenroll", auto_enroll=False,
                                     **common)

    mine, theirs = written(courses[0]), written(courses[1])
    for name in mine:
        assert mine[name] == theirs[name], (name, set(mine[name]) ^ set(theirs[name]))
    assert changed == {named.pk: True, active.pk: True, former.pk: False, invited.pk: False}
    assert {r.identifier: r.outcome for r in result.results if r.outcome != Outcome.NOT_ENROLLED} == {
        "ana": Outcome.UNENROLLED, "active": Outcome.UNENROLLED, "former": Outcome.ALLOWANCE_REMOVED, "invited": Outcome.ALLOWANCE_REMOVED,
    }


def test_a_second_run_changes_nothing_and_reports_nothing(people):
    course = course_in_state(people, "AGAIN")
    for _ in range(2):
        enrolled = enrollment_accounts_enroll(course=course, user_ids=[p.pk for p in people], actor=None, email_students=False,
                                              reason="Rule: again", operation_id=_op())
        invited = enrollment_emails_invite(course=course, emails=["new@example.org"], keys=["new@example.org"], auto_enroll=True, actor=None,
                                           email_students=False, reason="Rule: again", operation_id=_op())
    assert enrolled == {} and invited == {}
    assert EnrollmentAudit.objects.filter(course=course).count() == 4 + 1  # four accounts changed once, one address invited once


def test_an_inactive_account_is_left_alone(people):
    course = CourseFactory()
    gone = UserFactory(is_active=False)
    assert enrollment_accounts_enroll(course=course, user_ids=[gone.pk], actor=None, email_students=False, reason="", operation_id=_op()) == {}
    assert not Enrollment.objects.filter(course=course).exists()


def test_writes_added_after_see_exactly_what_was_written_in_the_same_statement(people):
    """A caller's ``AfterWrite`` reads ``written``: the created and the
    reactivated enrollments, not the active one left alone."""
    from django.db import connection

    course = course_in_state(people, "AFTER")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE seen (user_id bigint, inserted boolean)")
    after = AfterWrite(", noted AS (INSERT INTO seen SELECT user_id, inserted FROM written WHERE %(after_flag)s)", {"after_flag": True})
    changed = enrollment_accounts_enroll(course=course, user_ids=[p.pk for p in people], actor=None, email_students=False,
                                         reason="", operation_id=_op(), after=after)
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, inserted FROM seen")
        seen = dict(cursor.fetchall())
    named, nameless, former, active, invited = people
    assert seen == changed == {named.pk: True, nameless.pk: True, former.pk: False, invited.pk: True}


def test_writes_added_after_must_name_their_parameters_apart():
    course = CourseFactory()
    with pytest.raises(ValueError):
        enrollment_accounts_enroll(course=course, user_ids=[UserFactory().pk], actor=None, email_students=False, reason="",
                                   operation_id=_op(), after=AfterWrite(", x AS (SELECT %(reason)s)", {"reason": "clash"}))
    assert not Enrollment.objects.filter(course=course).exists()


def _op():
    import uuid

    return uuid.uuid4()
