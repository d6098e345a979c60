"""Codes that carry a period: "a year of access from redeeming" on the code
batch, chosen in the generate form, shown in the table, applied on redemption."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from codes.models import CodeBatch
from codes.services import code_batch_generate, code_redeem
from enrollments.models import Enrollment, EnrollmentAudit, Source

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def codes_url(course):
    return reverse("instructor_codes", kwargs={"course_key": course.key})


@time_machine.travel(NOW, tick=False)
def test_a_code_with_days_of_access_gives_them_from_redeeming_and_the_audit_says_so(course, course_staff, learner):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=1, duration_days=365)
    code_redeem(code=batch.codes.get().code, user=learner)
    assert Enrollment.objects.get(user=learner, course=course).access_until == NOW + timedelta(days=365)
    audit = EnrollmentAudit.objects.get(user=learner, source=Source.CODE)
    assert (audit.access_until_before, audit.access_until_after) == (None, NOW + timedelta(days=365))


@time_machine.travel(NOW, tick=False)
def test_a_code_without_days_gives_the_course_default(course, course_staff, learner):
    course.default_duration_days = 30
    course.save()
    batch = code_batch_generate(actor=course_staff, courses=[course], count=1)
    code_redeem(code=batch.codes.get().code, user=learner)
    assert Enrollment.objects.get(user=learner, course=course).access_until == NOW + timedelta(days=30)


@pytest.mark.parametrize("days", [0, 3651, "365"])
def test_days_of_access_out_of_range_are_refused_and_create_nothing(course, course_staff, days):
    with pytest.raises(ValidationError) as caught:
        code_batch_generate(actor=course_staff, courses=[course], count=1, duration_days=days)
    assert "between 1 and 3650" in " ".join(caught.value.message_dict["duration_days"])
    assert not CodeBatch.objects.exists()


def test_the_generate_form_takes_days_of_access_and_the_table_shows_them(client_for, course, course_staff):
    client = client_for(course_staff)
    page = client.get(codes_url(course)).content.decode()
    assert 'name="duration_days"' in page
    response = client.post(codes_url(course), {"courses": [course.pk], "count": 2, "uses_mode": "single", "duration_days": "365"}, follow=True)
    assert CodeBatch.objects.get().duration_days == 365
    html = response.content.decode()
    assert "each giving 365 days of access from redeeming" in html
    assert html.count('class="badge text-bg-light border access-days">365 days of access<') == 2


def test_the_generate_form_refuses_zero_days_with_a_message(client_for, course, course_staff):
    response = client_for(course_staff).post(codes_url(course), {"courses": [course.pk], "count": 1, "uses_mode": "single", "duration_days": "0"})
    assert response.status_code == 400
    assert "Days of access must be between 1 and 3650" in response.content.decode()
    assert not CodeBatch.objects.exists()
