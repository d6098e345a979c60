"""Undo and enrollment periods: undo puts back the period an operation changed
(from its audit rows' ``access_*_before``), leaves it alone where a row
recorded the state only, notices a period changed since, and says when the
people it enrolls again have a period that has ended (an undone expiry): their
end is removed, so that the access is theirs again and the next expiry run
leaves them enrolled."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments import periods
from enrollments.models import Enrollment, EnrollmentAudit, RosterAction, Source, State
from enrollments.services import enrollments_expire, roster_apply
from enrollments.services.undo import operation_undo, undo_preview
from enrollments.services.undo_decide import Current, OperationRow, UndoRequest, undo_decide

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


def test_undoing_an_expiry_gives_the_access_back_and_the_next_run_leaves_it(client_for, course, course_admin):
    now = timezone.now()
    start, ended = now - 30 * DAY, now - DAY
    lea = make(course, "lea", access_from=start, access_until=ended)
    sam = make(course, "sam", access_until=ended)
    run = enrollments_expire(now=now)
    operation = run.ended_operations[course.pk]
    page = client_for(course_admin).get(reverse("operation_undo", args=[course.key, operation])).content.decode()
    assert 'id="undo-end-removed"' in page and "2 of them get their access back" in page and "lea, sam" in page
    assert f"access {periods_text(start, ended)} → {periods_text(start, None)}" in page

    response = client_for(course_admin).post(reverse("operation_undo", args=[course.key, operation]), follow=True)
    assert "2 people got their access back" in response.content.decode()
    lea.refresh_from_db(), sam.refresh_from_db()
    assert (lea.is_active, lea.access_from, lea.access_until) == (True, start, None)
    assert (sam.is_active, sam.access_until) == (True, None)
    assert enrollments_expire(now=timezone.now() + DAY).ended == 0  # the undo sticks
    assert periods.status(is_active=True, access_from=lea.access_from, access_until=None, now=timezone.now()) == periods.ACTIVE
    undo = EnrollmentAudit.objects.get(source=Source.UNDO, identifier="lea")
    assert (undo.state_before, undo.state_after) == (State.UNENROLLED, State.ENROLLED)
    assert (undo.access_from_before, undo.access_until_before, undo.access_from_after, undo.access_until_after) == (start, ended, start, None)

    # Undoing the undo puts the ended period back, and the enrollment is ended again.
    again = undo_preview(course=course, operation_id=undo.operation_id)
    assert not again.plan.end_removed
    operation_undo(course=course, operation_id=undo.operation_id, actor=course_admin)
    lea.refresh_from_db()
    assert (lea.is_active, lea.access_from, lea.access_until) == (False, start, ended)


def test_an_undo_that_keeps_someone_enrolled_puts_an_ended_period_back_as_it_was(course, course_admin):
    # Extended after the end, then the extension undone: still enrolled, so the
    # period goes back as it was and the expiry run ends it (undo restores what was).
    now = timezone.now()
    kim = make(course, "kim", access_until=now - DAY)
    done = extend(course, course_admin, [kim], extend_days=10)
    preview = operation_undo(course=course, operation_id=done.operation_id, actor=course_admin)
    assert not preview.plan.end_removed
    kim.refresh_from_db()
    assert kim.access_until == now - DAY


def test_the_undo_decides_to_remove_only_an_end_that_has_passed_for_someone_it_enrolls_again():
    now = timezone.now()
    operation, later_end = uuid.uuid4(), now + 5 * DAY
    rows = [
        OperationRow(id=1, created=now - DAY, key=("user", 1), user_id=1, identifier="past", state_before=State.ENROLLED,
                     state_after=State.UNENROLLED, access_until_before=now - DAY, access_until_after=now - DAY),
        OperationRow(id=2, created=now - DAY, key=("user", 2), user_id=2, identifier="future", state_before=State.ENROLLED,
                     state_after=State.UNENROLLED, access_until_before=later_end, access_until_after=later_end),
    ]
    current = {("user", 1): Current(State.UNENROLLED, mode="audit", access_until=now - DAY),
               ("user", 2): Current(State.UNENROLLED, mode="audit", access_until=later_end)}
    request = UndoRequest(course_id=1, operation_id=operation, undo_operation_id=uuid.uuid4(), actor_id=None, now=now, default_mode="audit")
    plan = undo_decide(request=request, rows=rows, later={}, current=current, cohorts=set())
    assert plan.end_removed == ["past"]
    assert {row["user_id"]: row["access_until"] for row in plan.enrollments_to_upsert} == {1: None, 2: later_end}


def test_a_learners_story_shows_the_expired_period_then_the_access_given_back(client_for, course, course_admin):
    from enrollments.selectors.history import period_lines

    now = timezone.now()
    lea = make(course, "lea", access_from=now - 30 * DAY, access_until=now - DAY)
    sam = make(course, "sam", access_until=now - DAY)  # no start: the undo's row records an end removed, nothing else
    run = enrollments_expire(now=now)
    operation_undo(course=course, operation_id=run.ended_operations[course.pk], actor=course_admin)
    for person, start in ((lea, now - 30 * DAY), (sam, None)):
        person.refresh_from_db()
        lines = period_lines(list(EnrollmentAudit.objects.filter(user=person.user)), person, timezone.now())
        assert [(line.access_from, line.access_until, line.ended) for line in lines] == [
            (start, now - DAY, "ended"), (start, None, "still current"),
        ]


def test_a_large_undo_of_an_expiry_gives_the_access_back_and_its_page_says_so(client_for, course, course_admin, settings,
                                                                               django_capture_on_commit_callbacks):
    from enrollments.models import UndoJob
    from enrollments.services.undo import undo_start

    settings.ENROLLMENT_SYNC_LIMIT = 1  # anything over one person is a job
    now = timezone.now()
    learners = [make(course, name, access_until=now - DAY) for name in ("ann", "bob")]
    run = enrollments_expire(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        job = undo_start(course=course, operation_id=run.ended_operations[course.pk], actor=course_admin)
    assert isinstance(job, UndoJob)
    job.refresh_from_db()
    assert job.summary == {"restored": 2, "unchanged": 0, "left_alone": 0, "end_removed": 2}
    assert set(Enrollment.objects.filter(pk__in=[e.pk for e in learners]).values_list("is_active", "access_until")) == {(True, None)}
    page = client_for(course_admin).get(reverse("undo_job_status", args=[course.key, job.public_id])).content.decode()
    assert "2 people got their access back" in page
