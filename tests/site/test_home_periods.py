"""The learner's home with enrollment periods: Current courses holds what is
enrolled now or about to start (with its dates), Past courses what has ended."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from ..factories import CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def section(html: str, heading_id: str) -> str:
    match = re.search(rf'<section aria-labelledby="{heading_id}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def test_upcoming_shows_its_start_and_end_and_an_expired_course_moves_to_past_courses(client):
    learner = UserFactory()
    now = timezone.now()
    start, end = now + 3 * DAY, now + 40 * DAY
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Open course"))
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Later course"), access_from=start, access_until=end)
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Bounded course"), access_until=end)
    # ended, whether the expiry task has ended the row yet or not
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Lapsed course"), access_until=now - DAY)
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Expired course"), is_active=False, access_until=now - 5 * DAY)
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Left course"), is_active=False)
    client.force_login(learner)
    html = client.get(reverse("home")).content.decode()
    current, past = section(html, "current-courses"), section(html, "past-courses")
    assert all(name in current for name in ("Open course", "Later course", "Bounded course"))
    assert not any(name in current for name in ("Lapsed course", "Expired course", "Left course"))
    assert f"Starts <time datetime=\"{timezone.localtime(start).isoformat()}\">{timezone.localtime(start):%-d %b %Y}</time>" in current
    assert current.count(f"Access until <time datetime=\"{timezone.localtime(end).isoformat()}\"") == 2
    assert current.count("Starts") == 1
    assert "Lapsed course" in past and "Expired course" in past and "Left course" not in past
    assert past.index("Lapsed course") < past.index("Expired course")  # the latest end first


def test_no_past_courses_section_without_an_ended_period(client):
    learner = UserFactory()
    EnrollmentFactory(user=learner)
    client.force_login(learner)
    assert 'id="past-courses"' not in client.get(reverse("home")).content.decode()
