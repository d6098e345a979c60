"""The learners table's actions (``roster_apply``): audit rows, emails once,
nothing changed on a refusal, other courses' rows refused, a fixed number of
queries per chunk, and the job above ENROLLMENT_SYNC_LIMIT."""

import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courses.models import Cohort, CohortMembership
from courses.services import cohort_assign
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, RosterJob, Source, State
from enrollments.services import RosterAction, roster_apply, roster_job_run
from enrollments.services import roster as roster_module
from tests.factories import AllowanceFactory, CohortFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def enroll(course, username, **kw):
    return EnrollmentFactory(course=course, user=UserFactory(username=username, email=f"{username}@example.com"), **kw)


def state(enrollment):
    enrollment.refresh_from_db()
    return enrollment.is_active, enrollment.mode


# --- each action: the change, its audit row, its emails ------------------------------------


def test_unenroll_deactivates_audits_with_reason_and_mails_once(course, course_staff, django_capture_on_commit_callbacks):
    kim, lea = enroll(course, "kim"), enroll(course, "lea", is_active=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = roster_apply(actor=course_staff, course=course, action=RosterAction.UNENROLL, enrollment_ids=[kim.pk, lea.pk], reason="Left the company")
    assert (result.changed, result.unchanged, result.refused, result.job) == (1, 1, [], None)
    assert state(kim) == (False, "audit") and state(lea) == (False, "audit")
    audit = EnrollmentAudit.objects.get(course=course)
    assert (audit.user, audit.actor, audit.identifier, audit.state_before, audit.state_after) == (kim.user, course_staff, "kim", State.ENROLLED, State.UNENROLLED)
    assert (audit.source, audit.reason, audit.operation_id) == (Source.ROSTER, "Left the company", result.operation_id)
    assert (audit.mode_before, audit.mode_after) == ("audit", "audit")
    assert len(callbacks) == 1
    assert [m.to for m in mail.outbox] == [["kim@example.com"]]
    assert "Left the company" in mail.outbox[0].body


def test_unenroll_removes_the_learners_allowance_as_the_batch_does(course, course_staff):
    kim = enroll(course, "kim")
    AllowanceFactory(course=course, email="KIM@example.com")
    kept = AllowanceFactory(course=course, email="other@example.com")
    roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[kim.pk], email_students=False)
    assert list(Allowance.objects.filter(course=course)) == [kept]


def test_enroll_again_reactivates_with_the_mode_kept_and_mails(course, course_staff, django_capture_on_commit_callbacks):
    kim = enroll(course, "kim", is_active=False, mode="verified")
    created = Enrollment.objects.get(pk=kim.pk).created
    with django_capture_on_commit_callbacks(execute=True):
        result = roster_apply(actor=course_staff, course=course, action="enroll_again", enrollment_ids=[kim.pk])
    assert result.changed == 1
    assert state(kim) == (True, "verified") and kim.created == created and kim.source == Source.BATCH
    audit = EnrollmentAudit.objects.get(course=course)
    assert (audit.state_before, audit.state_after, audit.mode_before, audit.mode_after) == (State.UNENROLLED, State.ENROLLED, "verified", "verified")
    assert [m.to for m in mail.outbox] == [["kim@example.com"]]


def test_change_mode_records_the_mode_before_and_after_and_sends_nothing(course, course_admin, django_capture_on_commit_callbacks):
    kim, lea = enroll(course, "kim"), enroll(course, "lea", mode="verified")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = roster_apply(actor=course_admin, course=course, action="change_mode", enrollment_ids=[kim.pk, lea.pk], mode="verified", reason="Paid")
    assert (result.changed, result.unchanged) == (1, 1)
    assert state(kim) == (True, "verified")
    audit = EnrollmentAudit.objects.get(course=course)
    assert (audit.user, audit.state_before, audit.state_after, audit.mode_before, audit.mode_after, audit.reason) == (
        kim.user, State.ENROLLED, State.ENROLLED, "audit", "verified", "Paid",
    )
    assert callbacks == [] and mail.outbox == [] and not Notification.objects.exists()


def test_move_to_a_cohort_and_back_to_none_records_both_names(course, course_staff):
    kim, lea = enroll(course, "kim"), enroll(course, "lea")
    red, blue = CohortFactory(course=course, name="Red"), CohortFactory(course=course, name="Blue")
    cohort_assign(course=course, cohort_name="Red", users=[kim.user])
    result = roster_apply(actor=course_staff, course=course, action="move_cohort", enrollment_ids=[kim.pk, lea.pk], cohort=blue)
    assert result.changed == 2
    assert set(CohortMembership.objects.filter(course=course).values_list("user__username", "cohort")) == {("kim", blue.pk), ("lea", blue.pk)}
    moves = {a.identifier: (a.cohort_before, a.cohort_after) for a in EnrollmentAudit.objects.filter(course=course)}
    assert moves == {"kim": ("Red", "Blue"), "lea": ("", "Blue")}

    result = roster_apply(actor=course_staff, course=course, action="move_cohort", enrollment_ids=[kim.pk], cohort=None)
    assert result.changed == 1
    assert not CohortMembership.objects.filter(course=course, user=kim.user).exists()
    assert EnrollmentAudit.objects.filter(course=course, identifier="kim", cohort_before="Blue", cohort_after="").count() == 1
    assert red.memberships.count() == 0


def test_nothing_to_change_writes_nothing(course, course_staff):
    kim = enroll(course, "kim")
    result = roster_apply(actor=course_staff, course=course, action="enroll_again", enrollment_ids=[kim.pk, kim.pk])
    assert (result.changed, result.unchanged) == (0, 1)
    assert not EnrollmentAudit.objects.exists() and not Notification.objects.exists()


# --- refusals: nothing changed, and why ------------------------------------------------------


def test_another_courses_enrollment_refuses_the_whole_action(course, course_staff):
    other = CourseFactory()
    kim, theirs = enroll(course, "kim"), enroll(other, "secretname")
    result = roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[kim.pk, theirs.pk, 999_999])
    assert (result.changed, result.refused_count) == (0, 2)
    assert result.refused == [
        f"row {theirs.pk}: not an enrollment of this course (removed, or of another course)",
        "row 999999: not an enrollment of this course (removed, or of another course)",
    ]
    assert "secretname" not in " ".join(result.refused)
    assert state(kim) == (True, "audit") and state(theirs) == (True, "audit")
    assert not EnrollmentAudit.objects.exists() and not Notification.objects.exists()


def test_a_deactivated_account_refuses_enroll_again_and_nothing_changes(course, course_staff):
    kim = enroll(course, "kim", is_active=False)
    gone = enroll(course, "gone", is_active=False)
    gone.user.is_active = False
    gone.user.save()
    result = roster_apply(actor=course_staff, course=course, action="enroll_again", enrollment_ids=[kim.pk, gone.pk])
    assert result.refused == ["gone: the account is deactivated, so it cannot be enrolled again"]
    assert state(kim) == (False, "audit")
    assert not EnrollmentAudit.objects.exists()


@pytest.mark.parametrize(("kw", "message"), [
    ({"action": "delete"}, "Unknown action 'delete'"),
    ({"action": "change_mode", "mode": "professional"}, "professional is not one of this course's modes (audit, verified)"),
    ({"action": "change_mode"}, "No mode is not one of this course's modes"),
    ({"action": "unenroll", "enrollment_ids": []}, "Choose at least one learner"),
    ({"action": "unenroll", "enrollment_ids": ["1; DROP TABLE"]}, "not a row of the learners table"),
])
def test_bad_requests_are_refused_with_a_message(course, course_staff, kw, message):
    kim = enroll(course, "kim")
    kw = {"enrollment_ids": [kim.pk], **kw}
    with pytest.raises(ValidationError, match=re.escape(message)):
        roster_apply(actor=course_staff, course=course, **kw)
    assert state(kim) == (True, "audit") and not EnrollmentAudit.objects.exists()


def test_another_courses_cohort_is_refused(course, course_staff):
    kim = enroll(course, "kim")
    theirs = CohortFactory(name="Theirs")
    with pytest.raises(ValidationError, match="The cohort Theirs is not one of this course's"):
        roster_apply(actor=course_staff, course=course, action="move_cohort", enrollment_ids=[kim.pk], cohort=theirs)
    assert not CohortMembership.objects.exists()


def test_only_the_course_team_may_act(course, other_staff, learner):
    kim = enroll(course, "kim")
    for actor in (other_staff, learner, None):
        with pytest.raises(PermissionDenied):
            roster_apply(actor=actor, course=course, action="unenroll", enrollment_ids=[kim.pk])
    assert state(kim) == (True, "audit")


# --- a fixed number of queries per chunk ---------------------------------------------------------


def _queries(course, actor, action, ids, **kw):
    with CaptureQueriesContext(connection) as ctx:
        result = roster_apply(actor=actor, course=course, action=action, enrollment_ids=ids, **kw)
    assert result.changed == len(ids)
    return len(ctx.captured_queries)


@pytest.mark.postgresql  # SQLite splits bulk statements by its parameter limit
@pytest.mark.parametrize("action", ["unenroll", "enroll_again", "change_mode", "move_cohort"])
def test_query_count_does_not_grow_with_the_number_of_rows(action, course_staff):
    counts = []
    for size in (5, 500):
        course = CourseFactory(modes="audit,verified")
        # course_staff manages ``course`` only; the counts are for a platform-free actor of each course.
        from courses.models import CourseRole

        CourseRole.objects.create(course=course, user=course_staff, role=CourseRole.Role.STAFF)
        users = UserFactory.create_batch(size, verified=False)
        Enrollment.objects.bulk_create([Enrollment(course=course, user=u, is_active=action != "enroll_again") for u in users])
        ids = list(Enrollment.objects.filter(course=course).values_list("pk", flat=True))
        AllowanceFactory.create_batch(3, course=course)
        cohort = CohortFactory(course=course)
        counts.append(_queries(course, course_staff, action, ids, mode="verified", cohort=cohort))
    assert counts[0] == counts[1], counts


# --- above ENROLLMENT_SYNC_LIMIT: a job ---------------------------------------------------------------


def test_a_large_selection_runs_as_a_job_in_chunks(course, course_staff, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 3
    monkeypatch.setattr(roster_module, "ROSTER_CHUNK", 2)
    rows = [enroll(course, f"u{i}") for i in range(5)]
    rows[4].is_active = False
    rows[4].save()
    with django_capture_on_commit_callbacks(execute=True):
        result = roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[r.pk for r in rows], reason="Course closed")
    job = result.job
    assert job is not None and result.changed == 0
    job.refresh_from_db()
    assert (job.status, job.done, job.total, job.summary) == (RosterJob.Status.SUCCEEDED, 5, 5, {"changed": 4, "unchanged": 1, "refused": 0})
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
    audits = EnrollmentAudit.objects.filter(course=course)
    assert audits.count() == 4 and set(audits.values_list("operation_id", flat=True)) == {job.operation_id}
    assert set(audits.values_list("reason", flat=True)) == {"Course closed"}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"u{i}@example.com" for i in range(4))


def test_a_large_selection_with_another_courses_row_queues_nothing(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    rows = [enroll(course, f"u{i}") for i in range(3)]
    theirs = enroll(CourseFactory(), "theirs")
    result = roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[*(r.pk for r in rows), theirs.pk])
    assert result.job is None and result.refused_count == 1
    assert not RosterJob.objects.exists() and Enrollment.objects.filter(is_active=True).count() == 4


def test_a_large_enroll_again_with_a_deactivated_account_queues_nothing_and_names_it(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    kim, gone = enroll(course, "kim", is_active=False), enroll(course, "gone", is_active=False)
    gone.user.is_active = False
    gone.user.save()
    result = roster_apply(actor=course_staff, course=course, action="enroll_again", enrollment_ids=[kim.pk, gone.pk, 999_999])
    assert result.job is None and result.refused_count == 2
    assert result.refused == [
        "gone: the account is deactivated, so it cannot be enrolled again",
        "row 999999: not an enrollment of this course (removed, or of another course)",
    ]
    assert not RosterJob.objects.exists() and not Enrollment.objects.filter(is_active=True).exists()


def test_a_job_resumes_after_its_last_committed_chunk_and_counts_each_row_once(course, course_staff, settings, monkeypatch):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    monkeypatch.setattr(roster_module, "ROSTER_CHUNK", 2)
    rows = [enroll(course, f"u{i}") for i in range(4)]
    result = roster_apply(actor=course_staff, course=course, action="change_mode", mode="verified", enrollment_ids=[r.pk for r in rows])
    job = result.job
    # A worker that ran the first chunk and died: its chunk committed with position (and done) 2.
    ids = job.enrollment_ids
    Enrollment.objects.filter(pk__in=ids[:2]).update(mode="verified")
    RosterJob.objects.filter(pk=job.pk).update(status=RosterJob.Status.RUNNING, position=2, done=2, summary={"changed": 2, "unchanged": 0, "refused": 0},
                                                heartbeat_at=None, started=None, created=job.created.replace(year=2000))
    job = roster_job_run(job_id=job.pk)
    assert (job.status, job.done, job.summary) == (RosterJob.Status.SUCCEEDED, 4, {"changed": 4, "unchanged": 0, "refused": 0})
    assert EnrollmentAudit.objects.filter(course=course).count() == 2  # only the chunk it ran
    assert roster_job_run(job_id=job.pk) is None  # finished: nobody claims it again


def test_a_job_whose_requester_left_the_team_fails_and_changes_nothing(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    rows = [enroll(course, f"u{i}") for i in range(2)]
    job = roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[r.pk for r in rows]).job
    course.roles.filter(user=course_staff).delete()
    job = roster_job_run(job_id=job.pk)
    assert job.status == RosterJob.Status.FAILED and "may no longer manage the course" in job.error
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 2


def test_a_job_moving_to_a_deleted_cohort_fails(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    rows = [enroll(course, f"u{i}") for i in range(2)]
    cohort = CohortFactory(course=course, name="Gone")
    job = roster_apply(actor=course_staff, course=course, action="move_cohort", cohort=cohort, enrollment_ids=[r.pk for r in rows]).job
    cohort.delete()
    job = roster_job_run(job_id=job.pk)
    assert job.status == RosterJob.Status.FAILED and "The cohort Gone was deleted" in job.error
    assert not CohortMembership.objects.exists()


@pytest.mark.postgresql  # SQLite splits bulk statements by its parameter limit
@pytest.mark.parametrize("action", ["unenroll", "change_mode"])
def test_a_job_costs_a_fixed_number_of_queries_per_chunk(action, course, course_staff, settings, monkeypatch):
    """Queries of a job grow with its chunks only: the same count for each chunk, whatever its rows."""
    settings.ENROLLMENT_SYNC_LIMIT = 1
    monkeypatch.setattr(roster_module, "ROSTER_CHUNK", 40)

    def queries(chunks):
        users = UserFactory.create_batch(40 * chunks, verified=False)
        Enrollment.objects.bulk_create([Enrollment(course=course, user=u) for u in users])
        ids = list(Enrollment.objects.filter(course=course, user__in=users).values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as created:
            job = roster_apply(actor=course_staff, course=course, action=action, mode="verified", enrollment_ids=ids).job
        with CaptureQueriesContext(connection) as ran:
            job = roster_job_run(job_id=job.pk)
        assert job.summary["changed"] == len(ids)
        return len(created.captured_queries), len(ran.captured_queries)

    one, two, four = queries(1), queries(2), queries(4)
    per_chunk = two[1] - one[1]
    assert per_chunk > 0 and four[1] - two[1] == 2 * per_chunk, (one, two, four)
    assert four[0] - two[0] == 2 * (two[0] - one[0]), (one, two, four)  # checking the selection: one query a chunk


def test_moving_into_a_cohort_deleted_meanwhile_is_refused(course, course_staff):
    kim = enroll(course, "kim")
    cohort = CohortFactory(course=course, name="Gone")
    Cohort.objects.filter(pk=cohort.pk).delete()  # after the page offered it
    with pytest.raises(ValidationError, match="The cohort Gone was deleted meanwhile; nothing was changed."):
        roster_apply(actor=course_staff, course=course, action="move_cohort", enrollment_ids=[kim.pk], cohort=cohort)
    assert not CohortMembership.objects.exists() and not EnrollmentAudit.objects.exists()
