"""Task history on the Data download tab: the course's finished and
failed jobs of the last UNDO_DAYS days, newest first in keyset pages, each
finished change with an Undo for whoever may make it (or who undid it), for
the course team only, in a fixed number of queries."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enrollments.models import BatchJob, RosterJob, UndoJob
from enrollments.services.jobs import batch_job_run_inline
from enrollments.services.undo import operation_undo
from organisations.models import OrgJob, UnitKind
from organisations.selectors.targets import Target
from organisations.services import assignment_apply, assignment_link, unit_members_add
from reports import selectors
from reports.models import ReportTask
from reports.selectors import task_history
from tests.factories import UserFactory
from tests.organisations.factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

PERSONAS = [("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302)]


def data_url(course, **query):
    url = reverse("instructor_data", args=[course.key])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def batch(course, actor, *names):
    for name in names:
        UserFactory(username=name, email=f"{name}@example.com")
    return batch_job_run_inline(course=course, identifiers=list(names), action="enroll", auto_enroll=True, email_students=False, actor=actor)


def undo_url(course, operation_id):
    return reverse("operation_undo", args=[course.key, operation_id])


@pytest.mark.parametrize("persona, status", PERSONAS)
def test_the_history_is_for_the_course_team(request, client_for, course, other_course, course_admin, other_staff, persona, status):
    job = batch(course, course_admin, "kim")
    other = batch(other_course, other_staff, "lea")
    response = client_for(request.getfixturevalue(persona) if persona else None).get(data_url(course))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert 'id="history-tasks"' in page and "Batch enroll" in page
        assert f'href="{undo_url(course, job.public_id)}"' in page
        assert str(other.public_id) not in page  # another course's job is not listed


def test_an_undone_operation_says_by_whom_and_links_to_the_undo(client_for, course, course_staff):
    job = batch(course, course_staff, "kim")
    undone = operation_undo(course=course, operation_id=job.public_id, actor=course_staff)
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert f'href="{undo_url(course, job.public_id)}"' not in page
    assert "Undone by coursestaff at " in page
    assert f'{reverse("instructor_audit", args=[course.key])}?operation={undone.undo_operation_id}' in page


def test_an_operation_being_undone_says_so(client_for, course, course_staff):
    job = batch(course, course_staff, "kim")
    UndoJob.objects.create(course=course, requester=course_staff, operation_id=job.public_id, total=1)
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "Being undone (see Pending tasks above)" in page and f'href="{undo_url(course, job.public_id)}"' not in page


def test_failed_old_and_changeless_jobs_offer_no_undo(client_for, course, course_staff, settings):
    now = timezone.now()
    failed = RosterJob.objects.create(course=course, requester=course_staff, action="unenroll", status=RosterJob.Status.FAILED,
                                      error="The worker was lost.", finished=now)
    report = ReportTask.objects.create(course=course, requester=course_staff, kind=ReportTask.Kind.CODES, status=ReportTask.Status.SUCCEEDED,
                                       finished=now)
    old = batch(course, course_staff, "kim")
    BatchJob.objects.filter(pk=old.pk).update(finished=now - datetime.timedelta(days=settings.UNDO_DAYS + 1))
    history = task_history(course=course, viewer=course_staff)
    assert sorted((row.type, row.pk) for row in history.rows) == [("Learners: unenroll", failed.pk), (f"Report: {report.get_kind_display()}", report.pk)]
    assert all(row.undo is None or not row.undo.undoable for row in history.rows)
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "The worker was lost." in page and 'class="btn btn-sm btn-outline-danger history-undo"' not in page


def test_an_organisation_job_is_listed_in_each_course_it_changed_and_undone_by_who_manages_them_all(
        client_for, course, other_course, platform_admin, course_staff):
    qual = Target(unit=OrgUnitFactory(kind=UnitKind.QUALIFICATION))
    dept = Target(unit=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    for c in (course, other_course):
        assignment_link(target=qual, course=c, actor=platform_admin)
    unit_members_add(target=dept, users=[UserFactory(username="ann")], actor=platform_admin)
    assignment_link(target=dept, qualification=qual.unit, actor=platform_admin)
    job = OrgJob.objects.create(kind=OrgJob.Kind.ASSIGNMENT, requester=platform_admin, status=OrgJob.Status.SUCCEEDED, finished=timezone.now())
    assignment_apply(target=dept, qualification=qual.unit, actor=platform_admin, operation_id=job.public_id)
    unrelated = OrgJob.objects.create(kind=OrgJob.Kind.RULE, requester=platform_admin, status=OrgJob.Status.SUCCEEDED, finished=timezone.now())
    for c in (course, other_course):
        [row] = task_history(course=c, viewer=platform_admin).rows
        assert (row.pk, row.type, row.undo.undoable) == (job.pk, "Organisation: assignment", True)
    [row] = task_history(course=course, viewer=course_staff).rows
    assert not row.undo.undoable  # the other course is not theirs
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "Organisation: assignment" in page and f'href="{undo_url(course, job.public_id)}"' not in page
    assert unrelated.pk != job.pk  # a job that changed nothing here is not listed (the single row above)


def test_pages_are_keyset_newest_first_and_a_bad_cursor_says_so(client_for, course, course_staff, monkeypatch):
    jobs = [batch(course, course_staff, f"p{i}") for i in range(3)]
    same = timezone.now()
    BatchJob.objects.filter(pk__in=[j.pk for j in jobs]).update(finished=same)  # ties are broken by table and id
    undo = UndoJob.objects.create(course=course, requester=course_staff, operation_id=jobs[0].public_id, status=UndoJob.Status.FAILED, finished=same)
    first = task_history(course=course, viewer=course_staff, limit=2)
    second = task_history(course=course, viewer=course_staff, cursor=first.next_cursor, limit=2)
    assert [r.pk for r in first.rows + second.rows] == [undo.pk, jobs[2].pk, jobs[1].pk, jobs[0].pk]
    assert second.next_cursor == "" and not second.first
    monkeypatch.setattr(selectors, "HISTORY_PAGE", 2)
    client = client_for(course_staff)
    page = client.get(data_url(course)).content.decode()
    assert 'id="history-older"' in page
    response = client.get(data_url(course, history="not-a-cursor"))
    assert response.status_code == 400 and "That page link of the tasks history is not valid" in response.content.decode()


def _history_queries(course, actor, n):
    for i in range(n):
        batch(course, actor, f"q{n}-{i}")
        RosterJob.objects.create(course=course, requester=actor, action="unenroll", status=RosterJob.Status.FAILED, finished=timezone.now())
    operation_undo(course=course, operation_id=BatchJob.objects.filter(course=course).first().public_id, actor=actor)
    with CaptureQueriesContext(connection) as queries:
        rows = task_history(course=course, viewer=actor).rows
    assert len(rows) == 2 * n
    return len(queries)


def test_queries_do_not_grow_with_the_rows_shown(course, other_course, course_staff, other_staff):
    assert _history_queries(course, course_staff, 1) == _history_queries(other_course, other_staff, 6)


def test_an_api_bulk_job_is_listed_in_each_of_its_courses_with_its_undo(course, other_course, course_staff):
    import uuid

    from enrollments.models import BulkEnrollJob, Source
    from enrollments.services import enrollment_batch_update

    job = BulkEnrollJob.objects.create(requester=course_staff, status=BulkEnrollJob.Status.SUCCEEDED, finished=timezone.now(),
                                       payload={"action": "enroll", "courses": [course.key, other_course.key]})
    UserFactory(username="kim")
    operation_id = uuid.uuid5(job.public_id, course.key)  # as the job audits each course
    enrollment_batch_update(course=course, identifiers=["kim"], action="enroll", auto_enroll=True, email_students=False,
                            actor=course_staff, source=Source.API, operation_id=operation_id)
    BulkEnrollJob.objects.create(requester=course_staff, status=BulkEnrollJob.Status.SUCCEEDED, finished=timezone.now(),
                                 payload={"action": "enroll", "courses": [other_course.key]})
    [row] = task_history(course=course, viewer=course_staff).rows
    assert (row.pk, row.type, row.operation_id, row.undo.undoable) == (job.pk, "API bulk enroll", operation_id, True)
