"""Self-enrollment: the course page and the catalog show the course's real state
before the click, and the enroll service refuses by the same rule."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import Course
from enrollments.models import Enrollment
from enrollments.rules import Status, self_enrollment_decide
from tests.factories import AllowanceFactory, CourseFactory, EnrollmentFactory

UTC = dt.UTC
OPENS = dt.datetime(2099, 1, 12, 9, 0, tzinfo=UTC)
CLOSED = dt.datetime(2020, 3, 3, 17, 30, tzinfo=UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)


# --- the rule, without a database ---------------------------------------------------


def decide(course=None, **facts):
    facts = {"is_enrolled": False, "was_enrolled": False, "invited": False, "active_count": 0, "now": NOW} | facts
    return self_enrollment_decide(course=course or Course(), **facts)


@pytest.mark.parametrize(
    "fields, status, message",
    [
        ({}, Status.OPEN, ""),
        ({"enrollment_start": OPENS}, Status.NOT_YET_OPEN, "Enrollment opens on 12 January 2099 at 09:00 (UTC)."),
        ({"enrollment_end": CLOSED}, Status.CLOSED, "Enrollment closed on 3 March 2020 at 17:30 (UTC)."),
        ({"invitation_only": True}, Status.INVITATION_ONLY, "This course is by invitation only. Ask the course team for an invitation."),
        ({"self_enrollment": False}, Status.TEAM_ONLY, "Learners cannot enroll themselves in this course; the course team enrolls its learners."),
        ({"max_enrollments": 3}, Status.FULL, "This course is full."),
    ],
)
def test_the_rule_says_why_not(fields, status, message):
    decision = decide(Course(**fields), active_count=3)
    assert (decision.status, decision.message, decision.may_enroll) == (status, message, status == Status.OPEN)


@pytest.mark.parametrize("fields", [{"enrollment_start": OPENS}, {"enrollment_end": CLOSED}, {"invitation_only": True}, {"self_enrollment": False}])
def test_an_allowance_lets_in_past_dates_and_invitation_only(fields):
    decision = decide(Course(enrollment_key="sesame", **fields), invited=True)
    assert decision.may_enroll and decision.invited and not decision.needs_key


def test_the_cap_holds_for_invited_people_too():
    assert decide(Course(max_enrollments=2), invited=True, active_count=2).status == Status.FULL
    assert decide(Course(max_enrollments=2), invited=True, active_count=1).may_enroll


def test_the_key_is_asked_on_the_page_and_checked_on_enroll():
    course = Course(enrollment_key="sesame")
    assert decide(course).needs_key and decide(course).may_enroll  # the page: not typed yet
    assert decide(course, enrollment_key=" sesame ").may_enroll
    assert decide(course, enrollment_key="").status == Status.WRONG_KEY
    assert decide(course, enrollment_key="Sesame").message == "That enrollment key is not right. Check it with your course team."


def test_enrolled_people_are_enrolled_whatever_the_course_state():
    assert decide(Course(enrollment_end=CLOSED, max_enrollments=1), is_enrolled=True, active_count=5).status == Status.ENROLLED


# --- the course page ------------------------------------------------------------------

def page(client, course):
    return client.get(reverse("course_detail", args=[course.key])).content.decode()


def enroll(client, course, **data):
    return client.post(reverse("self_enroll", args=[course.key]), data, follow=True).content.decode()


ENROLL_BUTTON = '<button type="submit" class="btn btn-primary">Enroll</button>'


@pytest.mark.django_db
def test_open_course_with_a_key_shows_the_key_field_and_enrolls_with_it(client_for, course, learner):
    course.enrollment_key = "sesame"
    course.save()
    client = client_for(learner)
    html = page(client, course)
    assert ENROLL_BUTTON in html and 'name="enrollment_key"' in html
    assert "That enrollment key is not right" in enroll(client, course, enrollment_key="wrong")
    assert not Enrollment.objects.filter(user=learner).exists()
    assert "You are enrolled in Enrollment 101." in enroll(client, course, enrollment_key="sesame")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, message",
    [
        ({"enrollment_start": OPENS}, "Enrollment opens on 12 January 2099 at 09:00 (UTC)."),
        ({"enrollment_end": CLOSED}, "Enrollment closed on 3 March 2020 at 17:30 (UTC)."),
        ({"invitation_only": True}, "This course is by invitation only."),
        ({"self_enrollment": False}, "the course team enrolls its learners"),
        ({"max_enrollments": 1}, "This course is full."),
    ],
)
def test_a_course_you_cannot_enroll_in_says_why_and_offers_no_button(client_for, course, learner, fields, message):
    Course.objects.filter(pk=course.pk).update(**fields)
    EnrollmentFactory(course=course)  # takes the one place of the capped course
    client = client_for(learner)
    html = page(client, course)
    assert message in html
    assert ENROLL_BUTTON not in html and 'name="enrollment_key"' not in html
    # The server still refuses a POST made without the button.
    assert message in enroll(client, course)
    assert not Enrollment.objects.filter(user=learner).exists()


@pytest.mark.django_db
def test_a_learner_who_left_a_full_course_is_not_promised_their_place_back(client_for, course, learner):
    Course.objects.filter(pk=course.pk).update(max_enrollments=1)
    EnrollmentFactory(course=course, user=learner, is_active=False)
    EnrollmentFactory(course=course)
    html = page(client_for(learner), course)
    assert "This course is full." in html and "enrolling again restores your place" not in html


@pytest.mark.django_db
def test_a_learner_who_left_an_open_course_is_told_enrolling_restores_their_place(client_for, course, learner):
    EnrollmentFactory(course=course, user=learner, is_active=False)
    html = page(client_for(learner), course)
    assert ENROLL_BUTTON in html and "enrolling again restores your place" in html


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [{"enrollment_end": CLOSED}, {"invitation_only": True}, {"enrollment_start": OPENS, "enrollment_key": "k"}])
def test_an_allowance_lets_the_learner_in(client_for, course, learner, fields):
    Course.objects.filter(pk=course.pk).update(**fields)
    AllowanceFactory(course=course, email=learner.email.upper(), auto_enroll=False)
    client = client_for(learner)
    html = page(client, course)
    assert "You have been invited to this course." in html
    assert ENROLL_BUTTON in html and 'name="enrollment_key"' not in html
    assert "You are enrolled in Enrollment 101." in enroll(client, course)
    assert Enrollment.objects.get(user=learner, course=course).is_active


@pytest.mark.django_db
def test_an_enrolled_learner_sees_unenroll_even_after_enrollment_closed(client_for, course, learner):
    Course.objects.filter(pk=course.pk).update(enrollment_end=CLOSED)
    EnrollmentFactory(course=course, user=learner, mode="audit")
    html = page(client_for(learner), course)
    assert "You are enrolled in this course (audit)." in html and ">Unenroll<" in html
    assert "Enrollment closed" not in html and ENROLL_BUTTON not in html


@pytest.mark.django_db
def test_anonymous_visitors_see_the_state_too(client, course):
    html = page(client, course)
    assert "Enrollment is open." in html and "to enroll" in html
    Course.objects.filter(pk=course.pk).update(enrollment_end=CLOSED)
    html = page(client, course)
    assert "Enrollment closed on 3 March 2020 at 17:30 (UTC)." in html and ENROLL_BUTTON not in html


# --- the catalog ----------------------------------------------------------------------


@pytest.mark.django_db
def test_catalog_shows_each_course_state_for_the_visitor_in_a_fixed_number_of_queries(client_for, learner, django_assert_max_num_queries):
    courses = {
        "open": CourseFactory(display_name="Open course"),
        "key": CourseFactory(display_name="Keyed course", enrollment_key="k"),
        "soon": CourseFactory(display_name="Soon course", enrollment_start=OPENS),
        "closed": CourseFactory(display_name="Closed course", enrollment_end=CLOSED),
        "invite": CourseFactory(display_name="Invite course", invitation_only=True),
        "invited": CourseFactory(display_name="Invited course", invitation_only=True),
        "team": CourseFactory(display_name="Team course", self_enrollment=False),
        "full": CourseFactory(display_name="Full course", max_enrollments=1),
        "mine": CourseFactory(display_name="My course", enrollment_end=CLOSED),
    }
    EnrollmentFactory(course=courses["full"])
    EnrollmentFactory(course=courses["mine"], user=learner)
    AllowanceFactory(course=courses["invited"], email=learner.email)
    client = client_for(learner)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("course_catalog"))
    labels = {course.display_name: decision.label for course, decision in response.context["rows"]}
    assert labels == {
        "Open course": "Open",
        "Keyed course": "Open, with a key",
        "Soon course": "Opens 12 Jan 2099",
        "Closed course": "Closed 3 Mar 2020",
        "Invite course": "Invitation only",
        "Invited course": "Invited",
        "Team course": "By the course team",
        "Full course": "Full",
        "My course": "Enrolled",
    }
    html = response.content.decode()
    assert ">Opens 12 Jan 2099<" in html and ">Full<" in html and ">Enrolled<" in html


@pytest.mark.django_db
def test_catalog_for_anonymous_visitors(client):
    CourseFactory(display_name="Closed course", enrollment_end=timezone.now() - dt.timedelta(days=1))
    CourseFactory(display_name="Open course")
    html = client.get(reverse("course_catalog")).content.decode()
    assert ">Open<" in html and ">Closed " in html
