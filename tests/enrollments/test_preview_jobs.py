"""Membership previews kept in the database: a list above ENROLLMENT_SYNC_LIMIT
previewed by a worker (progress, takeover, stale Confirm), a preview confirmed
once (two Confirms at once on PostgreSQL), and the sweep of abandoned previews
and read uploads."""

import datetime

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enrollment_site.lib.jobs import job_claim, jobs_sweep
from enrollments import views
from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, MembershipPreview, MembershipPreviewRow, Notification
from enrollments.services import enrollment_batch_update, preview_job_create, preview_job_run, previews_sweep
from tests.factories import EnrollmentFactory, UserFactory
from tests.races import fire_together, logged_in_clients, met

WRITTEN = (Enrollment, Allowance, EnrollmentAudit, Notification, BatchJob)


def written():
    return {model.__name__: model.objects.count() for model in WRITTEN}


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    """Run the on-commit work (tasks run eagerly in tests) as a committed request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def submit(client, course, identifiers, action="enroll"):
    data = {"identifiers": identifiers, "action": action, "auto_enroll": "on", "email_students": "on"}
    return client.post(reverse("batch_enrollment", args=[course.key]), data)


def told(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def people(course):
    EnrollmentFactory(course=course, user=UserFactory(username="ada", email="ada@example.com"))
    UserFactory(username="cy", email="cy@example.com")


LIST = "ada cy nobody new1@example.com new2@example.com new3@example.com"


@pytest.mark.django_db
def test_a_large_list_is_previewed_by_a_worker_then_confirmed_exactly(client_for, course, course_staff, people, settings, commit_callbacks, monkeypatch):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    monkeypatch.setattr(views, "PREVIEW_PAGE", 2)
    client = client_for(course_staff)
    before = written()
    with commit_callbacks():
        response = submit(client, course, LIST)
    preview = MembershipPreview.objects.get()
    assert response["Location"] == reverse("batch_preview", args=[course.key, preview.public_id])
    assert preview.status == "succeeded" and not preview.in_request and preview.total == 6
    assert written() == before  # nothing but the preview
    html = client.get(response["Location"]).content.decode()
    for text in ("will enroll: 1", "already enrolled: 1", "will be invited, enrolled on activation: 3", "no such user: 1",
                 "4 emails would be sent.", "Confirm: enroll (changes 4 people)"):
        assert text in html
    # Each outcome's first rows, then "Show all" in pages.
    assert "new1@example.com" in html and "new3@example.com" in html and "Show all" not in html
    monkeypatch.setattr(views, "PREVIEW_ROWS", 1)
    html = client.get(response["Location"]).content.decode()
    assert "new1@example.com" in html and "new2@example.com" not in html and "Show all 3" in html
    html = client.get(response["Location"] + "?show=allowed_auto").content.decode()
    assert "new1@example.com" in html and "new2@example.com" in html and "new3@example.com" not in html and "Page 1 of 2" in html
    html = client.get(response["Location"] + "?show=allowed_auto&page=2").content.decode()
    assert "new3@example.com" in html and "new1@example.com" not in html

    with commit_callbacks():
        confirmed = client.post(response["Location"] + "confirm/")
    job = BatchJob.objects.get()
    assert confirmed["Location"] == reverse("batch_results", args=[course.key, job.public_id])
    assert "exactly as previewed" in " ".join(told(confirmed))
    assert job.status == "succeeded" and job.summary == preview.summary
    assert EnrollmentAudit.objects.filter(operation_id=job.public_id).count() == 4
    assert MembershipPreview.objects.get().batch_job == job


@pytest.mark.django_db
def test_the_page_polls_the_progress_and_announces_the_preview(client_for, course, course_staff, people, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    client = client_for(course_staff)
    url = submit(client, course, LIST)["Location"]  # on-commit work not run: the preview waits for its worker
    preview = MembershipPreview.objects.get()
    html = client.get(url).content.decode()
    status_url = reverse("batch_preview_status", args=[course.key, preview.public_id])
    assert f'hx-get="{status_url}"' in html and 'role="status" aria-live="polite"' in html and "Progress of the preview" in html
    assert "Confirm:" not in html
    polled = client.get(status_url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "0 / 6" in polled.content.decode()
    # Nothing to confirm until it is ready.
    assert client.post(url + "confirm/").status_code == 302 and not BatchJob.objects.exists()

    preview_job_run(job_id=preview.pk)
    polled = client.get(status_url, HTTP_HX_REQUEST="true")
    fragment = polled.content.decode()
    assert polled.status_code == 286  # htmx: stop polling
    assert 'hx-swap-oob="innerHTML">The preview is ready' in fragment and "Confirm: enroll (changes 4 people)" in fragment
    assert "hx-get" not in fragment


@pytest.mark.django_db
def test_a_course_changed_after_a_large_preview_applies_nothing_and_offers_the_new_preview(
    client_for, course, course_staff, people, settings, commit_callbacks,
):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    client = client_for(course_staff)
    with commit_callbacks():
        url = submit(client, course, LIST)["Location"]
    enrollment_batch_update(course=course, identifiers=["cy"], action="enroll", auto_enroll=True, email_students=False, actor=course_staff)
    before = written()
    with commit_callbacks():
        confirmed = client.post(url + "confirm/")
    job = BatchJob.objects.exclude(pk__in=[b.pk for b in BatchJob.objects.filter(ran_in_request=True)]).get()
    assert job.status == "failed"
    assert job.error.startswith("Nothing was changed: the course changed since the preview for 1 person (cy: will enroll → already enrolled)")
    assert {k: v for k, v in written().items() if k != "BatchJob"} == {k: v for k, v in before.items() if k != "BatchJob"}
    renewed = MembershipPreview.objects.get(replaces__batch_job=job)
    page = client.get(confirmed["Location"]).content.decode()
    assert reverse("batch_preview", args=[course.key, renewed.public_id]) in page
    assert renewed.summary["already_enrolled"] == 2 and renewed.rows.count() == 6
    with commit_callbacks():
        client.post(reverse("batch_confirm", args=[course.key, renewed.public_id]))
    assert BatchJob.objects.get(previews=renewed).status == "succeeded"
    assert Allowance.objects.filter(course=course).count() == 3


@pytest.mark.django_db
def test_a_preview_whose_worker_died_is_taken_over_and_done_once(course, course_staff, people, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    preview = preview_job_create(course=course, actor=course_staff, identifiers=LIST.split(), action="enroll", auto_enroll=True, email_students=True)
    # A worker claimed it, kept a first row and died.
    assert job_claim(MembershipPreview, preview.pk) is not None
    MembershipPreviewRow.objects.create(preview=preview, position=0, identifier="ada", outcome="already_enrolled")
    MembershipPreview.objects.filter(pk=preview.pk).update(position=1, done=1, heartbeat_at=timezone.now() - datetime.timedelta(hours=1))
    assert jobs_sweep(MembershipPreview) == 1
    done = preview_job_run(job_id=preview.pk)
    assert done.status == "succeeded" and done.takeovers == 1
    assert list(done.rows.values_list("position", flat=True)) == list(range(6))
    assert done.summary == {"already_enrolled": 1, "enrolled": 1, "no_such_user": 1, "allowed_auto": 3}


@pytest.mark.django_db
def test_the_worker_preview_runs_in_a_fixed_number_of_queries(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    counts = []
    for size in (4, 40):
        users = UserFactory.create_batch(size // 2)
        identifiers = [u.username for u in users] + [f"x{size}-{i}@example.com" for i in range(size // 2)]
        preview = preview_job_create(course=course, actor=course_staff, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=True)
        with CaptureQueriesContext(connection) as queries:
            preview_job_run(job_id=preview.pk)
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- a preview is confirmed once --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_two_confirms_of_one_preview_at_once_apply_it_once(course, course_staff, people, monkeypatch):
    url = submit(logged_in_clients(course_staff, 1)[0], course, "cy new@example.com")["Location"]
    # Both Confirms have read the preview (not confirmed yet) before either claims it.
    monkeypatch.setattr(views, "membership_preview_for", met(views.membership_preview_for, 2))
    answers = fire_together(logged_in_clients(course_staff, 2), lambda i, c: c.post(url + "confirm/"))
    job = BatchJob.objects.get()
    results = reverse("batch_results", args=[course.key, job.public_id])
    assert [a["Location"] for a in answers] == [results, results]
    messages = [" ".join(told(a)) for a in answers]
    assert sum("was already confirmed by coursestaff at" in m for m in messages) == 1, messages
    assert EnrollmentAudit.objects.count() == 2 and Notification.objects.count() == 2
    preview = MembershipPreview.objects.get()
    assert preview.confirmed_by == course_staff and preview.batch_job == job


@pytest.mark.django_db
def test_someone_elses_preview_is_404_and_a_confirmed_one_leads_to_its_results(client_for, course, course_staff, course_admin, people):
    client = client_for(course_staff)
    url = submit(client, course, "cy")["Location"]
    client_for(course_admin)
    assert client.get(url).status_code == 404 and client.post(url + "confirm/").status_code == 404
    client_for(course_staff)
    client.post(url + "confirm/")
    job = BatchJob.objects.get()
    again = client.get(url)
    assert again["Location"] == reverse("batch_results", args=[course.key, job.public_id])
    assert "This preview was already confirmed by" in " ".join(told(again))


# --- the sweep --------------------------------------------------------------------------


def upload(client, course, commit_callbacks, name="people.csv"):
    with commit_callbacks():
        client.post(reverse("batch_enrollment", args=[course.key]), {
            "file": SimpleUploadedFile(name, b"email\nann@example.com\n", content_type="text/csv"), "action": "enroll",
        })
    return BatchJob.objects.get(upload_name=name)


@pytest.mark.django_db
def test_the_sweep_removes_abandoned_previews_and_uploads_with_their_files(client_for, course, course_staff, people, settings, commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    settings.PREVIEW_KEEP_HOURS = 24
    client = client_for(course_staff)
    start = timezone.now()
    with time_machine.travel(start - datetime.timedelta(hours=25), tick=False):
        with commit_callbacks():
            large = submit(client, course, LIST)["Location"]
        small = submit(client, course, "cy")["Location"]
        read = upload(client, course, commit_callbacks)
        confirmed = submit(client, course, "ada")["Location"]
        client.post(confirmed + "confirm/")
        with commit_callbacks():
            big = submit(client, course, "ada nobody ghost")["Location"]  # a large one, confirmed (changing nobody)
        with commit_callbacks():
            client.post(big + "confirm/")
    fresh = submit(client, course, "new@example.com")["Location"]
    assert read.upload and default_storage.exists(read.upload.name)
    assert MembershipPreviewRow.objects.count() == 9

    with commit_callbacks():
        assert previews_sweep() == (2, 1)
    assert not default_storage.exists(read.upload.name)  # deleted once the sweep committed
    assert not MembershipPreviewRow.objects.exists() and not BatchJob.objects.filter(pk=read.pk).exists()
    # The confirmed ones keep their record (who, when, which batch) without their list; the fresh one stays.
    assert MembershipPreview.objects.count() == 3
    assert list(MembershipPreview.objects.exclude(confirmed_at=None).values_list("identifiers", flat=True)) == ["", ""]
    assert "already confirmed by coursestaff" in " ".join(told(client.post(big + "confirm/")))
    # A Confirm of a swept preview says it expired and changes nothing.
    for url in (small, large):
        response = client.post(url + "confirm/")
        assert response["Location"] == reverse("instructor_membership", args=[course.key])
        assert "This preview has expired (previews are kept 24 hours)" in " ".join(told(response))
    assert client.get(small).status_code == 404
    assert not Allowance.objects.exists() and EnrollmentAudit.objects.count() == 0
    assert client.post(fresh + "confirm/")["Location"].endswith("/results/")


@pytest.mark.django_db
def test_the_sweep_takes_a_fixed_number_of_queries(client_for, course, course_staff, settings, commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    client = client_for(course_staff)
    counts = []
    for n in (1, 4):
        with time_machine.travel(timezone.now() - datetime.timedelta(hours=30), tick=False):
            for i in range(n):
                with commit_callbacks():
                    submit(client, course, f"a{i}@example.com b{i}@example.com")
                upload(client, course, commit_callbacks, name=f"f{n}-{i}.csv")
        with CaptureQueriesContext(connection) as queries:
            assert previews_sweep() == (n, n)
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_a_queued_preview_is_listed_under_pending_tasks_for_its_maker_only(client_for, course, course_staff, course_admin, people, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    response = submit(client_for(course_staff), course, LIST)  # the on-commit task never runs: the preview stays queued
    preview = MembershipPreview.objects.get()
    assert preview.status == "queued"
    link = reverse("batch_preview", args=[course.key, preview.public_id])
    assert response["Location"] == link
    for url in (reverse("instructor_data", args=[course.key]), reverse("report_tasks", args=[course.key])):
        mine = client_for(course_staff).get(url).content.decode()
        assert "Preview of a batch enroll" in mine and f'href="{link}"' in mine and "0 / 6" in mine
        theirs = client_for(course_admin).get(url).content.decode()
        assert "Preview of a batch enroll" not in theirs and str(preview.public_id) not in theirs
