"""A large undo runs as a job (``undo_start``, ``undo_job_run``): Confirm over
more than ``ENROLLMENT_SYNC_LIMIT`` people queues it, it restores everyone as
the undo in the request does, a run lost after one chunk is resumed without
restoring anyone twice, its queries per chunk are fixed, and its progress page
is for the course team only (another course's job is not found)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enrollment_site.lib.jobs import JobLost
from enrollments.models import Enrollment, EnrollmentAudit, Source, UndoJob
from enrollments.services import undo as undo_module
from enrollments.services.undo import operation_undo, undo_job_run, undo_start
from tests.enrollments.test_undo_services import batch, people, rows
from tests.enrollments.test_undo_views import PERSONAS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MIXED = ["kim", "lea", "max", "ann@example.com", "new@example.com", "nobody"]


@pytest.fixture
def small_jobs(settings, monkeypatch):
    """Anything over one person is a job, restored two people per chunk."""
    settings.ENROLLMENT_SYNC_LIMIT = 1
    monkeypatch.setattr(undo_module, "UNDO_CHUNK", 2)


@pytest.mark.parametrize("action,auto_enroll", [("enroll", True), ("enroll", False), ("unenroll", True)])
def test_a_large_undo_is_a_job_that_restores_the_exact_prior_rows(course, course_staff, small_jobs, action, auto_enroll, django_capture_on_commit_callbacks):
    people(course)
    before = rows(course)
    op = batch(course, course_staff, MIXED, action=action, auto_enroll=auto_enroll)
    changed = EnrollmentAudit.objects.filter(operation_id=op).count()
    with django_capture_on_commit_callbacks(execute=True):
        job = undo_start(course=course, operation_id=op, actor=course_staff)
    assert isinstance(job, UndoJob)
    job.refresh_from_db()
    assert rows(course) == before
    assert (job.status, job.done, job.summary, job.left_alone) == (
        UndoJob.Status.SUCCEEDED, job.total, {"restored": changed, "unchanged": 0, "left_alone": 0}, [],
    )
    audits = EnrollmentAudit.objects.filter(operation_id=job.undo_operation_id)
    assert audits.count() == changed and {a.source for a in audits} == {Source.UNDO} and {a.undoes for a in audits} == {op}


def test_the_job_leaves_alone_who_changed_since_and_its_undo_can_be_undone(course, course_staff, course_admin, small_jobs, django_capture_on_commit_callbacks):
    people(course)
    for name in ("zoe", "ivy"):
        batch(course, course_admin, [UserFactory(username=name).username])
    op = batch(course, course_staff, ["kim", "zoe", "ivy"], action="unenroll")
    batch(course, course_admin, ["kim"])  # kim enrolled again by someone else since
    after_op = rows(course)
    with django_capture_on_commit_callbacks(execute=True):
        job = undo_start(course=course, operation_id=op, actor=course_staff)
    job.refresh_from_db()
    assert job.summary == {"restored": 2, "unchanged": 0, "left_alone": 1}
    assert len(job.left_alone) == 1 and job.left_alone[0].startswith("kim: ") and course_admin.username in job.left_alone[0]
    assert set(Enrollment.objects.filter(course=course, is_active=True).values_list("user__username", flat=True)) == {"kim", "zoe", "ivy"}
    undone = operation_undo(course=course, operation_id=job.undo_operation_id, actor=course_staff)
    assert undone is not None and rows(course) == after_op


def test_the_sync_limit_keeps_small_undos_in_the_request(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 6
    people(course)
    before = rows(course)
    op = batch(course, course_staff, MIXED)
    done = undo_start(course=course, operation_id=op, actor=course_staff)
    assert not isinstance(done, UndoJob) and not UndoJob.objects.exists() and rows(course) == before


def test_a_pending_job_refuses_a_second_undo(course, course_staff, small_jobs):
    op = batch(course, course_staff, [UserFactory(username=name).username for name in ("zoe", "ivy")])
    undo_start(course=course, operation_id=op, actor=course_staff)  # queued, not run
    with pytest.raises(ValidationError, match="being undone already"):
        undo_start(course=course, operation_id=op, actor=course_staff)
    with pytest.raises(ValidationError, match="being undone already"):
        operation_undo(course=course, operation_id=op, actor=course_staff)
    assert UndoJob.objects.count() == 1


def test_a_run_lost_after_one_chunk_resumes_without_restoring_twice(course, course_staff, small_jobs, monkeypatch):
    users = [UserFactory(username=f"u{i}") for i in range(5)]
    before = rows(course)
    op = batch(course, course_staff, [u.username for u in users])
    job = undo_start(course=course, operation_id=op, actor=course_staff)
    plan = undo_module._plan
    calls = []

    def dies_in_the_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise JobLost("the worker was taken for dead")
        return plan(**kwargs)

    monkeypatch.setattr(undo_module, "_plan", dies_in_the_second_chunk)
    assert undo_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.position, job.done, job.summary["restored"]) == (UndoJob.Status.RUNNING, 2, 2, 2)
    monkeypatch.setattr(undo_module, "_plan", plan)
    # Its heartbeat is stale: the next delivery takes the job over from its position.
    UndoJob.objects.filter(pk=job.pk).update(heartbeat_at=None, started=None, created=job.created.replace(year=2000))
    job = undo_job_run(job_id=job.pk)
    assert (job.status, job.done, job.summary) == (UndoJob.Status.SUCCEEDED, 5, {"restored": 5, "unchanged": 0, "left_alone": 0})
    assert rows(course) == before
    assert EnrollmentAudit.objects.filter(operation_id=job.undo_operation_id).count() == 5  # each person once
    assert undo_job_run(job_id=job.pk) is None  # finished: nobody claims it again


def test_a_job_whose_requester_left_the_team_fails_and_restores_nothing(course, course_staff, small_jobs):
    users = [UserFactory(username=f"u{i}") for i in range(3)]
    op = batch(course, course_staff, [u.username for u in users])
    job = undo_start(course=course, operation_id=op, actor=course_staff)
    course.roles.filter(user=course_staff).delete()
    job = undo_job_run(job_id=job.pk)
    assert job.status == UndoJob.Status.FAILED and "may no longer manage the course" in job.error
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 3


def _job_queries(course, actor, n):
    users = UserFactory.create_batch(n)
    op = batch(course, actor, [u.username for u in users])
    job = undo_start(course=course, operation_id=op, actor=actor, email_students=True)
    with CaptureQueriesContext(connection) as queries:
        job = undo_job_run(job_id=job.pk)
    assert job.summary["restored"] == n
    return len(queries)


def test_queries_per_chunk_are_fixed(course, course_staff, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    monkeypatch.setattr(undo_module, "UNDO_CHUNK", 3)
    # Each chunk unenrolls three accounts again (mailing them): the same writes in every chunk.
    one, two, three = (_job_queries(course, course_staff, n) for n in (3, 6, 9))
    assert two - one == three - two > 0


# --- the progress page ---------------------------------------------------------------------------

@pytest.fixture
def job(course, course_staff, small_jobs):
    users = [UserFactory(username=f"u{i}") for i in range(3)]
    op = batch(course, course_staff, [u.username for u in users])
    return undo_start(course=course, operation_id=op, actor=course_staff)


def test_confirm_over_the_limit_redirects_to_the_jobs_progress(client_for, course, course_staff, small_jobs):
    users = [UserFactory(username=f"u{i}") for i in range(3)]
    op = batch(course, course_staff, [u.username for u in users])
    response = client_for(course_staff).post(reverse("operation_undo", args=[course.key, op]))
    job = UndoJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("undo_job_status", args=[course.key, job.public_id])
    assert job.operation_id == op and job.total == 3


@pytest.mark.parametrize("persona, status", PERSONAS)
def test_the_progress_page_is_for_the_course_team(request, client_for, course, job, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    response = client_for(user).get(reverse("undo_job_status", args=[course.key, job.public_id]))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "Undo: 3 people" in page and "0 / 3" in page and "hx-trigger" in page


def test_another_courses_job_is_not_found(client_for, other_course, other_staff, job):
    assert client_for(other_staff).get(reverse("undo_job_status", args=[other_course.key, job.public_id])).status_code == 404


def test_the_polled_fragment_ends_with_the_result(client_for, course, course_staff, job):
    undo_job_run(job_id=job.pk)
    fragment = client_for(course_staff).get(reverse("undo_job_status", args=[course.key, job.public_id]), headers={"HX-Request": "true"})
    page = fragment.content.decode()
    assert fragment.status_code == 286 and "Undone: 3 people restored as before the operation." in page
    job.refresh_from_db()
    assert reverse("operation_undo", args=[course.key, job.undo_operation_id]) in page


def test_a_pending_job_is_listed_under_pending_tasks(client_for, course, course_staff, job):
    page = client_for(course_staff).get(reverse("instructor_data", args=[course.key])).content.decode()
    assert "Undo of an operation" in page and "0 / 3" in page


def test_the_admin_shows_undo_jobs_read_only(client_for, platform_admin, job):
    client = client_for(platform_admin)
    page = client.get(reverse("admin:enrollments_undojob_change", args=[job.pk])).content.decode()
    assert str(job.operation_id) in page
    assert client.get(reverse("admin:enrollments_undojob_changelist")).status_code == 200
    assert client.get(reverse("admin:enrollments_undojob_add")).status_code == 403


def test_the_sweep_takes_over_a_stopped_undo_job_on_the_bulk_queue(course, job, django_capture_on_commit_callbacks):
    from enrollment_site.celery import app
    from enrollment_site.lib.jobs import jobs_sweep

    assert app.conf.task_routes[UndoJob.task_name] == {"queue": "bulk"}
    UndoJob.objects.filter(pk=job.pk).update(status=UndoJob.Status.RUNNING, heartbeat_at=None, started=None, created=job.created.replace(year=2000))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_sweep(UndoJob) == 1
    job.refresh_from_db()
    assert (job.status, job.takeovers, job.summary["restored"]) == (UndoJob.Status.SUCCEEDED, 1, 3)
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
