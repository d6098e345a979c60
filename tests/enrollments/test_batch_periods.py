"""Periods through the batch: the services (pasted list, queued job, preview and
its fingerprint) and the Membership page's Access period fields."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, MembershipPreview, Outcome
from enrollments.periods import PeriodRequest, period_request
from enrollments.services import batch_job_create, batch_job_run, enrollment_batch_update
from enrollments.services.batch_preview import enrollment_batch_preview
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

END = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)  # "2026-12-31" read in the site's zone (UTC in tests)


def enroll(course, identifiers, actor=None, **period):
    return enrollment_batch_update(
        course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=False, actor=actor,
        period=period_request(**period) if period else None,
    )


def outcomes(result):
    return {r.identifier: r.outcome for r in result.results}


# --- the service ---------------------------------------------------------------------------------


def test_a_new_enrollment_gets_the_period_asked_and_the_audit_says_so(course, course_staff):
    ada = UserFactory(username="ada")
    enroll(course, ["ada"], actor=course_staff, access_until="2026-12-31")
    enrollment = Enrollment.objects.get(user=ada, course=course)
    assert (enrollment.access_from, enrollment.access_until) == (None, END)
    audit = EnrollmentAudit.objects.get(user=ada)
    assert (audit.access_until_before, audit.access_until_after) == (None, END)


def test_a_duration_counts_from_enrolling(course):
    UserFactory(username="ada")
    enroll(course, ["ada"], duration_days="30")
    enrollment = Enrollment.objects.get(course=course)
    assert enrollment.access_from is None
    assert enrollment.access_until == enrollment.created + timedelta(days=30)


def test_without_a_period_the_course_default_applies_and_with_none_there_is_no_end(course, other_course):
    UserFactory(username="ada")
    course.default_duration_days = 10
    course.save()
    enroll(course, ["ada"])
    enroll(other_course, ["ada"])
    bounded = Enrollment.objects.get(course=course)
    assert bounded.access_until == bounded.created + timedelta(days=10)
    assert Enrollment.objects.get(course=other_course).access_until is None


def test_a_reactivated_enrollment_gets_the_new_period_and_an_active_one_keeps_its_own(course, course_staff):
    old_end = datetime(2025, 1, 1, tzinfo=UTC)
    kept_end = datetime(2030, 1, 1, tzinfo=UTC)
    former = EnrollmentFactory(course=course, user=UserFactory(username="ada"), is_active=False, access_until=old_end)
    active = EnrollmentFactory(course=course, user=UserFactory(username="bob"), access_until=kept_end)
    result = enroll(course, ["ada", "bob"], actor=course_staff, access_until="2026-12-31")
    assert outcomes(result) == {"ada": Outcome.REACTIVATED, "bob": Outcome.ALREADY_ENROLLED}
    former.refresh_from_db()
    active.refresh_from_db()
    assert (former.is_active, former.access_until) == (True, END)
    assert active.access_until == kept_end
    audit = EnrollmentAudit.objects.get(user=former.user)
    assert (audit.access_until_before, audit.access_until_after) == (old_end, END)
    assert not EnrollmentAudit.objects.filter(user=active.user).exists()


def test_an_invitation_records_the_period_asked_and_a_duration_waits_for_enrolling(course):
    enroll(course, ["new@example.com"], duration_days=365)
    enroll(course, ["dated@example.com"], access_from="2027-01-01", access_until="2027-06-30")
    new = Allowance.objects.get(email="new@example.com")
    assert (new.access_from, new.access_until, new.duration_days) == (None, None, 365)
    dated = Allowance.objects.get(email="dated@example.com")
    assert (dated.access_from, dated.access_until.date().isoformat(), dated.duration_days) == (
        datetime(2027, 1, 1, tzinfo=UTC), "2027-06-30", None,
    )


@pytest.mark.parametrize(("period", "field"), [
    ({"access_until": "2026-02-30"}, "access_until"),
    ({"duration_days": "0"}, "duration_days"),
    ({"duration_days": "3651"}, "duration_days"),
    ({"access_from": "2027-01-02", "access_until": "2027-01-01"}, "access_until"),
])
def test_a_bad_period_names_its_field_and_changes_nothing(course, period, field):
    UserFactory(username="ada")
    with pytest.raises(ValidationError) as caught:
        enroll(course, ["ada"], **period)
    assert field in caught.value.error_dict
    assert not Enrollment.objects.exists() and not EnrollmentAudit.objects.exists()


def test_a_period_on_unenroll_is_refused_and_changes_nothing(course):
    enrollment = EnrollmentFactory(course=course, user=UserFactory(username="ada"))
    with pytest.raises(ValidationError) as caught:
        enrollment_batch_update(
            course=course, identifiers=["ada"], action="unenroll", auto_enroll=False, email_students=False, actor=None,
            period=PeriodRequest(duration_days=5),
        )
    assert "only applies to enroll" in caught.value.error_dict["duration_days"][0].messages[0]
    enrollment.refresh_from_db()
    assert enrollment.is_active


def test_a_period_costs_no_query_per_identifier(course):
    for n in range(12):
        UserFactory(username=f"u{n}")
    EnrollmentFactory(course=course, user=UserFactory(username="gone"), is_active=False)
    with CaptureQueriesContext(connection) as few:
        enroll(course, ["u0", "x0@example.com"], access_until="2026-12-31")
    with CaptureQueriesContext(connection) as many:
        enroll(course, [f"u{n}" for n in range(1, 12)] + ["gone", *(f"x{n}@example.com" for n in range(1, 10))], access_until="2026-12-31")
    assert len(many) == len(few)


# --- the preview and the job carry it ---------------------------------------------------------------


def test_the_preview_fingerprint_depends_on_the_period(course):
    UserFactory(username="ada")
    options = {"course": course, "identifiers": ["ada"], "action": "enroll", "auto_enroll": True, "email_students": False}
    plain = enrollment_batch_preview(**options)
    dated = enrollment_batch_preview(**options, period=period_request(access_until="2026-12-31"))
    assert plain.fingerprint != dated.fingerprint
    assert enrollment_batch_preview(**options, period=PeriodRequest()).fingerprint == plain.fingerprint


def test_a_queued_job_keeps_the_period_and_its_worker_applies_it(course, course_staff):
    UserFactory(username="ada")
    job = batch_job_create(
        course=course, identifiers=["ada"], action="enroll", auto_enroll=True, email_students=False, actor=course_staff,
        period=period_request(access_until="2026-12-31"),
    )
    batch_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == BatchJob.Status.SUCCEEDED and job.period == {"access_until": END.isoformat()}
    assert Enrollment.objects.get(course=course).access_until == END


# --- the Membership page ---------------------------------------------------------------------------


def submit(client, course, identifiers, action="enroll", **extra):
    data = {"identifiers": identifiers, "action": action, "auto_enroll": "on", **extra}
    return client.post(reverse("batch_enrollment", args=[course.key]), data)


def test_the_page_previews_the_period_and_confirm_applies_it(client_for, course, course_staff):
    UserFactory(username="ada")
    client = client_for(course_staff)
    response = submit(client, course, "ada\nnew@example.com", access_until="2026-12-31")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Access: until 31 Dec 2026 23:59 (UTC)" in page
    assert 'name="access_until" value="2026-12-31"' in page and '<details class="mb-3 border rounded px-3 pt-2" id="access-period" open>' in page
    confirmed = client.post(response["Location"] + "confirm/")
    assert Enrollment.objects.get(course=course).access_until == END
    assert Allowance.objects.get(course=course).access_until == END
    results = client.get(confirmed["Location"]).content.decode()
    assert 'id="batch-access">Access: until 31 Dec 2026 23:59 (UTC)<' in results


def test_the_page_shows_the_course_default_when_no_period_is_given(client_for, course, course_staff):
    UserFactory(username="ada")
    course.default_duration_days = 30
    course.save()
    client = client_for(course_staff)
    response = submit(client, course, "ada")
    page = client.get(response["Location"]).content.decode()
    assert "Access: the course&#x27;s default, 30 days from enrolling" in page
    assert '<details class="mb-3 border rounded px-3 pt-2" id="access-period">' in page  # folded: nothing in it


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"access_until": "31/12/2026"}, "access_until", "is not a date"),
    ({"duration_days": "0"}, "duration_days", "from 1 to 3650 days"),
    ({"access_until": "2026-12-31", "duration_days": "30"}, "duration_days", "not both"),
    ({"action": "unenroll", "duration_days": "30"}, "duration_days", "only applies to enroll"),
])
def test_bad_period_fields_answer_on_the_field_and_write_nothing(client_for, course, course_staff, data, field, message):
    UserFactory(username="ada")
    response = submit(client_for(course_staff), course, "ada", **data)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    tag = re.search(rf'<input [^>]*id="id_{field}"[^>]*>', page).group(0)
    assert "autofocus" in tag and 'aria-invalid="true"' in tag
    assert not MembershipPreview.objects.exists() and not Enrollment.objects.exists()


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_an_uploaded_file_carries_the_period_through_its_column_choice_to_confirm(client_for, course, course_staff, commit_callbacks):
    UserFactory(username="ada")
    client = client_for(course_staff)
    upload = SimpleUploadedFile("people.csv", b"username\nada\n", content_type="text/csv")
    with commit_callbacks():
        response = client.post(reverse("batch_enrollment", args=[course.key]), {
            "file": upload, "action": "enroll", "auto_enroll": "on", "access_until": "2026-12-31",
        })
    assert response.status_code == 302
    read = BatchJob.objects.get()
    assert read.awaiting_column and read.period == {"access_until": END.isoformat()}
    preview = client.post(reverse("batch_upload_columns", args=[course.key, read.public_id]), {"column": 1, "heading": "on"})
    assert "Access: until 31 Dec 2026 23:59 (UTC)" in client.get(preview["Location"]).content.decode()
    client.post(preview["Location"] + "confirm/")
    assert Enrollment.objects.get(course=course).access_until == END


def test_a_list_previewed_by_a_worker_keeps_the_period_to_its_queued_confirm(client_for, course, course_staff, settings, commit_callbacks):
    for name in ("ada", "bob", "cy"):
        UserFactory(username=name)
    settings.ENROLLMENT_SYNC_LIMIT = 2
    client = client_for(course_staff)
    with commit_callbacks():
        response = submit(client, course, "ada bob cy", duration_days="30")
    pending = MembershipPreview.objects.get()
    assert not pending.in_request and pending.period == {"duration_days": 30}
    assert "Access: 30 days from enrolling" in client.get(response["Location"]).content.decode()
    with commit_callbacks():
        client.post(response["Location"] + "confirm/")
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.SUCCEEDED and job.period == {"duration_days": 30}
    assert {e.access_until - e.created for e in Enrollment.objects.filter(course=course)} == {timedelta(days=30)}
