"""The Django admin shows a batch's outcomes in words, as the results page does."""

import pytest
from django.urls import reverse

from enrollments.services import batch_job_run_inline
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_batch_job_admin_names_outcomes_by_their_labels(client_for, platform_admin, course, course_staff):
    UserFactory(username="known")
    job = batch_job_run_inline(
        course=course, identifiers=["known", "new@example.com", "nobody-here"], action="enroll", auto_enroll=True,
        email_students=False, actor=course_staff, reason="",
    )
    html = client_for(platform_admin).get(reverse("admin:enrollments_batchjob_change", args=[job.pk])).content.decode()
    assert "enrolled: 1" in html
    assert "allowed: will enroll on activation: 1" in html
    assert "no such user: 1" in html
    assert "allowed_auto" not in html
