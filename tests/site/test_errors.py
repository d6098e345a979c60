"""One error vocabulary (enrollment_site/lib/errors.py): a service's AppError is
a message on the page and a JSON error in the API, a missing unit is a 404 on a
page and a failed job's message in a worker (never Http404 below the views), and
a permission refusal is never retried as a transient fault by a task."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from enrollment_site.lib.errors import AppError, Conflict
from enrollments import tasks as enrollment_tasks
from organisations.selectors.targets import Target, TargetNotFound

pytestmark = pytest.mark.django_db


def test_an_app_error_a_view_leaves_is_a_message_on_the_page_it_came_from(client_for, learner, course, monkeypatch):
    def refuse(**kwargs):
        raise AppError("You cannot leave this course today.")

    monkeypatch.setattr("enrollments.views.enrollment_self_unenroll", refuse)
    page = reverse("course_detail", args=[course.key])
    response = client_for(learner).post(
        reverse("self_unenroll", args=[course.key]), HTTP_REFERER=f"http://testserver{page}", follow=True
    )
    assert response.redirect_chain[-1][0].endswith(page)
    assert "You cannot leave this course today." in response.content.decode()


def test_an_app_error_in_the_api_is_json_with_its_status(platform_admin, course, monkeypatch):
    def clash(**kwargs):
        raise Conflict("Another change of this course is running; try again.")

    monkeypatch.setattr("enrollments.api.views.enrollment_bulk_update", clash)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=platform_admin).key}")
    response = client.post(
        reverse("api_bulk_enroll"),
        {"action": "enroll", "auto_enroll": True, "email_students": False, "identifiers": "amy", "courses": course.key},
        format="json",
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "Another change of this course is running; try again.", "code": "conflict"}


def test_a_missing_unit_is_not_found_below_the_views_and_a_404_on_a_page(client_for, platform_admin):
    with pytest.raises(TargetNotFound):
        Target.parse("department", 999_999)
    response = client_for(platform_admin).get(reverse("org_unit_edit", kwargs={"kind": "department", "pk": 999_999}))
    assert response.status_code == 404


def test_a_permission_refusal_is_not_retried_by_an_enrollment_task(monkeypatch):
    # PermissionError is an OSError, which send_notifications retries as a
    # transient fault; PermissionDenied is a refusal and must not be.
    assert issubclass(PermissionError, enrollment_tasks.send_notifications.autoretry_for)
    assert not issubclass(PermissionDenied, enrollment_tasks.send_notifications.autoretry_for)
    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise PermissionDenied("not yours")

    monkeypatch.setattr(enrollment_tasks.services, "notifications_send", refuse)
    with pytest.raises(PermissionDenied):
        enrollment_tasks.send_notifications.apply(args=["x"], throw=True)
    assert len(calls) == 1
