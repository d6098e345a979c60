"""The bulk enroll API's period fields: access_from, access_until, duration_days
in the body; the answer's top-level access_from/access_until only for callers
that named one (old clients see the seed's shape)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from enrollments.models import Allowance, BulkEnrollJob, Enrollment, EnrollmentAudit
from tests.enrollments.test_api import api, bulk
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
END = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_a_call_without_period_fields_keeps_the_seeds_shape(course, course_staff):
    UserFactory(username="ada")
    answer = bulk(api(course_staff), identifiers="ada", courses=course.key).json()
    assert set(answer) == {"action", "courses", "email_students", "auto_enroll"}
    assert Enrollment.objects.get(course=course).access_until is None


def test_an_end_date_is_given_to_enrollments_and_invitations_and_answered(course, course_staff):
    UserFactory(username="ada")
    response = bulk(api(course_staff), identifiers="ada, new@example.com", courses=course.key, access_until="2026-12-31")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["access_from"], answer["access_until"]) == (None, END.isoformat())
    assert Enrollment.objects.get(course=course).access_until == END
    assert Allowance.objects.get(course=course).access_until == END
    assert EnrollmentAudit.objects.get(user__username="ada").access_until_after == END


@time_machine.travel(NOW, tick=False)
def test_a_duration_is_answered_as_the_end_it_gives(course, other_course, course_staff, other_staff):
    UserFactory(username="ada")
    both = UserFactory(username="both")
    from courses.models import CourseRole

    CourseRole.objects.create(user=both, course=course, role="staff")
    CourseRole.objects.create(user=both, course=other_course, role="staff")
    answer = bulk(api(both), identifiers="ada", courses=f"{course.key},{other_course.key}", duration_days=30).json()
    assert answer["access_until"] == (NOW + timedelta(days=30)).isoformat()
    assert set(Enrollment.objects.filter(user__username="ada").values_list("access_until", flat=True)) == {NOW + timedelta(days=30)}


def test_the_dry_run_answers_the_period_and_writes_nothing(course, course_staff):
    UserFactory(username="ada")
    answer = bulk(api(course_staff), identifiers="ada", courses=course.key, access_until="2026-12-31", dry_run=True).json()
    assert answer["access_until"] == END.isoformat()
    assert not Enrollment.objects.exists()


def test_named_but_empty_period_fields_answer_nulls_and_the_course_default_applies(course, course_staff):
    UserFactory(username="ada")
    course.default_duration_days = 10
    course.save()
    answer = bulk(api(course_staff), identifiers="ada", courses=course.key, access_from=None, access_until="").json()
    assert (answer["access_from"], answer["access_until"]) == (None, None)
    enrollment = Enrollment.objects.get(course=course)
    assert enrollment.access_until == enrollment.created + timedelta(days=10)


def test_an_active_enrollment_keeps_its_period(course, course_staff):
    kept = datetime(2030, 1, 1, tzinfo=UTC)
    EnrollmentFactory(course=course, user=UserFactory(username="ada"), access_until=kept)
    bulk(api(course_staff), identifiers="ada", courses=course.key, access_until="2026-12-31")
    assert Enrollment.objects.get(course=course).access_until == kept


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"access_until": "someday"}, "access_until", "is not a date"),
    ({"duration_days": 0}, "duration_days", "from 1 to 3650 days"),
    ({"duration_days": "many"}, "duration_days", "is not a whole number of days"),
    ({"access_from": "2027-01-02", "access_until": "2027-01-01"}, "access_until", "must come after its start"),
    ({"access_until": "2027-01-01", "duration_days": 5}, "duration_days", "not both"),
    ({"action": "unenroll", "access_until": "2027-01-01"}, "access_until", "only applies to enroll"),
])
def test_bad_period_values_are_a_400_naming_the_field_and_change_nothing(course, course_staff, body, field, message):
    UserFactory(username="ada")
    response = bulk(api(course_staff), identifiers="ada", courses=course.key, **body)
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Enrollment.objects.exists() and not EnrollmentAudit.objects.exists()


def test_a_queued_call_keeps_the_period_and_answers_it(settings, commit_callbacks, course, course_staff):
    for name in ("ada", "bob", "cy", "dee"):
        UserFactory(username=name)
    settings.ENROLLMENT_SYNC_LIMIT = 3
    client = api(course_staff)
    with commit_callbacks():
        response = bulk(client, identifiers="ada, bob, cy, dee", courses=course.key, access_until="2026-12-31")
    assert response.status_code == 202
    job = BulkEnrollJob.objects.get()
    assert job.payload["period"] == {"access_until": END.isoformat()}
    assert client.get(response.json()["url"]).json()["result"]["access_until"] == END.isoformat()
    assert set(Enrollment.objects.values_list("access_until", flat=True)) == {END}
