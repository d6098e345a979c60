"""Membership page, course info, self-enrollment and the admin, through HTTP."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Source
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    """``with commit_callbacks():`` runs the on-commit work of what it wraps (tasks
    run eagerly in tests) as a committed request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def batch_url(course):
    return reverse("batch_enrollment", args=[course.key])


def post_batch(client, course, identifiers="", action="enroll", follow=False, confirm=True, **extra):
    """Submit the Membership form; a pasted list's preview is confirmed (unless ``confirm`` is false)."""
    data = {"identifiers": identifiers, "action": action, "auto_enroll": "on", "email_students": "on", **extra}
    response = client.post(batch_url(course), data)
    if confirm and response.status_code == 302 and "/preview/" in response["Location"]:
        response = client.post(response["Location"] + "confirm/")
    if follow and response.status_code == 302:
        response = client.get(response["Location"], follow=True)
    return response


def test_membership_form_has_the_documented_fields(client_for, course, course_staff):
    html = client_for(course_staff).get(reverse("instructor_membership", args=[course.key])).content.decode()
    for snippet in ('name="identifiers"', 'name="auto_enroll"', 'name="email_students"', 'name="reason"',
                    'name="action" value="enroll"', 'name="action" value="unenroll"'):
        assert snippet in html
    assert 'id="id_auto_enroll" checked' in html and 'id="id_email_students" checked' in html


def test_staff_enroll_a_mixed_list_and_see_every_outcome(client_for, course, course_staff, mailoutbox, django_capture_on_commit_callbacks):
    UserFactory(username="kim", email="kim@example.com")
    client = client_for(course_staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(client, course, "kim, new@example.com\nbad@, nobody, KIM@example.com", reason="Cohort B")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    for text in ("enrolled", "allowed: will enroll on activation", "invalid email", "no such user"):
        assert text in page
    assert Enrollment.objects.filter(course=course, user__username="kim", is_active=True).exists()
    assert Allowance.objects.filter(course=course, email_key="new@example.com", auto_enroll=True).exists()
    assert EnrollmentAudit.objects.filter(course=course, actor=course_staff, reason="Cohort B").count() == 2
    assert sorted(m.to[0] for m in mailoutbox) == ["kim@example.com", "new@example.com"]


def results_url(course, job):
    return reverse("batch_results", args=[course.key, job.public_id])


def test_a_batch_redirects_to_its_results_and_a_reload_changes_nothing(client_for, course, course_staff):
    EnrollmentFactory(course=course, user=UserFactory(username="learner1", email="learner1@example.com"))
    UserFactory(username="kim")
    client = client_for(course_staff)
    response = post_batch(client, course, "kim learner1 learner1@example.com ghost", reason="Spring intake")
    job = BatchJob.objects.get()
    assert response.status_code == 302 and response["Location"] == results_url(course, job)
    audits = EnrollmentAudit.objects.count()

    for _ in range(2):  # a reload is a GET of the results, not a second batch
        page = client.get(response["Location"])
        assert page.status_code == 200
    assert EnrollmentAudit.objects.count() == audits == 1 and BatchJob.objects.count() == 1
    html = page.content.decode()
    assert '<h2 id="results-heading" class="h5" tabindex="-1" autofocus>Results: enroll</h2>' in html
    assert "4 identifiers, submitted by coursestaff" in html and "Spring intake" in html
    assert "named twice: 1" in html and "already enrolled: 1" in html and "(same person as learner1)" in html
    # The form is ready for the next batch: nothing pasted, no reason carried over.
    assert page.context["batch_form"].is_bound is False
    assert 'id="id_reason" maxlength="500" value=""' in html
    assert html.index('id="batch-results"') < html.index('id="batch-form"')


def test_results_of_a_batch_download_as_csv(client_for, course, course_staff):
    UserFactory(username="kim")
    client = client_for(course_staff)
    post_batch(client, course, "kim =cmd@example.com")
    response = client.get(reverse("batch_job_results", args=[course.key, BatchJob.objects.get().public_id]))
    assert response["Content-Disposition"].startswith("attachment")
    assert response.content.decode().splitlines() == [
        "identifier,outcome,username,email,note",
        "kim,enrolled,kim,kim@example.com,",
        "'=cmd@example.com,allowed: will enroll on activation,,'=cmd@example.com,",
    ]


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_results_are_for_the_course_team_only(request, client_for, course, other_course, course_staff, persona):
    post_batch(client_for(course_staff), course, "secret@example.com")
    job = BatchJob.objects.get()
    client = client_for(request.getfixturevalue(persona))
    assert client.get(results_url(course, job)).status_code == 403
    assert client.get(reverse("batch_job_results", args=[course.key, job.public_id])).status_code == 403
    if persona == "other_staff":  # through their own course: no such batch there
        assert client.get(results_url(other_course, job)).status_code == 404
    assert client_for(None).get(results_url(course, job)).status_code == 302  # to the login page


def test_an_unknown_action_is_refused_with_a_message_and_changes_nothing(client_for, course, course_staff):
    response = post_batch(client_for(course_staff), course, "kim new@example.com", action="delete")
    assert response.status_code == 400
    html = response.content.decode()
    assert "“delete” is not something this form does: choose Enroll or Unenroll. Nothing was changed." in html
    assert 'id="batch-errors" tabindex="-1" autofocus' in html
    assert "kim new@example.com" in html  # the paste is kept to submit again
    assert not Allowance.objects.exists() and not BatchJob.objects.exists() and not EnrollmentAudit.objects.exists()


def test_a_missing_action_is_refused_too(client_for, course, course_staff):
    client = client_for(course_staff)
    response = client.post(batch_url(course), {"identifiers": "new@example.com"})
    assert response.status_code == 400
    assert "Choose Enroll or Unenroll. Nothing was changed." in response.content.decode()
    assert not Allowance.objects.exists()


def test_a_nul_character_in_the_paste_is_a_clear_error(client_for, course, course_staff):
    response = post_batch(client_for(course_staff), course, "new@example.com\x00other@example.com")
    assert response.status_code == 400
    html = response.content.decode()
    assert "The text contains a NUL character" in html and "Nothing was changed." in html
    assert 'aria-describedby="identifiers-error identifiers-help" aria-invalid="true" autofocus' in html
    assert not Allowance.objects.exists() and not BatchJob.objects.exists()


def test_a_reason_over_500_characters_is_a_clear_error(client_for, course, course_staff):
    response = post_batch(client_for(course_staff), course, "new@example.com", reason="x" * 501)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Keep the reason to 500 characters or fewer (it has 501). Nothing was changed." in html
    assert 'aria-invalid="true" aria-describedby="reason-error" autofocus' in html
    assert not Allowance.objects.exists() and not BatchJob.objects.exists()


def test_an_oversized_body_gets_a_friendly_page_and_changes_nothing(course, course_staff, settings):
    from django.test import Client

    # A real browser: the CSRF check reads the form first, before the view.
    client = Client(enforce_csrf_checks=True)
    client.force_login(course_staff)
    client.get(reverse("instructor_membership", args=[course.key]))
    token = client.cookies["csrftoken"].value
    paste = "someone@example.com " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 20 + 1000)
    response = client.post(batch_url(course), {"csrfmiddlewaretoken": token, "identifiers": paste, "action": "enroll"})
    assert response.status_code == 413
    html = response.content.decode()
    assert "larger than 10 MB, so it was not read and <strong>nothing was changed</strong>" in html
    assert f'<a href="{reverse("instructor_membership", args=[course.key])}">Back to the Membership tab</a>' in html
    assert not Allowance.objects.exists() and not BatchJob.objects.exists()


def choose_column(client, course, column, heading=True, commit_callbacks=None):
    """Choose the column of the upload the last job read; returns the response (a preview's address, or the Membership tab)."""
    job = BatchJob.objects.latest("created")
    assert job.awaiting_column
    url = reverse("batch_upload_columns", args=[course.key, job.public_id])
    data = {"column": str(column), **({"heading": "on"} if heading else {})}
    if commit_callbacks is None:
        return client.post(url, data)
    with commit_callbacks():
        return client.post(url, data)


@pytest.mark.django_db(transaction=True)
def test_an_email_name_csv_reads_only_the_email_column_and_says_so(client_for, course, course_staff):
    # A committed request: without a broker the job (reading the file) runs once the request commits.
    UserFactory(username="learner1", email="l1@example.com")
    UserFactory(username="ann", email="ann@example.com")
    upload = SimpleUploadedFile("people.csv", b"email,name\nann@example.com,learner1\nnew@example.com,Jane Doe\n", content_type="text/csv")
    client = client_for(course_staff)
    response = client.post(batch_url(course), {"file": upload, "action": "enroll", "auto_enroll": "on"}, follow=True)
    html = response.content.decode()
    assert "people.csv: the first 3 of 3 rows" in html and '<option value="1" selected>Column 1</option>' in html
    assert not Enrollment.objects.exists() and not Allowance.objects.exists()  # nothing before the preview's Confirm
    response = choose_column(client, course, 1)
    html = client.get(response["Location"]).content.decode()
    assert "people.csv: read column 1 (“email”) of 2 rows; the heading row was skipped and other columns ignored." in html
    client.post(response["Location"] + "confirm/")
    assert list(Enrollment.objects.filter(course=course).values_list("user__username", flat=True)) == ["ann"]
    assert list(Allowance.objects.values_list("email_key", flat=True)) == ["new@example.com"]
    # The applied batch says where its list came from; the read upload is gone, its rows have served.
    assert BatchJob.objects.get().input_note.startswith("people.csv: read column 1")


def test_a_file_with_only_name_columns_asks_for_the_column_with_the_heading_skipped(client_for, course, course_staff, commit_callbacks):
    upload = SimpleUploadedFile("names.csv", b"name,department\nJane Doe,Sales\n", content_type="text/csv")
    client = client_for(course_staff)
    with commit_callbacks():
        response = client.post(batch_url(course), {"file": upload, "action": "enroll"})
    assert response.status_code == 302
    job = BatchJob.objects.get()
    html = client.get(reverse("batch_upload_columns", args=[course.key, job.public_id])).content.decode()
    assert "names.csv: the first 2 of 2 rows" in html and 'name="heading" id="id_heading" checked' in html
    assert not Allowance.objects.exists() and not Enrollment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_one_identifier_in_the_background_is_singular(client_for, course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 0
    upload = SimpleUploadedFile("one.txt", b"solo@example.com\n", content_type="text/plain")
    client = client_for(course_staff)
    client.post(batch_url(course), {"file": upload, "action": "enroll"})
    response = choose_column(client, course, 1, heading=False)
    html = client.get(response["Location"]).content.decode()
    assert "one.txt: read 1 line as a list, like the box above." in html
    # Previewed by a worker (in-process here), then confirmed like a short list.
    assert "will be invited, must enroll themself: 1" in html and "Confirm: enroll (changes 1 person)" in html


def test_unenroll_button(client_for, course, course_staff):
    EnrollmentFactory(course=course, user=UserFactory(username="leo"))
    response = post_batch(client_for(course_staff), course, "leo", action="unenroll", follow=True)
    assert "unenrolled" in response.content.decode()
    assert Enrollment.objects.get(user__username="leo").is_active is False


def test_empty_paste_is_a_clear_error(client_for, course, course_staff):
    response = post_batch(client_for(course_staff), course, "   ")
    assert response.status_code == 400
    assert "Enter at least one username or email" in response.content.decode()


def test_oversize_paste_is_refused_and_changes_nothing(client_for, course, course_staff, settings):
    settings.ENROLLMENT_MAX_IDENTIFIERS = 20
    response = post_batch(client_for(course_staff), course, "\n".join(f"p{i}@example.com" for i in range(21)))
    assert response.status_code == 400
    assert "at most 20" in response.content.decode()
    assert not Allowance.objects.exists() and not BatchJob.objects.exists()


def test_large_paste_runs_in_the_background_with_downloadable_results(client_for, course, course_staff, settings, commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 5
    UserFactory(username="zed")
    client = client_for(course_staff)
    with commit_callbacks():
        response = post_batch(client, course, "zed " + " ".join(f"bg{i}@example.com" for i in range(9)))
    assert not Allowance.objects.exists()  # previewed first (by a worker), then confirmed
    with commit_callbacks():
        client.post(response["Location"] + "confirm/")
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.SUCCEEDED and job.done == job.total == 10  # tasks run eagerly in tests
    assert Allowance.objects.filter(course=course).count() == 9
    page = client.get(reverse("instructor_membership", args=[course.key])).content.decode()
    assert "Succeeded" in page and "Download CSV" in page
    csv_response = client.get(reverse("batch_job_results", args=[course.key, job.public_id]))
    body = b"".join(csv_response.streaming_content).decode()
    assert csv_response["Content-Disposition"].startswith("attachment")
    assert "zed,enrolled" in body and "bg3@example.com,allowed: will enroll on activation" in body


def test_job_progress_fragment_stops_polling_when_done(client_for, course, course_staff, settings, commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    client = client_for(course_staff)
    with commit_callbacks():
        preview = post_batch(client, course, "a@example.com b@example.com")["Location"]
    with commit_callbacks():
        client.post(preview + "confirm/")
    job = BatchJob.objects.get()
    response = client.get(reverse("batch_job_status", args=[course.key, job.public_id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # htmx: stop polling
    assert "2 / 2" in response.content.decode()


def test_an_uploaded_csv_is_read_in_the_background_then_previewed_and_confirmed(client_for, course, course_staff, commit_callbacks):
    upload = SimpleUploadedFile("people.csv", b"\xef\xbb\xbfemail\nfile1@example.com\nfile2@example.com\n", content_type="text/csv")
    client = client_for(course_staff)
    with commit_callbacks():
        response = client.post(batch_url(course), {"file": upload, "action": "enroll", "auto_enroll": "on"})
    assert response.status_code == 302
    response = choose_column(client, course, 1)
    assert not Allowance.objects.exists()
    client.post(response["Location"] + "confirm/")
    assert set(Allowance.objects.values_list("email_key", flat=True)) == {"file1@example.com", "file2@example.com"}
    assert BatchJob.objects.get().total == 2


@pytest.mark.parametrize("content, message", [
    (b"a@example.com\x00b@example.com", "NUL"),
    (b"caf\xe9@example.com", "UTF-8"),
    (b'"unterminated@example.com\n', "malformed CSV"),
])
def test_hostile_or_broken_files_are_refused(client_for, course, course_staff, content, message, commit_callbacks, monkeypatch):
    from enrollments.services import jobs

    upload = SimpleUploadedFile("x.csv", content, content_type="text/csv")
    client = client_for(course_staff)
    # The request only keeps the file and queues the job: it reads nothing.
    monkeypatch.setattr(jobs, "read_upload", lambda **kwargs: pytest.fail("the request read the file"))
    response = client.post(batch_url(course), {"file": upload, "action": "enroll"})
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.QUEUED and job.upload_name == "x.csv" and job.upload.read() == content
    monkeypatch.undo()
    with commit_callbacks():
        jobs.batch_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == BatchJob.Status.FAILED and message in job.error and job.error.endswith("Nothing was changed.")
    row = client.get(response["Location"]).content.decode().split(f'id="job-{job.public_id}"', 1)[1].split("</tr>", 1)[0]
    assert "Failed" in row and message in row
    assert not Allowance.objects.exists() and not Enrollment.objects.exists()


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_outsiders_get_403_on_every_membership_action(request, client_for, course, persona, settings, commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    staff = UserFactory()
    from tests.factories import CourseRoleFactory

    CourseRoleFactory(course=course, user=staff)
    client_for(staff)
    from django.test import Client

    owner = Client()
    owner.force_login(staff)
    with commit_callbacks():
        preview = post_batch(owner, course, "x1@example.com x2@example.com")["Location"]
    with commit_callbacks():
        owner.post(preview + "confirm/")
    job = BatchJob.objects.get()
    client = client_for(request.getfixturevalue(persona))
    assert post_batch(client, course, "someone@example.com").status_code == 403
    assert client.get(reverse("batch_job_status", args=[course.key, job.public_id])).status_code == 403
    assert client.get(reverse("batch_job_results", args=[course.key, job.public_id])).status_code == 403
    assert Allowance.objects.filter(email_key="someone@example.com").count() == 0


def test_anonymous_is_sent_to_login(client, course):
    response = post_batch(client, course, "x@example.com")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_course_info_counts_active_enrollments_per_mode_team_included(client_for, course, course_admin):
    EnrollmentFactory.create_batch(3, course=course, mode="audit")
    EnrollmentFactory.create_batch(2, course=course, mode="verified")
    EnrollmentFactory(course=course, mode="verified", is_active=False)
    Enrollment.objects.create(course=course, user=course_admin, mode="audit", source=Source.TEAM)
    response = client_for(course_admin).get(reverse("instructor_info", args=[course.key]))
    assert response.context["counts"] == {"total": 6, "modes": {"audit": 4, "verified": 2}}
    html = response.content.decode()
    assert 'id="enrollment-total">6<' in html and "enrollment-timeline" in html and "chart.umd.js" in html


def test_learner_self_enrolls_and_unenrolls_on_the_course_page(client_for, course, learner):
    client = client_for(learner)
    page = client.get(reverse("course_detail", args=[course.key])).content.decode()
    assert ">Enroll<" in page
    response = client.post(reverse("self_enroll", args=[course.key]), follow=True)
    assert "You are enrolled in" in response.content.decode()
    assert [e.course for e in client.get("/").context["enrollments"]] == [course]
    client.post(reverse("self_unenroll", args=[course.key]), follow=True)
    assert Enrollment.objects.get(user=learner, course=course).is_active is False
    assert list(client.get("/").context["enrollments"]) == []


def test_full_course_refuses_politely(client_for, course, learner):
    course.max_enrollments = 1
    course.save()
    EnrollmentFactory(course=course)
    response = client_for(learner).post(reverse("self_enroll", args=[course.key]), follow=True)
    assert "This course is full." in response.content.decode()
    assert not Enrollment.objects.filter(user=learner).exists()


def test_admin_unenroll_action_goes_through_the_service_and_is_audited(client_for, platform_admin, course):
    enrollment = EnrollmentFactory(course=course)
    client = client_for(platform_admin)
    response = client.post(
        reverse("admin:enrollments_enrollment_changelist"),
        {"action": "unenroll_selected", "_selected_action": [enrollment.pk]},
    )
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.is_active is False
    assert EnrollmentAudit.objects.get(course=course).source == Source.ADMIN
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["1 enrollment changed."]


def test_admin_cannot_delete_audit_entries(client_for, platform_admin, course):
    EnrollmentFactory(course=course, user=UserFactory(username="audited"))
    from enrollments.services import enrollment_batch_update

    enrollment_batch_update(course=course, identifiers="audited", action="unenroll", auto_enroll=False, email_students=False, actor=platform_admin)
    entry = EnrollmentAudit.objects.get()
    response = client_for(platform_admin).post(reverse("admin:enrollments_enrollmentaudit_delete", args=[entry.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert EnrollmentAudit.objects.filter(pk=entry.pk).exists()
