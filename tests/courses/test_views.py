"""Course pages: catalog, course page, course creation and the instructor
dashboard's permission matrix and course team management."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from courses.models import Course, CourseRole
from enrollments.models import Enrollment

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

COURSE_KEY = "course-v1:Acme+ENR101+2026"
TABS = ["instructor_info", "instructor_membership", "instructor_data", "instructor_codes"]
PERSONAS = ["anonymous", "learner", "other_staff", "course_staff", "course_admin", "platform_admin"]


@pytest.fixture
def persona(request):
    """The user for a persona name (None for anonymous)."""

    def get(name):
        return None if name == "anonymous" else request.getfixturevalue(name)

    return get


def _roles(course) -> dict[str, str]:
    return dict(CourseRole.objects.filter(course=course).values_list("user__username", "role"))


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _assert_login_redirect(response):
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login") + "?next=")


# --- the permission matrix ------------------------------------------------------------

TAB_STATUS = {"learner": 403, "other_staff": 403, "course_staff": 200, "course_admin": 200, "platform_admin": 200}
TEAM_CHANGE_ALLOWED = {"learner": False, "other_staff": False, "course_staff": False, "course_admin": True, "platform_admin": True}


@pytest.mark.parametrize("name", PERSONAS)
@pytest.mark.parametrize("tab", TABS)
def test_instructor_tabs_permission_matrix(course, course_admin, client_for, persona, name, tab):
    url = reverse(tab, args=[COURSE_KEY])
    response = client_for(persona(name)).get(url)
    if name == "anonymous":
        _assert_login_redirect(response)
    else:
        assert response.status_code == TAB_STATUS[name], name
    if response.status_code == 200:
        assert b"Enrollment 101" in response.content
        assert COURSE_KEY.encode() in response.content


@pytest.mark.parametrize("name", PERSONAS)
def test_instructor_dashboard_permission_matrix(course, course_admin, client_for, persona, name):
    response = client_for(persona(name)).get(reverse("instructor_dashboard", args=[COURSE_KEY]))
    if name == "anonymous":
        _assert_login_redirect(response)
    elif TAB_STATUS[name] == 403:
        assert response.status_code == 403
    else:
        assert response.status_code == 302
        assert response.url == reverse("instructor_info", args=[COURSE_KEY])


@pytest.mark.parametrize("name", PERSONAS)
def test_team_add_permission_matrix(course, course_admin, client_for, persona, name):
    newcomer = UserFactory(username="newcomer")
    response = client_for(persona(name)).post(
        reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "newcomer", "role": "staff"}
    )
    if name == "anonymous":
        _assert_login_redirect(response)
    elif TEAM_CHANGE_ALLOWED[name]:
        assert response.status_code == 302
        assert response.url == reverse("instructor_membership", args=[COURSE_KEY])
    else:
        assert response.status_code == 403
    expected = TEAM_CHANGE_ALLOWED.get(name, False)
    assert CourseRole.objects.filter(course=course, user=newcomer).exists() is expected


@pytest.mark.parametrize("name", PERSONAS)
def test_team_remove_permission_matrix(course, course_admin, course_staff, client_for, persona, name):
    response = client_for(persona(name)).post(reverse("course_team_remove", args=[COURSE_KEY, course_staff.pk]))
    if name == "anonymous":
        _assert_login_redirect(response)
    elif TEAM_CHANGE_ALLOWED[name]:
        assert response.status_code == 302
    else:
        assert response.status_code == 403
    still_there = CourseRole.objects.filter(course=course, user=course_staff).exists()
    assert still_there is not TEAM_CHANGE_ALLOWED.get(name, False)


def test_team_changes_need_post(course, course_admin, course_staff, client_for):
    client = client_for(course_admin)
    assert client.get(reverse("course_team_add", args=[COURSE_KEY])).status_code == 405
    assert client.get(reverse("course_team_remove", args=[COURSE_KEY, course_staff.pk])).status_code == 405
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


@pytest.mark.parametrize("name", ["learner", "course_admin", "platform_admin"])
@pytest.mark.parametrize(
    ("url_name", "method"),
    [(tab, "get") for tab in ["instructor_dashboard", *TABS]] + [("course_team_add", "post"), ("course_detail", "get")],
)
def test_unknown_course_key_is_404(course, course_admin, client_for, persona, name, url_name, method):
    client = client_for(persona(name))
    response = getattr(client, method)(reverse(url_name, args=["course-v1:Acme+NOPE+2026"]))
    assert response.status_code == 404


def test_unknown_course_key_on_team_remove_is_404(course, course_admin, course_staff, client_for):
    response = client_for(course_admin).post(reverse("course_team_remove", args=["course-v1:Acme+NOPE+2026", course_staff.pk]))
    assert response.status_code == 404


def test_malformed_course_key_is_404(client_for, platform_admin):
    assert client_for(platform_admin).get("/courses/not-a-course-key/instructor/info/").status_code == 404


def test_staff_of_one_course_cannot_reach_another_through_the_team_pages(course, other_course, course_admin, client_for):
    """Admin of course A gets 403 on course B's team, and nothing changes there."""
    target = UserFactory(username="target")
    client = client_for(course_admin)
    response = client.post(reverse("course_team_add", args=[other_course.key]), {"identifier": "target", "role": "admin"})
    assert response.status_code == 403
    assert not CourseRole.objects.filter(course=other_course, user=target).exists()


# --- the Membership tab's course team ----------------------------------------------------


def test_membership_lists_the_team_and_shows_team_controls_to_admins_only(course, course_admin, course_staff, client_for):
    admin_page = client_for(course_admin).get(reverse("instructor_membership", args=[COURSE_KEY])).content.decode()
    assert "courseadmin" in admin_page and "coursestaff" in admin_page
    assert reverse("course_team_add", args=[COURSE_KEY]) in admin_page
    assert reverse("course_team_remove", args=[COURSE_KEY, course_staff.pk]) in admin_page

    staff_page = client_for(course_staff).get(reverse("instructor_membership", args=[COURSE_KEY])).content.decode()
    assert "courseadmin" in staff_page and "coursestaff" in staff_page
    assert reverse("course_team_add", args=[COURSE_KEY]) not in staff_page
    assert reverse("course_team_remove", args=[COURSE_KEY, course_staff.pk]) not in staff_page


@pytest.mark.parametrize("identifier", ["newcomer", "new.comer@example.com", "NEW.Comer@EXAMPLE.com", "  newcomer  "])
def test_team_add_by_username_or_email_enrolls_the_member(course, course_admin, client_for, identifier):
    newcomer = UserFactory(username="newcomer", email="New.Comer@example.com")

    response = client_for(course_admin).post(
        reverse("course_team_add", args=[COURSE_KEY]), {"identifier": identifier, "role": "staff"}, follow=True
    )

    assert response.status_code == 200
    assert _roles(course) == {"courseadmin": "admin", "newcomer": "staff"}
    assert Enrollment.objects.filter(user=newcomer, course=course, is_active=True).exists()
    assert "newcomer is now staff of this course." in response.content.decode()
    # The new member now reaches the dashboard.
    assert client_for(newcomer).get(reverse("instructor_info", args=[COURSE_KEY])).status_code == 200


def test_team_member_counts_in_the_enrollment_figure(course, course_admin, client_for):
    UserFactory(username="newcomer")
    client = client_for(course_admin)
    client.post(reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "newcomer", "role": "staff"})
    response = client.get(reverse("instructor_info", args=[COURSE_KEY]))
    assert response.context["counts"]["total"] == Enrollment.objects.filter(course=course, is_active=True).count() == 1


def test_team_add_changes_a_role(course, course_admin, course_staff, client_for):
    client = client_for(course_admin)
    response = client.post(reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "coursestaff", "role": "admin"})
    assert response.status_code == 302
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "admin"}
    assert CourseRole.objects.filter(course=course, user=course_staff).count() == 1
    # The promoted member may now change the team.
    response = client_for(course_staff).post(reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "courseadmin", "role": "staff"})
    assert response.status_code == 302
    assert _roles(course) == {"courseadmin": "staff", "coursestaff": "admin"}


@pytest.mark.parametrize(
    ("identifier", "message"),
    [("ghost", "No user with the username or email"), ("ghost@example.com", "No user with the username or email")],
)
def test_team_add_of_an_unknown_person_says_so(course, course_admin, client_for, identifier, message):
    response = client_for(course_admin).post(
        reverse("course_team_add", args=[COURSE_KEY]), {"identifier": identifier, "role": "staff"}, follow=True
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _roles(course) == {"courseadmin": "admin"}


def test_team_add_of_an_inactive_account_is_refused(course, course_admin, client_for):
    UserFactory(username="sleeper", is_active=False)
    response = client_for(course_admin).post(
        reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "sleeper", "role": "staff"}, follow=True
    )
    assert "is not active" in response.content.decode()
    assert _roles(course) == {"courseadmin": "admin"}


def test_team_add_with_an_unknown_role_is_refused(course, course_admin, client_for):
    UserFactory(username="newcomer")
    client_for(course_admin).post(reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "newcomer", "role": "owner"})
    assert _roles(course) == {"courseadmin": "admin"}


def test_team_remove(course, course_admin, course_staff, client_for):
    response = client_for(course_admin).post(reverse("course_team_remove", args=[COURSE_KEY, course_staff.pk]), follow=True)
    assert response.status_code == 200
    assert "coursestaff was removed from the course team." in response.content.decode()
    assert _roles(course) == {"courseadmin": "admin"}
    assert client_for(course_staff).get(reverse("instructor_info", args=[COURSE_KEY])).status_code == 403


def test_last_admin_cannot_be_removed(course, course_admin, course_staff, client_for):
    response = client_for(course_admin).post(reverse("course_team_remove", args=[COURSE_KEY, course_admin.pk]), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "A course needs at least one admin; add another admin first." in page
    assert "was removed" not in page
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}


def test_last_admin_cannot_demote_themself(course, course_admin, client_for):
    response = client_for(course_admin).post(
        reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "courseadmin", "role": "staff"}, follow=True
    )
    assert "A course needs at least one admin" in response.content.decode()
    assert _roles(course) == {"courseadmin": "admin"}


def test_platform_admin_may_remove_a_course_admin_when_another_admin_remains(course, course_admin, course_staff, platform_admin, client_for):
    client = client_for(platform_admin)
    client.post(reverse("course_team_add", args=[COURSE_KEY]), {"identifier": "coursestaff", "role": "admin"})
    response = client.post(reverse("course_team_remove", args=[COURSE_KEY, course_admin.pk]))
    assert response.status_code == 302
    assert _messages(response)[-1] == "courseadmin was removed from the course team."
    assert _roles(course) == {"coursestaff": "admin"}


def test_removing_someone_not_on_the_team_changes_nothing(course, course_admin, learner, client_for):
    response = client_for(course_admin).post(reverse("course_team_remove", args=[COURSE_KEY, learner.pk]), follow=True)
    assert "not on the course team" in response.content.decode()
    assert _roles(course) == {"courseadmin": "admin"}


# --- creating courses ----------------------------------------------------------------

NEW_COURSE = {
    "key": "course-v1:Acme+NEW101+2026",
    "display_name": "A brand new course",
    "description": "",
    "modes": "verified,audit",
    "self_enrollment": "on",
    "enrollment_key": "",
    "max_enrollments": "",
}


def test_platform_admin_creates_a_course_and_becomes_its_admin(platform_admin, client_for):
    client = client_for(platform_admin)
    assert client.get(reverse("course_new")).status_code == 200

    response = client.post(reverse("course_new"), NEW_COURSE)

    assert response.status_code == 302, response.content.decode()[:2000]
    course = Course.objects.get(key="course-v1:Acme+NEW101+2026")
    assert response.url == reverse("course_detail", args=[course.key])
    assert course.display_name == "A brand new course"
    assert course.org == "Acme"
    assert course.default_mode == "verified"
    assert _roles(course) == {"platformadmin": "admin"}
    assert Enrollment.objects.filter(user=platform_admin, course=course, is_active=True).exists()


def test_course_form_rejects_a_bad_key(platform_admin, client_for):
    response = client_for(platform_admin).post(reverse("course_new"), {**NEW_COURSE, "key": "Acme/NEW101/2026"})
    assert response.status_code == 200
    assert "course-v1:ORG+NUMBER+RUN" in response.content.decode()
    assert not Course.objects.exists()


def test_course_form_rejects_a_duplicate_key(course, platform_admin, client_for):
    response = client_for(platform_admin).post(reverse("course_new"), {**NEW_COURSE, "key": COURSE_KEY})
    assert response.status_code == 200
    assert Course.objects.filter(key=COURSE_KEY).count() == 1
    assert Course.objects.get(key=COURSE_KEY).display_name == "Enrollment 101"


@pytest.mark.parametrize("name", ["learner", "course_staff", "course_admin"])
def test_only_platform_admins_create_courses(course, client_for, persona, name):
    client = client_for(persona(name))
    assert client.get(reverse("course_new")).status_code == 403
    assert client.post(reverse("course_new"), NEW_COURSE).status_code == 403
    assert not Course.objects.filter(key=NEW_COURSE["key"]).exists()


def test_anonymous_is_sent_to_login_for_course_creation(client):
    _assert_login_redirect(client.get(reverse("course_new")))
    _assert_login_redirect(client.post(reverse("course_new"), NEW_COURSE))
    assert not Course.objects.exists()


# --- catalog and course page ----------------------------------------------------------------


def test_catalog_lists_courses(course, other_course, client):
    response = client.get(reverse("course_catalog"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enrollment 101" in page and "Another course" in page
    assert reverse("course_detail", args=[COURSE_KEY]) in page
    assert reverse("course_new") not in page


def test_catalog_offers_new_course_to_platform_admins(course, platform_admin, client_for):
    assert reverse("course_new") in client_for(platform_admin).get(reverse("course_catalog")).content.decode()


@pytest.mark.parametrize("name", PERSONAS)
def test_course_page_renders_and_links_the_dashboard_for_the_team_only(course, course_admin, client_for, persona, name):
    response = client_for(persona(name)).get(reverse("course_detail", args=[COURSE_KEY]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enrollment 101" in page
    assert COURSE_KEY in page
    dashboard = reverse("instructor_info", args=[COURSE_KEY])
    assert (dashboard in page) is (TAB_STATUS.get(name) == 200)


@pytest.mark.parametrize(("start", "end", "on_info", "on_course_page"), [
    (None, None, "Any time (no start or end date)", "Any time (no start or end date)"),
    ("2026-01-05", None, "From 2026-01-05, no end date", "From 2026-01-05 09:00, no end date"),
    (None, "2026-02-01", "Until 2026-02-01", "Until 2026-02-01 09:00"),
    ("2026-01-05", "2026-02-01", "2026-01-05 to 2026-02-01", "2026-01-05 09:00 to 2026-02-01 09:00"),
])
def test_the_enrollment_window_is_said_in_words(client_for, course, course_staff, start, end, on_info, on_course_page):
    import datetime

    def day(text):
        return datetime.datetime.fromisoformat(text).replace(hour=9, tzinfo=datetime.UTC) if text else None

    course.enrollment_start, course.enrollment_end = day(start), day(end)
    course.save()
    client = client_for(course_staff)
    info = client.get(reverse("instructor_info", args=[course.key])).content.decode()
    assert f'<dd id="enrollment-window">{on_info}</dd>' in info  # was "always – no end"
    detail = client.get(reverse("course_detail", args=[course.key])).content.decode()
    assert f'id="enrollment-window">{on_course_page}</dd>' in detail  # was "always to no end"


def test_course_dates_not_set_are_said_so(client, course):
    detail = client.get(reverse("course_detail", args=[course.key])).content.decode()
    assert '<dd class="col-sm-9" id="course-dates">Not set</dd>' in detail  # was "— to —"
