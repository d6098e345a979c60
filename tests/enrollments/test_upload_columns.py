"""An uploaded file on the Membership page: read by its job, then the column
choice (and heading toggle), the preview and Confirm, through HTTP."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, MembershipPreview, Notification
from enrollments.services import jobs
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def changed():
    """What a batch writes (the upload's own job row aside)."""
    return {model.__name__: model.objects.count() for model in (Enrollment, Allowance, EnrollmentAudit, Notification)}


def upload(client, course, commit_callbacks, content, name="people.csv", action="enroll"):
    """Upload ``content``; its job reads it once the request commits. Returns the column page's address."""
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "action": action, "auto_enroll": "on", "email_students": "on"}
    with commit_callbacks():
        response = client.post(reverse("batch_enrollment", args=[course.key]), data)
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.awaiting_column
    return reverse("batch_upload_columns", args=[course.key, job.public_id])


def preview_of(client, columns_url, **choice):
    response = client.post(columns_url, choice)
    assert response.status_code == 302 and "/preview/" in response["Location"], response.content.decode()[:2000]
    return response["Location"], client.get(response["Location"]).content.decode()


def previewed(html):
    """The identifiers the preview's tables list (the cells of its rows)."""
    import re

    section = html.split('id="batch-preview"', 1)[1].split("</section>", 1)[0]
    return sorted(set(re.findall(r"<td[^>]*>([^<]+@[^<]+|[a-z][\w.]*)</td>", section)))


PEOPLE = b"name,email\nlearner1,ann@example.com\nJane Doe,new@example.com\n"


def test_the_column_page_shows_the_first_rows_with_the_headed_column_chosen_and_nothing_written(client_for, course, course_staff, commit_callbacks):
    UserFactory(username="learner1")
    client = client_for(course_staff)
    url = upload(client, course, commit_callbacks, PEOPLE + b"".join(b"x%d,p%d@example.com\n" % (i, i) for i in range(20)))
    html = client.get(url).content.decode()
    assert 'id="upload-rows-heading" class="h5 text-break" tabindex="-1" autofocus' in html
    assert "people.csv: the first 10 of 23 rows" in html
    assert html.count("<tr><td") == 10 and "p6@example.com" in html and "p7@example.com" not in html
    assert '<option value="2" selected>Column 2</option>' in html and 'name="heading" id="id_heading" checked' in html
    assert changed() == {"Enrollment": 0, "Allowance": 0, "EnrollmentAudit": 0, "Notification": 0}


def test_a_name_email_file_previews_the_emails_only_and_confirm_applies_them(client_for, course, course_staff, commit_callbacks):
    # learner1 is a username: a name equal to it must not enroll that person.
    UserFactory(username="learner1", email="l1@example.com")
    UserFactory(username="ann", email="ann@example.com")
    client = client_for(course_staff)
    url = upload(client, course, commit_callbacks, PEOPLE)
    preview_url, html = preview_of(client, url, column="2", heading="on")
    assert "people.csv: read column 2 (“email”) of 2 rows; the heading row was skipped and other columns ignored." in html
    assert "learner1" not in html.split('id="batch-preview"', 1)[1].split("</section>", 1)[0]
    assert "ann@example.com" in html and "new@example.com" in html
    assert changed() == {"Enrollment": 0, "Allowance": 0, "EnrollmentAudit": 0, "Notification": 0}
    response = client.post(preview_url + "confirm/")
    assert response.status_code == 302 and "/results/" in response["Location"]
    assert list(Enrollment.objects.filter(course=course).values_list("user__username", flat=True)) == ["ann"]
    assert list(Allowance.objects.values_list("email_key", flat=True)) == ["new@example.com"]
    # The file's rows have served: only the applied batch stays listed.
    assert list(BatchJob.objects.values_list("ran_in_request", flat=True)) == [True]


def test_the_column_choice_and_the_heading_toggle_change_what_is_previewed(client_for, course, course_staff, commit_callbacks):
    client = client_for(course_staff)
    url = upload(client, course, commit_callbacks, b"login,email\nzoe,zoe@example.com\nyan,yan@example.com\n")
    _, first = preview_of(client, url, column="1", heading="on")
    assert "zoe" in first and "zoe@example.com" not in first and "login" not in previewed(first)
    _, headed_off = preview_of(client, url, column="1")
    assert "login" in previewed(headed_off)
    _, second = preview_of(client, url, column="2", heading="on")
    assert "zoe@example.com" in second and "yan@example.com" in second and "email" not in previewed(second)
    assert changed() == {"Enrollment": 0, "Allowance": 0, "EnrollmentAudit": 0, "Notification": 0}


def test_a_column_without_identifiers_is_a_clear_error_and_changes_nothing(client_for, course, course_staff, commit_callbacks):
    client = client_for(course_staff)
    url = upload(client, course, commit_callbacks, b"email,note\na@example.com,\nb@example.com,\n")
    response = client.post(url, {"column": "2", "heading": "on"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Column 2 of people.csv holds no usernames or emails. Choose another column. Nothing was changed." in html
    assert 'id="upload-errors" tabindex="-1" autofocus' in html
    assert client.post(url, {"column": "9"}).status_code == 400
    assert changed() == {"Enrollment": 0, "Allowance": 0, "EnrollmentAudit": 0, "Notification": 0}


def test_the_request_never_reads_the_file(client_for, course, course_staff, monkeypatch, commit_callbacks):
    client = client_for(course_staff)
    monkeypatch.setattr(jobs, "read_upload", lambda **kwargs: pytest.fail("the request read the file"))
    data = {"file": SimpleUploadedFile("people.csv", PEOPLE, content_type="text/csv"), "action": "enroll"}
    response = client.post(reverse("batch_enrollment", args=[course.key]), data)
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.QUEUED and not job.awaiting_column
    page = client.get(response["Location"]).content.decode()
    assert "people.csv is being read in the background" in page
    monkeypatch.undo()
    with commit_callbacks():
        jobs.batch_job_run(job_id=job.pk)
    # The column page and the preview use the rows the job kept: reading now would fail the test.
    monkeypatch.setattr(jobs, "read_upload", lambda **kwargs: pytest.fail("the request read the file"))
    url = reverse("batch_upload_columns", args=[course.key, job.public_id])
    assert "Choose the column" in client.get(reverse("instructor_membership", args=[course.key])).content.decode()
    assert client.get(url).status_code == 200
    preview_of(client, url, column="2", heading="on")


def test_above_the_sync_limit_the_chosen_column_is_previewed_in_the_background(client_for, course, course_staff, commit_callbacks, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    EnrollmentFactory(course=course, user=UserFactory(username="old", email="old@example.com"), is_active=False)
    client = client_for(course_staff)
    url = upload(client, course, commit_callbacks, PEOPLE)
    with commit_callbacks():
        response = client.post(url, {"column": "2", "heading": "on"})
    preview = MembershipPreview.objects.get()
    assert response["Location"] == reverse("batch_preview", args=[course.key, preview.public_id])
    page = client.get(response["Location"]).content.decode()
    assert "will be invited, enrolled on activation: 2" in page and "people.csv: read column 2" in page
    assert not Allowance.objects.exists()
    with commit_callbacks():
        confirmed = client.post(response["Location"] + "confirm/")
    job = BatchJob.objects.get()  # the read upload is gone, its batch queued and run
    assert confirmed["Location"] == reverse("batch_results", args=[course.key, job.public_id])
    assert job.status == BatchJob.Status.SUCCEEDED and job.total == job.done == 2 and job.input_note.startswith("people.csv: read column 2")
    assert set(Allowance.objects.values_list("email_key", flat=True)) == {"ann@example.com", "new@example.com"}
    assert client.get(url).status_code == 404  # the read upload was dropped with its Confirm


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_outsiders_get_403_and_other_courses_404(request, course, other_course, course_staff, persona, commit_callbacks):
    url = upload(logged_in(course_staff), course, commit_callbacks, PEOPLE)
    job = BatchJob.objects.get()
    outsider = logged_in(request.getfixturevalue(persona))
    assert outsider.get(url).status_code == 403
    assert outsider.post(url, {"column": "2", "heading": "on"}).status_code == 403
    if persona == "other_staff":
        assert outsider.get(reverse("batch_upload_columns", args=[other_course.key, job.public_id])).status_code == 404
    assert Client().get(url).status_code == 302  # anonymous: to the login page
    assert changed() == {"Enrollment": 0, "Allowance": 0, "EnrollmentAudit": 0, "Notification": 0}
    assert BatchJob.objects.get().awaiting_column


@pytest.mark.parametrize("persona", ["course_staff", "course_admin", "platform_admin"])
def test_the_team_chooses_previews_and_confirms(request, course, persona, commit_callbacks):
    client = logged_in(request.getfixturevalue(persona))
    url = upload(client, course, commit_callbacks, b"email\nteam@example.com\n")
    preview_url, _ = preview_of(client, url, column="1", heading="on")
    assert client.post(preview_url + "confirm/").status_code == 302
    assert list(Allowance.objects.values_list("email_key", flat=True)) == ["team@example.com"]


@pytest.mark.parametrize("rows, expected", [
    ([["name", "email"], ["Ada", "ada@example.com"]], (2, True)),
    ([["E-mail address", "User name"], ["ada@example.com", "ada"]], (1, True)),  # email preferred to username
    ([["name", "department"], ["Ada", "Sales"]], (1, True)),  # headings, but no identifier column
    ([["ada@example.com", "Ada"], ["bob", "Bob"]], (1, False)),  # no heading row
    ([[""], ["", "x@example.com"]], (1, False)),
    ([], (1, False)),
])
def test_the_default_choice_is_what_the_headings_suggest(rows, expected):
    from enrollment_site.lib.identifiers import default_column_choice

    assert default_column_choice(rows) == expected


def test_only_the_chosen_column_is_read_and_the_heading_skipped_when_asked():
    from enrollment_site.lib.identifiers import identifiers_from_column

    rows = [["name", "email"], [" ", " "], ["learner1", "ann@example.com"], ["Jane Doe", ""], ["x"]]
    read = identifiers_from_column(rows, column=2, heading=True)
    assert (read.tokens, read.rows, read.column, read.heading, read.empty) == (["ann@example.com"], 3, 2, "email", 2)
    assert identifiers_from_column(rows, column=2, heading=False).tokens == ["email", "ann@example.com"]
    assert identifiers_from_column(rows, column=1, heading=True).tokens == ["learner1", "Jane", "Doe", "x"]
