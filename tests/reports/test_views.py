"""The Data download tab: report buttons, Pending tasks, finished files and
downloads, for every persona."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollment_site.celery import sweep_jobs
from enrollment_site.lib.jobs import max_takeovers, stale_after
from enrollments.models import BatchJob
from reports import services
from reports.models import ReportTask
from reports.services import report_request, report_run

from ..factories import AllowanceFactory

pytestmark = pytest.mark.django_db


def data_url(course):
    return reverse("instructor_data", kwargs={"course_key": course.key})


def request_url(course):
    return reverse("report_request", kwargs={"course_key": course.key})


def tasks_url(course):
    return reverse("report_tasks", kwargs={"course_key": course.key})


def download_url(course, task):
    return reverse("report_download", kwargs={"course_key": course.key, "report_id": task.pk})


@pytest.fixture
def finished_report(course, course_staff):
    AllowanceFactory(course=course, email="waiting@example.org")
    task, _ = report_request(course=course, kind="may_enroll", requester=course_staff)
    return report_run(task_id=task.pk)


# --- permissions -------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_outsiders_get_403_everywhere(request, client_for, course, finished_report, persona):
    client = client_for(request.getfixturevalue(persona))
    assert client.get(data_url(course)).status_code == 403
    assert client.get(tasks_url(course)).status_code == 403
    assert client.get(download_url(course, finished_report)).status_code == 403
    assert client.post(request_url(course), {"kind": "codes"}).status_code == 403
    assert not ReportTask.objects.filter(kind="codes").exists()


def test_anonymous_is_sent_to_log_in(client_for, course, finished_report):
    client = client_for(None)
    for response in (
        client.get(data_url(course)),
        client.get(tasks_url(course)),
        client.get(download_url(course, finished_report)),
        client.post(request_url(course), {"kind": "codes"}),
    ):
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))
    assert not ReportTask.objects.filter(kind="codes").exists()


@pytest.mark.parametrize("persona", ["course_staff", "course_admin", "platform_admin"])
def test_course_team_and_platform_admins_get_the_tab_and_the_file(request, client_for, course, finished_report, persona):
    client = client_for(request.getfixturevalue(persona))
    assert client.get(data_url(course)).status_code == 200
    response = client.get(download_url(course, finished_report))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{finished_report.filename}"'
    assert b"waiting@example.org" in b"".join(response.streaming_content)


def test_a_report_of_another_course_is_not_served_through_this_course(client_for, course, other_course, other_staff, finished_report):
    # other_staff manages other_course, and asks for course's file through it.
    url = reverse("report_download", kwargs={"course_key": other_course.key, "report_id": finished_report.pk})
    assert client_for(other_staff).get(url).status_code == 404


def test_unknown_course_is_404(client_for, course_staff):
    assert client_for(course_staff).get("/courses/course-v1:No+Such+Course/instructor/data/").status_code == 404


def test_requesting_needs_post(client_for, course, course_staff):
    assert client_for(course_staff).get(request_url(course)).status_code == 405


def test_requesting_needs_csrf(course, course_staff):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(course_staff)
    assert client.post(request_url(course), {"kind": "codes"}).status_code == 403
    assert not ReportTask.objects.exists()


def test_pending_or_failed_report_has_no_download(client_for, course, course_staff):
    task = ReportTask.objects.create(course=course, kind="codes", status="running", heartbeat_at=timezone.now())
    assert client_for(course_staff).get(download_url(course, task)).status_code == 404


# --- the page ------------------------------------------------------------------------


def test_the_tab_has_a_button_per_report(client_for, course, course_staff):
    page = client_for(course_staff).get(data_url(course)).content.decode()
    for kind in ("may_enroll", "enrolled_profiles", "codes"):
        assert f'value="{kind}"' in page
    assert "Download a CSV of learners who can enroll" in page
    assert "csrfmiddlewaretoken" in page
    assert "No tasks are pending." in page
    assert "hx-trigger" not in page


def alert(page: str, kind: str = "success") -> str:
    """The text of the one message shown at the top of the page."""
    [message] = re.findall(rf'<div class="alert alert-{kind}[^"]*"[^>]*>\s*(.*?)\s*<button', page, re.S)
    return message


@pytest.fixture
def broker_holds_the_task(monkeypatch):
    """A broker mode where the task was sent but no worker has taken it yet:
    sending records the call instead of running the report in-process."""
    from reports.tasks import run_report

    sent = []
    monkeypatch.setattr(run_report, "apply_async", lambda args=(), kwargs=None, **options: sent.append(args))
    return sent


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_the_report_is_queued_and_listed_as_pending(settings, client_for, course, course_staff, broker_holds_the_task):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client = client_for(course_staff)
    response = client.post(request_url(course), {"kind": "may_enroll"}, follow=True)
    assert response.redirect_chain[-1][0] == data_url(course)
    page = response.content.decode()
    task = ReportTask.objects.get(course=course, kind="may_enroll")
    assert broker_holds_the_task == [(task.pk,)]
    assert task.status == "queued" and task.requester == course_staff
    assert alert(page) == "The report “Learners who can enroll” is queued; it is listed under Pending tasks, and you may leave this page meanwhile."
    assert "Reports are produced in the background." in page
    assert "Report: Learners who can enroll" in page
    assert "coursestaff" in page
    assert 'class="progress-bar" data-width="0"' in page
    assert f'hx-get="{tasks_url(course)}"' in page
    # still there after a reload
    assert "Report: Learners who can enroll" in client.get(data_url(course)).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_already_took_it_shows_it_being_produced(client_for, course, course_staff, monkeypatch):
    from reports.tasks import run_report

    def worker_claims(args=(), kwargs=None, **options):
        ReportTask.objects.filter(pk=args[0]).update(status=ReportTask.Status.RUNNING, started=timezone.now(), heartbeat_at=timezone.now())

    monkeypatch.setattr(run_report, "apply_async", worker_claims)
    page = client_for(course_staff).post(request_url(course), {"kind": "codes"}, follow=True).content.decode()
    assert alert(page).startswith("The report “Enrollment codes” is being produced; it is listed under Pending tasks")
    assert 'id="pending-tasks"' in page


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_report_is_ready_with_a_link_at_once(settings, client_for, course, course_staff):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    AllowanceFactory(course=course, email="one@example.org")
    AllowanceFactory(course=course, email="two@example.org")
    client = client_for(course_staff)
    page = client.post(request_url(course), {"kind": "may_enroll"}, follow=True).content.decode()
    task = ReportTask.objects.get(course=course, kind="may_enroll")
    assert task.status == "succeeded"
    message = alert(page)
    assert message == (
        f'The report “Learners who can enroll” is ready: <a href="{download_url(course, task)}" class="alert-link">{task.filename}</a> (2 rows).'
    )
    assert "No tasks are pending." in page
    assert "A report is produced as soon as you ask for it" in page and "produced in the background" not in page
    assert b"one@example.org" in b"".join(client.get(download_url(course, task)).streaming_content)


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_failed_report_says_why(settings, client_for, course, course_staff, monkeypatch):
    import dataclasses

    def broken(course):
        raise RuntimeError("the disk is full")
        yield

    def broken_cells(course):
        raise RuntimeError("the disk is full")

    settings.CELERY_TASK_ALWAYS_EAGER = True
    spec = dataclasses.replace(services.REPORTS["may_enroll"], rows=broken, cells=broken_cells)  # either path
    monkeypatch.setitem(services.REPORTS, "may_enroll", spec)
    page = client_for(course_staff).post(request_url(course), {"kind": "may_enroll"}, follow=True).content.decode()
    assert ReportTask.objects.get(course=course).status == "failed"
    assert alert(page, "danger") == "The report “Learners who can enroll” failed: the disk is full. You may ask for it again."


def test_asking_again_while_pending_says_already_pending(client_for, course, course_staff):
    client = client_for(course_staff)
    client.post(request_url(course), {"kind": "codes"})
    page = client.post(request_url(course), {"kind": "codes"}, follow=True).content.decode()
    assert "already pending" in page
    assert ReportTask.objects.filter(course=course, kind="codes").count() == 1


def test_unknown_kind_is_a_message_not_an_error(client_for, course, course_staff):
    page = client_for(course_staff).post(request_url(course), {"kind": "passwords"}, follow=True).content.decode()
    assert "Unknown report" in page
    assert not ReportTask.objects.exists()


def test_running_task_shows_its_progress(client_for, course, course_staff):
    ReportTask.objects.create(course=course, kind="enrolled_profiles", status="running", done=500, total=2000, heartbeat_at=timezone.now())
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "Report: Enrolled learner profiles" in page
    assert 'data-width="25"' in page
    assert "500 / 2,000" in page
    assert "Running" in page


def test_pending_batch_enrollments_are_listed_too(client_for, course, course_staff):
    BatchJob.objects.create(course=course, requester=course_staff, action="enroll", identifiers="a\nb", total=20_000, done=5_000, status="running")
    BatchJob.objects.create(course=course, requester=course_staff, action="enroll", identifiers="a", total=1, status="succeeded")
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "Batch enroll" in page
    assert "5,000 / 20,000" in page
    assert page.count("<td>Batch enroll</td>") == 1


def test_finished_files_are_listed_newest_first_with_links(client_for, course, course_staff):
    first, _ = report_request(course=course, kind="may_enroll", requester=course_staff)
    report_run(task_id=first.pk)
    second, _ = report_request(course=course, kind="codes", requester=course_staff)
    report_run(task_id=second.pk)
    ReportTask.objects.filter(pk=first.pk).update(finished=timezone.now() - timedelta(hours=1))
    first.refresh_from_db()
    second.refresh_from_db()
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert page.index(second.filename) < page.index(first.filename)
    assert f'href="{download_url(course, second)}"' in page
    assert f'href="{download_url(course, first)}"' in page


def test_failed_task_shows_its_message(client_for, course, course_staff):
    ReportTask.objects.create(course=course, kind="codes", status="failed", error="the disk is full", finished=timezone.now())
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "the disk is full" in page
    assert "Failed" in page


def test_a_task_whose_worker_is_lost_again_and_again_shows_failed_on_the_page(client_for, course, course_staff):
    old = timezone.now() - stale_after() - timedelta(minutes=1)
    task = ReportTask.objects.create(course=course, kind="may_enroll", status="running", started=old, heartbeat_at=old, done=10, total=100,
                                     takeovers=max_takeovers())
    sweep_jobs()  # the beat's sweep (a GET never sweeps)
    page = client_for(course_staff).get(data_url(course)).content.decode()
    assert "worker lost again and again" in page
    assert "No tasks are pending." in page
    task.refresh_from_db()
    assert task.status == "failed"


def test_page_queries_do_not_grow_with_tasks(client_for, course, course_staff, django_assert_max_num_queries):
    client = client_for(course_staff)
    client.get(data_url(course))
    for kind in ("may_enroll", "codes", "enrolled_profiles"):
        ReportTask.objects.create(course=course, kind=kind, requester=course_staff)
    for i in range(5):
        ReportTask.objects.create(course=course, kind="codes", status="failed", error=f"e{i}", finished=timezone.now(), requester=course_staff)
    # 15 for the tab and Pending tasks, 6 for its history (one per job table; the undo states need none without undoable rows).
    with django_assert_max_num_queries(21):
        client.get(data_url(course))


# --- the htmx fragment ----------------------------------------------------------------


def test_fragment_keeps_polling_while_something_is_pending(client_for, course, course_staff):
    ReportTask.objects.create(course=course, kind="codes", status="queued")
    response = client_for(course_staff).get(tasks_url(course), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith('<div id="report-tasks"')
    assert "hx-trigger" in body
    assert "<html" not in body


def test_fragment_stops_polling_when_nothing_is_pending(client_for, course, course_staff, finished_report):
    response = client_for(course_staff).get(tasks_url(course), headers={"HX-Request": "true"})
    assert response.status_code == 286
    body = response.content.decode()
    assert finished_report.filename in body
    assert "hx-trigger" not in body
