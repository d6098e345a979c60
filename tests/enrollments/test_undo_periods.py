"""Undo and enrollment periods: undo puts back the period an operation changed
(from its audit rows' ``access_*_before``), leaves it alone where a row
recorded the state only, notices a period changed since, and says when the
people it enrolls again have a period that has ended (an undone expiry)."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments import periods
from enrollments.models import Enrollment, EnrollmentAudit, RosterAction, Source, State
from enrollments.services import roster_apply
from enrollments.services.undo import operation_undo, undo_preview

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def make(course, name, **fields):
    return EnrollmentFactory(course=course, user=UserFactory(username=name), **fields)


def extend(course, actor, enrollments, **options):
    return roster_apply(actor=actor, course=course, action=RosterAction.EXTEND, enrollment_ids=[e.pk for e in enrollments], **options)


def test_undoing_an_extension_puts_back_the_end_and_the_state(course, course_admin):
    now = timezone.now()
    running = make(course, "running", access_from=now - 10 * DAY, access_until=now + 5 * DAY)
    expired = make(course, "expired", is_active=False, access_until=now - 3 * DAY)
    done = extend(course, course_admin, [running, expired], extend_days=30)
    preview = undo_preview(course=course, operation_id=done.operation_id)
    descriptions = {r.identifier: r.description for r in preview.plan.restores}
    assert descriptions["expired"].startswith("enrolled → unenrolled; access … – ")
    assert descriptions["running"] == (
        f"access {periods_text(running.access_from, running.access_until + 30 * DAY)} → {periods_text(running.access_from, running.access_until)}"
    )
    operation_undo(course=course, operation_id=done.operation_id, actor=course_admin)
    running.refresh_from_db(), expired.refresh_from_db()
    assert (running.is_active, running.access_from, running.access_until) == (True, now - 10 * DAY, now + 5 * DAY)
    assert (expired.is_active, expired.access_until) == (False, now - 3 * DAY)
    undo_rows = EnrollmentAudit.objects.filter(source=Source.UNDO, identifier="running").get()
    assert (undo_rows.access_until_before, undo_rows.access_until_after) == (now + 35 * DAY, now + 5 * DAY)


def periods_text(start, end):
    from enrollments.services.undo_decide import period_text

    return period_text((start, end))


def test_undoing_the_undo_gives_the_extension_back(course, course_admin):
    now = timezone.now()
    running = make(course, "running", access_until=now + 5 * DAY)
    done = extend(course, course_admin, [running], extend_until=now + 90 * DAY)
    undo = operation_undo(course=course, operation_id=done.operation_id, actor=course_admin)
    operation_undo(course=course, operation_id=undo.undo_operation_id, actor=course_admin)
    running.refresh_from_db()
    assert running.access_until == now + 90 * DAY


def test_a_row_that_recorded_the_state_only_leaves_the_period_alone(course, course_admin):
    now = timezone.now()
    kim = make(course, "kim", is_active=False, access_until=now + 20 * DAY)
    # An unenroll audited before unenrolls recorded the period they ended: the state only.
    operation = uuid.uuid4()
    EnrollmentAudit.objects.create(course=course, user=kim.user, identifier="kim", state_before=State.ENROLLED, state_after=State.UNENROLLED,
                                   source=Source.ROSTER, operation_id=operation, created=now - DAY)
    # moved outside the audit trail: not a period the operation recorded, so not "changed since"
    Enrollment.objects.filter(pk=kim.pk).update(access_until=now + 40 * DAY)
    operation_undo(course=course, operation_id=operation, actor=course_admin)
    kim.refresh_from_db()
    assert (kim.is_active, kim.access_until) == (True, now + 40 * DAY)


def test_undoing_an_unenroll_enrolls_again_with_the_period_it_recorded(course, course_admin):
    now = timezone.now()
    kim, lou = make(course, "kim", access_until=now + 20 * DAY), make(course, "lou", access_until=now + 20 * DAY)
    done = roster_apply(actor=course_admin, course=course, action=RosterAction.UNENROLL, enrollment_ids=[kim.pk, lou.pk], email_students=False)
    # moved outside the audit trail after the unenroll recorded it: changed since, left alone
    Enrollment.objects.filter(pk=lou.pk).update(access_until=now + 40 * DAY)
    result = operation_undo(course=course, operation_id=done.operation_id, actor=course_admin)
    kim.refresh_from_db(), lou.refresh_from_db()
    assert (kim.is_active, kim.access_until) == (True, now + 20 * DAY)
    assert (lou.is_active, lou.access_until) == (False, now + 40 * DAY)
    assert [item.identifier for item in result.plan.left_alone] == ["lou"]


def test_a_period_changed_since_is_noticed_and_left_alone(course, course_admin):
    now = timezone.now()
    ann, bob = make(course, "ann", access_until=now + 5 * DAY), make(course, "bob", access_until=now + 5 * DAY)
    done = extend(course, course_admin, [ann, bob], extend_days=10)
    extend(course, course_admin, [ann], extend_days=10)  # audited: a later change
    Enrollment.objects.filter(pk=bob.pk).update(access_until=now + 99 * DAY)  # not audited
    preview = undo_preview(course=course, operation_id=done.operation_id)
    why = {p.identifier: p.why for p in preview.plan.left_alone}
    assert why["ann"].startswith(f"changed since by {course_admin.username} at ")
    assert why["bob"] == "changed since, outside the audit trail: not as the operation left it"
    assert not preview.plan.restores


def test_undoing_an_expiry_enrolls_again_with_the_ended_period_and_the_preview_says_so(client_for, course, course_admin):
    now = timezone.now()
    ended = now - DAY
    lea = make(course, "lea", is_active=False, access_until=ended)
    operation = uuid.uuid4()
    # What the expiry task writes: the row ended, audited under one operation, the state only.
    EnrollmentAudit.objects.create(course=course, user=lea.user, identifier="lea", state_before=State.ENROLLED, state_after=State.UNENROLLED,
                                   source=Source.EXPIRY, operation_id=operation, created=now - DAY / 2)
    page = client_for(course_admin).get(reverse("operation_undo", args=[course.key, operation])).content.decode()
    assert 'id="undo-ended"' in page and "they stay expired" in page and "lea" in page
    operation_undo(course=course, operation_id=operation, actor=course_admin)
    lea.refresh_from_db()
    assert lea.is_active and lea.access_until == ended
    assert periods.status(is_active=lea.is_active, access_from=lea.access_from, access_until=lea.access_until, now=timezone.now()) == periods.EXPIRED
