"""An organisation job (an import, a rule) whose worker dies mid-chunk is
taken over by the sweep once its heartbeat is stale and carries on: an import
from its last committed chunk of rows, a rule by working out again what is
left. Everyone is enrolled, audited and mailed once; the summary and the
results file count every row once.

The worker's death is a ``BaseException`` raised in a chunk after its first
writes, as with SIGKILL (nothing of the runner's error handling runs)."""

import csv
import io
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from enrollment_site.celery import sweep_jobs
from enrollment_site.lib.jobs import stale_after
from enrollments.models import Enrollment, EnrollmentAudit, Notification
from enrollments.services import batch, batch_accounts
from organisations.models import EnrollmentOrigin, EnrollmentRule, OrgImport, OrgJob, OrgJobChunk, UnitKind
from organisations.services import import_check, import_start, imports, org_job_create, plans, rule_save
from organisations.tasks import run_org_job

from ..factories import CourseFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """The worker process dies here."""


# The enrollment writes a module calls (a plan's known accounts go in one statement on PostgreSQL).
WRITES = {
    "enrollment_batch_update": batch.enrollment_batch_update, "enrollment_accounts_enroll": batch_accounts.enrollment_accounts_enroll,
    "enrollment_emails_invite": batch_accounts.enrollment_emails_invite,
}


def dies_in_call(monkeypatch, module, number: int) -> None:
    """``module``'s enrollment write dies in its ``number``-th call, after writing."""
    calls = []

    def dying(write):
        def update(**kwargs):
            calls.append(1)
            result = write(**kwargs)
            if len(calls) == number:
                raise WorkerKilled
            return result
        return update

    for name, write in WRITES.items():
        if hasattr(module, name):
            monkeypatch.setattr(module, name, dying(write))


def take_over(monkeypatch, module, job, django_capture_on_commit_callbacks) -> OrgJob:
    """A fresh worker; the dead one's heartbeat goes stale; the beat's sweep sends the job again."""
    for name, write in WRITES.items():
        if hasattr(module, name):
            monkeypatch.setattr(module, name, write)
    OrgJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - stale_after() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_jobs() == 1
    job.refresh_from_db()
    return job


def once_each(queryset, field: str) -> Counter:
    counts = Counter(queryset.values_list(field, flat=True))
    assert set(counts.values()) == {1}, counts
    return counts


def test_an_import_whose_worker_died_resumes_after_its_last_committed_rows(monkeypatch, platform_admin, django_capture_on_commit_callbacks):
    first, second = CourseFactory(key="course-v1:Acme+IMP1+2026"), CourseFactory(key="course-v1:Acme+IMP2+2026")
    OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Ops")  # the rows move people into it: their details change
    known = [UserFactory(email=f"known{i}@example.com") for i in range(3)]
    emails = [u.email for u in known] + [f"fresh{i}@example.com" for i in range(4)]
    lines = [f"email,department,{first.key},{second.key}"] + [f"{e},ops,x,{'x' if i % 2 else ''}" for i, e in enumerate(emails)]
    checked = import_check(name="people.csv", data="\n".join(lines).encode(), actor=platform_admin, email_students=True)
    monkeypatch.setattr(imports, "CHUNK", 3)
    with django_capture_on_commit_callbacks(execute=True):
        job = import_start(org_import=checked, actor=platform_admin)
        dies_in_call(monkeypatch, imports, 3)  # rows 4 to 6, first course: rows 1 to 3 are committed
        with pytest.raises(WorkerKilled):
            run_org_job.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.position, job.summary["people_updated"]) == ("running", 3, 3)
    assert (Enrollment.objects.filter(course=first).count(), Enrollment.objects.filter(course=second).count()) == (3, 1)

    job = take_over(monkeypatch, imports, job, django_capture_on_commit_callbacks)
    assert (job.status, job.takeovers, job.done, job.error) == ("succeeded", 1, 7, "")
    assert {k: v for k, v in job.summary.items() if k != "finished"} == {"people_updated": 3, "enrolled": 3 + 1, "allowances": 4 + 2}
    assert len(once_each(Enrollment.objects.filter(course=first), "user_id")) == 3
    assert len(once_each(EnrollmentAudit.objects.filter(course=first), "identifier")) == 7
    assert len(once_each(EnrollmentAudit.objects.filter(course=second), "identifier")) == 3
    assert len(once_each(Notification.objects.filter(course=first), "recipient")) == 7
    # One operation, the job's, across the dead run and its successor, courses and chunks: one undo.
    assert set(EnrollmentAudit.objects.values_list("operation_id", flat=True)) == {job.public_id}
    # The results file says what happened to every row once.
    org_import = OrgImport.objects.get(pk=checked.pk)
    with org_import.results_file.open("rb") as f:
        rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
    assert [row[1] for row in rows[1:]] == emails
    assert [row[2].count(first.key) for row in rows[1:]] == [1] * 7
    assert [row[2].count(second.key) for row in rows[1:]] == [0, 1, 0, 1, 0, 1, 0]
    assert rows[1][2].startswith("details updated; ")
    assert not OrgJobChunk.objects.exists()


def test_a_rule_job_whose_worker_died_works_out_what_is_left_and_counts_everyone_once(monkeypatch, platform_admin, course,
                                                                                    django_capture_on_commit_callbacks):
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    people = [UserFactory(department=dept) for _ in range(7)]
    rule = EnrollmentRule(name="Everyone in the department", department=dept, retroactive=True)
    rule_save(rule=rule, courses=[course], actor=platform_admin)
    monkeypatch.setattr(plans, "CHUNK", 3)
    with django_capture_on_commit_callbacks(execute=True):
        job = org_job_create(kind=OrgJob.Kind.RULE, payload={"rule_id": rule.pk, "email_students": True}, total=7, actor=platform_admin)
        dies_in_call(monkeypatch, plans, 2)
        with pytest.raises(WorkerKilled):
            run_org_job.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.position, job.summary) == ("running", 3, {"enrolled": 3, "reactivated": 0})

    job = take_over(monkeypatch, plans, job, django_capture_on_commit_callbacks)
    assert (job.status, job.takeovers, job.done) == ("succeeded", 1, 7)
    assert job.summary == {"enrolled": 7, "reactivated": 0, "unenrolled": 0}
    assert sorted(once_each(Enrollment.objects.filter(course=course, is_active=True), "user_id")) == sorted(p.pk for p in people)
    assert len(once_each(EnrollmentAudit.objects.filter(course=course), "user_id")) == 7
    assert len(once_each(Notification.objects.filter(course=course), "recipient")) == 7
    assert set(EnrollmentAudit.objects.values_list("operation_id", flat=True)) == {job.public_id}
    assert set(EnrollmentOrigin.objects.values_list("operation_id", flat=True)) == {job.public_id}
