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


def test_an_uploaded_file_is_checked_by_the_worker_in_a_limited_child(celery_worker):  # noqa: F811
    from django.core.files.base import ContentFile

    from organisations.models import OrgImport
    from organisations.services import import_upload
    from tests.site.test_hostile_uploads import shared_strings_bomb

    admin = PlatformAdminFactory(username="worker-admin")
    course = CourseFactory(key="course-v1:Acme+ORGC+2026")
    good = import_upload(upload=ContentFile(f"email,{course.key}\nsomeone@example.com,x\n".encode(), name="p.csv"), actor=admin)
    bomb = import_upload(upload=ContentFile(shared_strings_bomb(), name="bomb.xlsx"), actor=admin)
    for org_import in (good, bomb):
        celery_worker.wait_for(finished(org_import.check_job), timeout=TIMEOUT, what="the file check to finish")
    good.refresh_from_db(), bomb.refresh_from_db()
    assert good.check_job.status == "succeeded", good.check_job.error
    assert good.status == OrgImport.Status.CHECKED and good.preview["allowances"] == 1 and not good.upload
    assert bomb.check_job.status == "failed" and "unpacks to" in bomb.check_job.error and "the limit is 150 times" in bomb.check_job.error
    assert bomb.status == OrgImport.Status.UPLOADED and bomb.rows == [] and not bomb.upload
