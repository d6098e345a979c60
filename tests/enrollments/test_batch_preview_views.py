"""The Membership page's preview and Confirm, through HTTP."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Notification
from enrollments.services import enrollment_batch_update
from tests.factories import CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

WRITTEN = (Enrollment, Allowance, EnrollmentAudit, Notification, BatchJob)


def written():
    return {model.__name__: model.objects.count() for model in WRITTEN}


def submit(client, course, identifiers, action="enroll", **extra):
    data = {"identifiers": identifiers, "action": action, "auto_enroll": "on", "email_students": "on", **extra}
    return client.post(reverse("batch_enrollment", args=[course.key]), data)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(course):
    EnrollmentFactory(course=course, user=UserFactory(username="ada", email="ada@example.com"))
    EnrollmentFactory(course=course, user=UserFactory(username="bob", email="bob@example.com"), is_active=False)
    UserFactory(username="cy", email="cy@example.com")


@pytest.mark.parametrize("persona", ["course_staff", "course_admin", "platform_admin"])
def test_the_team_sees_a_preview_with_nothing_written_then_confirm_applies_it(request, course, people, persona):
    client = logged_in(request.getfixturevalue(persona))
    before = written()

    response = submit(client, course, "ada bob cy new@example.com ghost bad@", reason="Spring intake")

    assert response.status_code == 302 and "/preview/" in response["Location"]
    page = client.get(response["Location"])
    assert written() == before, "a preview writes no enrollment, invitation, audit, outbox or job row"
    html = page.content.decode()
    assert '<h2 id="preview-heading" class="h5" tabindex="-1" autofocus>Preview: enroll</h2>' in html
    for text in ("will enroll: 1", "will enroll again: 1", "will be invited, enrolled on activation: 1",
                 "already enrolled: 1", "no such user: 1", "invalid email: 1", "3 emails would be sent.",
                 "Confirm: enroll (changes 3 people)", "Spring intake"):
        assert text in html
    assert html.index('id="batch-preview"') < html.index('id="batch-form"')

    confirmed = client.post(response["Location"] + "confirm/")

    job = BatchJob.objects.get()
    assert confirmed["Location"] == reverse("batch_results", args=[course.key, job.public_id])
    assert job.summary == {"enrolled": 1, "reactivated": 1, "allowed_auto": 1, "already_enrolled": 1, "no_such_user": 1, "invalid_email": 1}
    assert EnrollmentAudit.objects.filter(reason="Spring intake").count() == 3
    assert Notification.objects.count() == 3
    # Confirm once: the preview is used up, a second Confirm (a resubmitted form) changes nothing and says so.
    again = client.post(response["Location"] + "confirm/")
    assert again["Location"] == confirmed["Location"]
    told = [str(m) for m in get_messages(again.wsgi_request)]
    assert any(m.startswith(f"This preview was already confirmed by {job.requester.username} at ") for m in told), told
    assert BatchJob.objects.count() == 1 and EnrollmentAudit.objects.count() == 3


def test_unenroll_preview_calls_out_team_members_and_says_how_many_it_touches(client_for, course, course_staff, people):
    EnrollmentFactory(course=course, user=course_staff)
    client = client_for(course_staff)
    response = submit(client, course, "ada coursestaff cy", action="unenroll")
    html = client.get(response["Location"]).content.decode()
    assert "This unenrolls 1 member of the course team: coursestaff." in html
    assert "will be unenrolled: 2" in html and "not enrolled: 1" in html
    assert "Confirm: unenroll (changes 2 people)" in html and "btn-danger" in html
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 2


def test_the_preview_warns_when_the_batch_would_take_the_course_past_its_cap(client_for, course, course_staff, people):
    """Issue 13 item 5: the course team may go past the cap, with a warning in the preview; confirming applies it."""
    course.max_enrollments = 2
    course.save()
    client = client_for(course_staff)
    response = submit(client, course, "bob cy")  # ada is active: 1 + 2 would make 3
    html = client.get(response["Location"]).content.decode()
    assert "has a cap of 2 enrollments: with this batch it would have 3 active learners." in html
    client.post(response["Location"] + "confirm/")
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 3
    # Within the cap: no warning.
    course.max_enrollments = 10
    course.save()
    html = client.get(submit(client, course, "ada")["Location"]).content.decode()
    assert 'id="preview-over-cap"' not in html


def test_each_group_shows_its_first_rows_and_all_of_them_on_request(client_for, course, course_staff):
    client = client_for(course_staff)
    response = submit(client, course, " ".join(f"p{i}@example.com" for i in range(8)), email_students="")
    html = client.get(response["Location"]).content.decode()
    assert "p4@example.com" in html and "p5@example.com" not in html.split('id="batch-form"')[0]
    assert "Show all 8" in html and "No email would be sent (Notify people by email is off)." in html
    everything = client.get(response["Location"], {"show": "allowed_auto"}).content.decode()
    assert all(f"p{i}@example.com" in everything.split('id="batch-form"')[0] for i in range(8))


def test_a_course_changed_since_the_preview_is_not_applied_and_the_page_says_what_changed(client_for, course, course_staff, people):
    client = client_for(course_staff)
    response = submit(client, course, "cy new@example.com")
    client.get(response["Location"])
    enrollment_batch_update(course=course, identifiers="cy", action="enroll", auto_enroll=True, email_students=False, actor=None)
    before = written()

    stale = client.post(response["Location"] + "confirm/")

    assert stale.status_code == 302 and stale["Location"] == response["Location"]
    assert written() == before, "nothing is applied"
    [message] = [str(m) for m in get_messages(stale.wsgi_request)]
    assert message == (
        "Nothing was changed: the course changed since the preview for 1 person (cy: will enroll → already enrolled)."
        " Here is the new preview; confirm again to apply it."
    )
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "already enrolled: 1" in html and "Confirm: enroll (changes 1 person)" in html
    assert [str(m) for m in get_messages(page.wsgi_request)] == [message], "the change is told once, on the new preview"
    client.post(response["Location"] + "confirm/")
    assert BatchJob.objects.get().summary == {"already_enrolled": 1, "allowed_auto": 1}


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_outsiders_get_403_and_other_courses_404(request, course, other_course, course_staff, persona):
    preview_url = submit(logged_in(course_staff), course, "new@example.com")["Location"]
    token = preview_url.rstrip("/").rsplit("/", 1)[1]
    outsider = logged_in(request.getfixturevalue(persona))
    assert submit(outsider, course, "new@example.com").status_code == 403
    assert outsider.get(preview_url).status_code == 403
    assert outsider.post(preview_url + "confirm/").status_code == 403
    if persona == "other_staff":  # through their own course: no such preview there
        assert outsider.get(reverse("batch_preview", args=[other_course.key, token])).status_code == 404
    assert Client().get(preview_url).status_code == 302  # anonymous: to the login page
    assert not Allowance.objects.exists() and not BatchJob.objects.exists()


def test_a_preview_belongs_to_the_session_and_course_that_made_it(course, other_course, course_staff):
    CourseRoleFactory(course=other_course, user=course_staff)
    colleague = CourseRoleFactory(course=course).user
    preview_url = submit(logged_in(course_staff), course, "new@example.com")["Location"]
    token = preview_url.rstrip("/").rsplit("/", 1)[1]
    assert logged_in(colleague).post(preview_url + "confirm/").status_code == 404
    assert logged_in(course_staff).get(reverse("batch_preview", args=[other_course.key, token])).status_code == 404
    assert not Allowance.objects.exists()


def test_the_preview_page_queries_do_not_grow_with_the_list(client_for, course, course_staff):
    client = client_for(course_staff)
    counts = []
    for size in (3, 60):
        url = submit(client, course, " ".join(f"q{i}@example.com" for i in range(size)))["Location"]
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_preview_shown_again_after_a_change_says_what_changed(client_for, course, course_staff, people):
    client = client_for(course_staff)
    url = submit(client, course, "ada new@example.com", action="unenroll")["Location"]
    assert "will be unenrolled: 1" in client.get(url).content.decode()
    enrollment_batch_update(course=course, identifiers="ada", action="unenroll", auto_enroll=True, email_students=False, actor=None)
    page = client.get(url, {"show": "not_enrolled"})
    assert [str(m) for m in get_messages(page.wsgi_request)] == [
        "The course changed since this preview was last shown for 1 person (ada: will be unenrolled → not enrolled)."
    ]
    assert "not enrolled: 2" in page.content.decode()
