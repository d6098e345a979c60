"""A learners-table action above ENROLLMENT_SYNC_LIMIT run by a real Celery worker
(another process): queued on commit, run in chunks, its emails sent once."""

import pytest

from enrollments.models import Enrollment, EnrollmentAudit, Notification, RosterJob
from enrollments.services import roster_apply
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import CourseFactory, EnrollmentFactory, PlatformAdminFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60


def test_a_large_unenroll_runs_on_a_worker_and_mails_each_learner_once(celery_worker, settings):  # noqa: F811
    settings.ENROLLMENT_SYNC_LIMIT = 3
    admin = PlatformAdminFactory(username="worker-admin")
    course = CourseFactory(key="course-v1:Acme+ROSTERW+2026")
    rows = [EnrollmentFactory(course=course, user=UserFactory(username=f"w{i}", email=f"w{i}@example.com")) for i in range(7)]
    result = roster_apply(actor=admin, course=course, action="unenroll", enrollment_ids=[r.pk for r in rows], reason="Course closed")
    job = result.job
    assert job is not None and job.status == RosterJob.Status.QUEUED

    def finished():
        return RosterJob.objects.filter(pk=job.pk, status__in=("succeeded", "failed")).exists()

    celery_worker.wait_for(finished, timeout=TIMEOUT, what="the roster job to finish")
    job.refresh_from_db()
    assert job.status == RosterJob.Status.SUCCEEDED, job.error
    assert (job.done, job.total, job.summary) == (7, 7, {"changed": 7, "unchanged": 0, "refused": 0})
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
    assert EnrollmentAudit.objects.filter(course=course, operation_id=job.operation_id, reason="Course closed").count() == 7
    celery_worker.wait_for(lambda: Notification.objects.filter(operation_id=job.operation_id, status="sent").count() == 7,
                           timeout=TIMEOUT, what="the emails")
    assert sorted(e["to"] for e in celery_worker.emails()) == sorted(f"w{i}@example.com" for i in range(7))
    assert "enrollments.tasks.run_roster_job" in celery_worker.log
