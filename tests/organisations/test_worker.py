"""An organisation import and a rule evaluation run by a real Celery worker (another process)."""

import pytest

from enrollments.models import Allowance, Enrollment
from organisations.models import EnrollmentRule, OrgJob
from organisations.services import import_check, import_start, org_job_create, rule_save
from tests.celery_worker import celery_worker  # noqa: F401

from ..factories import CourseFactory, PlatformAdminFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60


def finished(job):
    return lambda: OrgJob.objects.filter(pk=job.pk, status__in=("succeeded", "failed")).exists()


def test_import_and_rule_jobs_run_on_a_worker(celery_worker):  # noqa: F811
    admin = PlatformAdminFactory(username="worker-admin")
    course = CourseFactory(key="course-v1:Acme+ORGW+2026")
    UserFactory(email="known@example.com")
    checked = import_check(name="p.csv", data=f"email,{course.key}\nknown@example.com,x\nnew@example.org,x\n".encode(), actor=admin)
    job = import_start(org_import=checked, actor=admin)
    celery_worker.wait_for(finished(job), timeout=TIMEOUT, what="the import to finish")
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.done == job.total == 2  # progress counts rows
    assert job.summary_text == "1 enrollment made, 1 invitation created."
    checked.refresh_from_db()
    assert checked.results_file.read().decode().splitlines()[1:] == [
        f"2,known@example.com,{course.key}: enrolled", f"3,new@example.org,{course.key}: invitation created: enrolls when they activate an account",
    ]
    assert Enrollment.objects.filter(course=course, user__email="known@example.com", is_active=True).exists()
    assert Allowance.objects.filter(course=course, email="new@example.org").exists()

    dept = OrgUnitFactory()
    UserFactory.create_batch(5, department=dept)
    rule = rule_save(rule=EnrollmentRule(name="Worker rule", department=dept), courses=[course], actor=admin)
    job = org_job_create(kind=OrgJob.Kind.RULE, payload={"rule_id": rule.pk}, total=5, actor=admin)
    celery_worker.wait_for(finished(job), timeout=TIMEOUT, what="the rule job to finish")
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.summary["enrolled"] == 5
