"""Reports produced by a real Celery worker (another process) on the local Redis."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from enrollment_site.celery import sweep_jobs
from enrollment_site.lib.jobs import stale_after
from reports.models import ReportTask
from reports.services import report_request
from reports.tasks import run_report
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import AllowanceFactory, CourseFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60


def state_of(task):
    return ReportTask.objects.filter(pk=task.pk).values_list("status", flat=True).first()


def test_may_enroll_report_goes_from_queued_to_succeeded_with_the_right_file(celery_worker):  # noqa: F811
    course = CourseFactory(key="course-v1:Acme+WORK+2026", display_name="=Worker course")
    staff = UserFactory(username="worker-staff")
    AllowanceFactory(course=course, email="first@example.org", auto_enroll=True, created_by=staff)
    AllowanceFactory(course=course, email="=second@example.org", auto_enroll=False)
    AllowanceFactory(course=course, email="used@example.org", used_at=timezone.now())

    task, created = report_request(course=course, kind="may_enroll", requester=staff)
    assert created and task.status == "queued"
    seen = {state_of(task)}

    def finished():
        seen.add(state_of(task))
        return state_of(task) in ("succeeded", "failed")

    celery_worker.wait_for(finished, timeout=TIMEOUT, what="the report to finish")
    task.refresh_from_db()
    assert task.status == "succeeded", task.error
    assert seen <= {"queued", "running", "succeeded"}
    assert task.celery_task_id
    assert (task.done, task.total) == (2, 2)
    assert task.filename.startswith("Acme_WORK_may_enroll_info_")

    # The worker wrote through the storage API into this test's MEDIA_ROOT.
    assert Path(settings.MEDIA_ROOT, task.file.name).is_file()
    with default_storage.open(task.file.name, "rb") as f:
        rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
    assert rows[0] == ["course", "email", "auto_enroll", "allowed_by", "allowed_at"]
    assert [row[:4] for row in rows[1:]] == [
        ["'=Worker course", "first@example.org", "true", "worker-staff"],
        ["'=Worker course", "'=second@example.org", "false", ""],
    ]
    assert "reports.tasks.run_report" in celery_worker.log


def test_a_message_delivered_twice_gives_one_file(celery_worker):  # noqa: F811
    course = CourseFactory()
    AllowanceFactory(course=course)
    task, _ = report_request(course=course, kind="may_enroll", requester=None)
    run_report.delay(task.pk)  # a duplicate delivery

    celery_worker.wait_for(lambda: celery_worker.log.count("reports.tasks.run_report[") >= 4, timeout=TIMEOUT, what="both deliveries")
    celery_worker.wait_for(lambda: state_of(task) == "succeeded", timeout=TIMEOUT, what="the report")
    assert "'already taken'" in celery_worker.log
    assert len(default_storage.listdir(f"reports/{course.pk}")[1]) == 1
    assert ReportTask.objects.filter(course=course).count() == 1


def test_a_report_that_raises_in_the_worker_ends_failed_with_its_message(celery_worker):  # noqa: F811
    # The storage cannot write: MEDIA_ROOT is a plain file, not a directory.
    Path(settings.MEDIA_ROOT).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.MEDIA_ROOT).write_text("not a directory")
    course = CourseFactory()
    task, _ = report_request(course=course, kind="enrolled_profiles", requester=None)

    celery_worker.wait_for(lambda: state_of(task) == "failed", timeout=TIMEOUT, what="the report to fail")
    task.refresh_from_db()
    assert "Not a directory" in task.error or "File exists" in task.error
    assert task.finished is not None


def test_the_sweep_runs_in_the_worker_and_a_report_it_takes_over_finishes(celery_worker):  # noqa: F811
    course = CourseFactory()
    AllowanceFactory(course=course)
    old = timezone.now() - stale_after() - timedelta(minutes=1)
    lost = ReportTask.objects.create(course=course, kind="may_enroll", status="running", started=old, heartbeat_at=old)

    assert sweep_jobs.delay().get(timeout=TIMEOUT) == 1
    celery_worker.wait_for(lambda: state_of(lost) == "succeeded", timeout=TIMEOUT, what="the report taken over")
    lost.refresh_from_db()
    assert (lost.takeovers, lost.done, lost.error) == (1, 1, "")
