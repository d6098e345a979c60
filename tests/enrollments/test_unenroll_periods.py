"""Every way that ends an enrollment records, in its audit row, the period the
enrollment had: ``access_*_before`` are its bounds when it was ended, and so
are ``access_*_after`` (the row keeps them, as an expiry records it), so that
the periods report still lists that period once the person has another."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, RosterAction, Source, State
from enrollments.periods import period_request
from enrollments.services import enrollment_accounts_unenroll, enrollment_batch_update, enrollment_self_unenroll, roster_apply
from enrollments.services.undo import operation_undo

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
START, END = NOW - timedelta(days=10), NOW + timedelta(days=50)


def enrolled(course, name, **period):
    return EnrollmentFactory(course=course, user=UserFactory(username=name), **(period or {"access_from": START, "access_until": END}))


def recorded(audit) -> tuple:
    return audit.access_from_before, audit.access_until_before, audit.access_from_after, audit.access_until_after


def ending_row(course, user) -> EnrollmentAudit:
    return EnrollmentAudit.objects.get(course=course, user=user, state_before=State.ENROLLED, state_after=State.UNENROLLED)


def test_a_batch_unenroll_records_each_period_ended(course, course_admin):
    ann, open_end = enrolled(course, "ann"), enrolled(course, "bo", access_until=END)
    gone = enrolled(course, "cy", is_active=False)  # not enrolled: nothing ends, nothing recorded
    enrollment_batch_update(course=course, identifiers=["ann", "bo", "cy"], action="unenroll", auto_enroll=False,
                            email_students=False, actor=course_admin)
    assert recorded(ending_row(course, ann.user)) == (START, END, START, END)
    assert recorded(ending_row(course, open_end.user)) == (None, END, None, END)
    assert not EnrollmentAudit.objects.filter(user=gone.user).exists()
    assert Enrollment.objects.get(pk=ann.pk).access_until == END  # the row keeps its bounds, as recorded after


def test_the_learners_table_unenroll_records_the_period(course, course_admin):
    ann = enrolled(course, "ann")
    roster_apply(actor=course_admin, course=course, action=RosterAction.UNENROLL, enrollment_ids=[ann.pk], email_students=False)
    assert recorded(ending_row(course, ann.user)) == (START, END, START, END)


def test_a_learners_table_job_records_the_period(course, course_admin, settings, django_capture_on_commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    ann, bo = enrolled(course, "ann"), enrolled(course, "bo", access_from=START)
    with django_capture_on_commit_callbacks(execute=True):
        result = roster_apply(actor=course_admin, course=course, action=RosterAction.UNENROLL, enrollment_ids=[ann.pk, bo.pk],
                              email_students=False)
    assert result.job is not None
    assert recorded(ending_row(course, ann.user)) == (START, END, START, END)
    assert recorded(ending_row(course, bo.user)) == (START, None, START, None)


def test_self_unenrollment_records_the_period(course):
    ann = enrolled(course, "ann")
    enrollment_self_unenroll(user=ann.user, course=course)
    audit = ending_row(course, ann.user)
    assert (audit.source, recorded(audit)) == (Source.SELF, (START, END, START, END))


@pytest.mark.postgresql
def test_the_one_statement_unenroll_records_the_period(course):
    ann, bo = enrolled(course, "ann"), enrolled(course, "bo", is_active=False)
    changed = enrollment_accounts_unenroll(course=course, user_ids=[ann.user_id, bo.user_id], actor=None, email_students=False,
                                           reason="No longer qualifies", operation_id=uuid.uuid4(), source=Source.RULE)
    assert changed == {ann.user_id: True}
    assert recorded(ending_row(course, ann.user)) == (START, END, START, END)


def test_undoing_an_enroll_records_the_period_it_ends(course, course_admin):
    back, new = enrolled(course, "back", is_active=False, access_until=START), UserFactory(username="new")
    given = period_request(access_from=NOW, access_until=END)
    done = enrollment_batch_update(course=course, identifiers=["back", "new"], action="enroll", auto_enroll=False,
                                   email_students=False, actor=course_admin, period=given)
    operation_undo(course=course, operation_id=done.operation_id, actor=course_admin)
    undone = {a.identifier: a for a in EnrollmentAudit.objects.filter(source=Source.UNDO)}
    # Enrolled again, then back to the former row with its former period; new, then no enrollment at all.
    assert (undone["back"].state_after, recorded(undone["back"])) == (State.UNENROLLED, (NOW, END, None, START))
    assert (undone["new"].state_after, recorded(undone["new"])) == (State.NONE, (NOW, END, None, None))
    assert not Enrollment.objects.filter(user=new).exists()
    assert Enrollment.objects.filter(pk=back.pk, is_active=False, access_until=START).exists()
