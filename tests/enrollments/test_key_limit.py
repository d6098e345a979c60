"""Wrong self-enrollment keys are limited per user and per address
(ENROLLMENT_KEY_RATE_PER_USER / _PER_IP): the attempt after the last allowed one
answers 429 with Retry-After and enrolls nobody, even with the right key."""

import datetime

import pytest
import time_machine
from django.urls import reverse

import enrollments.views
from enrollments.models import Enrollment
from enrollments.services import WrongEnrollmentKey
from tests.factories import CourseFactory, UserFactory
from tests.races import fire_together, logged_in_clients, slowed

pytestmark = pytest.mark.django_db


@pytest.fixture
def keyed(course):
    course.enrollment_key = "sesame"
    course.save()
    return course


def _try(client, course, key, **extra):
    return client.post(reverse("self_enroll", args=[course.key]), {"enrollment_key": key}, **extra)


def _fail(client, course, n, **extra):
    for _ in range(n):
        response = _try(client, course, "wrong", **extra)
        assert response.status_code == 302, response.status_code


def test_the_eleventh_wrong_key_is_refused_even_when_right_and_the_window_resets(client_for, keyed, learner):
    with time_machine.travel(datetime.datetime(2026, 11, 25, 9, 0, tzinfo=datetime.UTC), tick=False) as traveller:
        client = client_for(learner)
        _fail(client, keyed, 10)
        response = _try(client, keyed, "sesame")
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 600
        assert "Too many wrong enrollment keys. Please wait 10 minutes" in response.content.decode()
        assert not Enrollment.objects.filter(user=learner).exists()
        traveller.shift(datetime.timedelta(minutes=10, seconds=1))
        assert _try(client, keyed, "sesame").status_code == 302
        assert Enrollment.objects.filter(user=learner, course=keyed, is_active=True).exists()


def test_the_limit_is_per_user_across_courses(client_for, keyed, learner):
    other = CourseFactory(enrollment_key="open-sesame")
    client = client_for(learner)
    _fail(client, keyed, 10)
    assert _try(client, other, "open-sesame").status_code == 429
    # another learner at another address is not affected
    assert _try(client_for(UserFactory()), other, "open-sesame", REMOTE_ADDR="10.9.8.7").status_code == 302


def test_successes_and_other_refusals_do_not_count(client_for, keyed, learner):
    client = client_for(learner)
    full = CourseFactory(enrollment_key="k", max_enrollments=0)
    for _ in range(12):
        assert _try(client, keyed, "sesame").status_code == 302  # enrolled, then already enrolled
        assert _try(client, full, "k").status_code == 302  # full: says nothing about the key
    assert "This course is full." in client.get(reverse("course_detail", args=[full.key])).content.decode()
    other = CourseFactory(enrollment_key="other")
    _fail(client, other, 9)
    assert _try(client, other, "other").status_code == 302
    assert Enrollment.objects.filter(user=learner, course=other).exists()


def test_the_address_limit_is_shared_by_everyone_there(client_for, keyed, settings):
    settings.ENROLLMENT_KEY_RATE_PER_IP = "30/10m"  # the default is far looser (a school behind NAT)
    for _ in range(3):
        _fail(client_for(UserFactory()), keyed, 10)
    newcomer = UserFactory()
    assert _try(client_for(newcomer), keyed, "sesame").status_code == 429
    assert not Enrollment.objects.filter(user=newcomer).exists()
    assert _try(client_for(newcomer), keyed, "sesame", REMOTE_ADDR="10.9.8.7").status_code == 302


def test_a_forged_forwarded_for_does_not_reset_the_limit(client_for, keyed, learner):
    client = client_for(learner)
    _fail(client, keyed, 10)
    assert _try(client, keyed, "sesame", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429


def test_a_course_without_a_key_is_not_limited(client_for, keyed, learner):
    client = client_for(learner)
    _fail(client, keyed, 10)
    assert _try(client, CourseFactory(), "").status_code == 302


def _counting_wrong_keys(monkeypatch, checked: list, wrong: list) -> None:
    """Hold every attempt that reaches the service (so all are in flight at
    once) and record which of them the service refused as a wrong key."""
    real = slowed(enrollments.views.enrollment_self_enroll, checked, "enrollment_key")

    def recording(**kwargs):
        try:
            return real(**kwargs)
        except WrongEnrollmentKey:
            wrong.append(kwargs["enrollment_key"])
            raise

    monkeypatch.setattr(enrollments.views, "enrollment_self_enroll", recording)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql  # real threads, each with its own connection
def test_thirty_wrong_keys_at_once_are_checked_exactly_ten_times(keyed, settings, monkeypatch):
    """Counted before checked: of 30 simultaneous wrong tries by one learner
    against a limit of 10, exactly 10 reach the service; the rest answer 429."""
    settings.ENROLLMENT_KEY_RATE_PER_USER = "10/1d"  # a day: the race cannot straddle a window edge
    settings.ENROLLMENT_KEY_RATE_PER_IP = "100/1d"
    checked: list = []
    wrong: list = []
    _counting_wrong_keys(monkeypatch, checked, wrong)
    learner = UserFactory()
    statuses = fire_together(logged_in_clients(learner, 30), lambda i, client: _try(client, keyed, f"guess-{i}").status_code)
    assert len(checked) == len(wrong) == 10, (checked, wrong)
    assert sorted(statuses) == [302] * 10 + [429] * 20, statuses
    assert not Enrollment.objects.filter(user=learner).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_racing_the_right_key_never_lets_more_than_ten_wrong_keys_be_checked(keyed, settings, monkeypatch):
    """The same race with the right key among the 30: once it has enrolled the
    learner, later tries only find them enrolled (which says nothing about the
    key and gives the slot back), so more than 10 may reach the service, but
    never more than 10 are checked against the key and found wrong."""
    settings.ENROLLMENT_KEY_RATE_PER_USER = "10/1d"
    settings.ENROLLMENT_KEY_RATE_PER_IP = "100/1d"
    checked: list = []
    wrong: list = []
    _counting_wrong_keys(monkeypatch, checked, wrong)
    learner = UserFactory()
    keys = [f"guess-{i}" for i in range(29)] + ["sesame"]
    statuses = fire_together(logged_in_clients(learner, 30), lambda i, client: _try(client, keyed, keys[i]).status_code)
    assert len(wrong) <= 10, wrong
    assert "sesame" not in wrong
    assert sorted(statuses) == [302] * len(checked) + [429] * (30 - len(checked)), statuses
    assert Enrollment.objects.filter(user=learner).exists() == ("sesame" in checked)
