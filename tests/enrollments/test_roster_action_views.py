"""The learners table's per-row action pages and the progress page of large actions:
personas, guessed ids, the confirm page, Post/Redirect/Get, bad input."""

import pytest
from django.test import Client
from django.urls import reverse

from courses.models import CohortMembership
from enrollments.models import EnrollmentAudit, RosterJob, Source
from enrollments.services import roster_apply
from tests.factories import CohortFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

LEARNERS = "/courses/course-v1:Acme+ENR101+2026/instructor/learners/"


@pytest.fixture
def kim(course):
    return EnrollmentFactory(course=course, user=UserFactory(username="kim", email="kim@example.com", first_name="Kim", last_name="Lee"))


def url(course, enrollment, action):
    return reverse("learner_action", args=[course.key, enrollment.pk, action])


@pytest.mark.parametrize(("persona", "status"), [
    ("course_admin", 200), ("course_staff", 200), ("platform_admin", 200), ("other_staff", 403), ("learner", 403), (None, 302),
])
def test_who_may_open_and_post_a_row_action(request, client_for, course, kim, persona, status):
    client = client_for(request.getfixturevalue(persona) if persona else None)
    assert client.get(url(course, kim, "unenroll")).status_code == status
    response = client.post(url(course, kim, "unenroll"), {"reason": "x"})
    assert response.status_code == (302 if status in (200, 302) else status)
    if persona is None:
        assert "/accounts/login/" in response["Location"]
    kim.refresh_from_db()
    assert kim.is_active == (status != 200)  # only the team and platform admins unenrolled kim


def test_another_courses_enrollment_is_not_found_and_unchanged(client_for, course, course_staff):
    theirs = EnrollmentFactory(course=CourseFactory(), user=UserFactory(username="theirs"))
    client = client_for(course_staff)
    assert client.get(url(course, theirs, "unenroll")).status_code == 404
    assert client.post(url(course, theirs, "unenroll")).status_code == 404
    assert client.get(reverse("learner_action", args=[course.key, 999_999, "unenroll"])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active and not EnrollmentAudit.objects.exists()


def test_an_unknown_action_is_not_found(client_for, course, course_staff, kim):
    client = client_for(course_staff)
    assert client.get(url(course, kim, "delete")).status_code == 404
    assert client.post(url(course, kim, "delete")).status_code == 404


def test_the_confirm_page_names_the_learner_and_how_many_it_touches(client_for, course, course_staff, kim):
    CohortFactory(course=course, name="Red")
    page = client_for(course_staff).get(url(course, kim, "unenroll")).content.decode()
    assert "Unenroll: kim?" in page and "This touches 1 learner:" in page
    assert "Kim Lee" in page and "kim@example.com" in page
    assert 'name="reason"' in page and 'name="email_students"' in page and "checked" in page
    assert "Unenroll kim</button>" in page and f'value="{LEARNERS}"' in page


def test_unenroll_with_a_reason_redirects_to_the_learners_page_with_a_message(client_for, course, course_staff, kim):
    client = client_for(course_staff)
    response = client.post(url(course, kim, "unenroll"), {"reason": "Left the company", "email_students": ""}, follow=False)
    assert response.status_code == 302 and response["Location"] == LEARNERS
    kim.refresh_from_db()
    assert not kim.is_active
    audit = EnrollmentAudit.objects.get(course=course)
    assert (audit.actor, audit.reason, audit.source) == (course_staff, "Left the company", Source.ROSTER)
    page = client.get(reverse("instructor_info", args=[course.key])).content.decode()
    assert "kim was unenrolled. Reason: “Left the company”." in page


def test_next_brings_back_to_the_page_asked_and_never_elsewhere(client_for, course, course_staff, kim):
    client = client_for(course_staff)
    back = f"{LEARNERS}?q=ki&status=active"
    assert client.post(url(course, kim, "change_mode"), {"mode": "verified", "next": back})["Location"] == back
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        assert client.post(url(course, kim, "change_mode"), {"mode": "audit", "next": evil})["Location"] == LEARNERS


def test_change_mode_offers_the_courses_modes_and_refuses_others(client_for, course, course_staff, kim):
    client = client_for(course_staff)
    page = client.get(url(course, kim, "change_mode")).content.decode()
    assert '<option value="verified" selected>' in page and '<option value="audit">' in page and "professional" not in page
    response = client.post(url(course, kim, "change_mode"), {"mode": "professional"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    kim.refresh_from_db()
    assert kim.mode == "audit" and not EnrollmentAudit.objects.exists()
    response = client.post(url(course, kim, "change_mode"), {"mode": "verified", "reason": "Paid"})
    kim.refresh_from_db()
    assert kim.mode == "verified"
    assert EnrollmentAudit.objects.get(course=course).mode_before == "audit"


def test_move_to_a_cohort_offers_this_courses_cohorts_and_no_cohort(client_for, course, course_staff, kim):
    red = CohortFactory(course=course, name="Red")
    theirs = CohortFactory(name="Theirs")
    client = client_for(course_staff)
    page = client.get(url(course, kim, "move_cohort")).content.decode()
    assert "Red" in page and "No cohort" in page and "Theirs" not in page
    assert client.post(url(course, kim, "move_cohort"), {"cohort": str(theirs.pk)}).status_code == 400
    assert not CohortMembership.objects.exists()
    client.post(url(course, kim, "move_cohort"), {"cohort": str(red.pk)})
    assert CohortMembership.objects.get(user=kim.user, course=course).cohort == red
    response = client.post(url(course, kim, "move_cohort"), {"cohort": "none"}, follow=True)
    assert not CohortMembership.objects.exists()
    assert "kim is no longer in a cohort (was in Red)." in response.content.decode()


def test_a_reason_too_long_changes_nothing(client_for, course, course_staff, kim):
    response = client_for(course_staff).post(url(course, kim, "unenroll"), {"reason": "x" * 501})
    assert response.status_code == 400 and "at most 500 characters" in response.content.decode()
    kim.refresh_from_db()
    assert kim.is_active


def test_an_action_that_changes_nothing_says_so(client_for, course, course_staff, kim):
    client = client_for(course_staff)
    page = client.get(url(course, kim, "enroll_again")).content.decode()
    assert "Kim is already enrolled, so this changes nothing." in page
    response = client.post(url(course, kim, "enroll_again"), follow=True)
    assert "Nothing was changed: kim is already enrolled." in response.content.decode()
    assert not EnrollmentAudit.objects.exists()


def test_posting_needs_the_csrf_token(course, course_staff, kim):
    client = Client(enforce_csrf_checks=True)
    client.force_login(course_staff)
    assert client.post(url(course, kim, "unenroll")).status_code == 403
    kim.refresh_from_db()
    assert kim.is_active


# --- the progress page of a large action ---------------------------------------------------------


@pytest.fixture
def job(course, course_staff, settings):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    rows = [EnrollmentFactory(course=course) for _ in range(2)]
    # Queued, not run: the job is created in the test's transaction, whose commit never comes.
    return roster_apply(actor=course_staff, course=course, action="unenroll", enrollment_ids=[r.pk for r in rows]).job


@pytest.mark.parametrize(("persona", "status"), [
    ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302),
])
def test_who_may_see_a_jobs_progress(request, client_for, course, job, persona, status):
    client = client_for(request.getfixturevalue(persona) if persona else None)
    assert client.get(reverse("roster_job_status", args=[course.key, job.public_id])).status_code == status


def test_a_job_shows_its_progress_and_polls_until_done(client_for, course, course_staff, job):
    client = client_for(course_staff)
    page = client.get(reverse("roster_job_status", args=[course.key, job.public_id])).content.decode()
    assert "Unenroll: 2 learners" in page and "0 / 2" in page and "hx-trigger" in page
    RosterJob.objects.filter(pk=job.pk).update(status=RosterJob.Status.SUCCEEDED, done=2, summary={"changed": 2, "unchanged": 0, "refused": 0})
    fragment = client.get(reverse("roster_job_status", args=[course.key, job.public_id]), headers={"HX-Request": "true"})
    assert fragment.status_code == 286 and "changed: 2" in fragment.content.decode()


def test_another_courses_job_is_not_found(client_for, other_course, other_staff, job):
    assert client_for(other_staff).get(reverse("roster_job_status", args=[other_course.key, job.public_id])).status_code == 404


def test_a_pending_job_is_listed_under_pending_tasks(client_for, course, course_staff, job):
    page = client_for(course_staff).get(reverse("instructor_data", args=[course.key])).content.decode()
    assert "Learners: unenroll" in page and "0 / 2" in page



def test_the_admin_shows_roster_jobs_and_settings_history_read_only(client_for, platform_admin, course, course_admin, job):
    from courses.models import CourseSettingsChange
    from enrollments.services import course_settings_update

    course_settings_update(course=course, actor=course_admin, enrollment_key="secret-key", display_name="Renamed")
    client = client_for(platform_admin)
    page = client.get(reverse("admin:enrollments_rosterjob_change", args=[job.pk])).content.decode()
    assert "Unenroll" in page and "enrollment_ids" not in page
    assert client.get(reverse("admin:enrollments_rosterjob_changelist")).status_code == 200
    change = CourseSettingsChange.objects.get(course=course)
    history = client.get(reverse("admin:courses_coursesettingschange_changelist")).content.decode()
    assert "Display name: Enrollment 101 → Renamed" in history and "secret-key" not in history
    assert client.post(reverse("admin:courses_coursesettingschange_delete", args=[change.pk]), {"post": "yes"}).status_code == 403
    assert CourseSettingsChange.objects.filter(pk=change.pk).exists()
