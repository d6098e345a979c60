"""The admin lists report tasks, filtered by state and kind, searched by course key."""

import pytest
from django.urls import reverse
from django.utils import timezone

from reports.models import ReportTask

from ..factories import CourseFactory

pytestmark = pytest.mark.django_db


def test_admin_lists_filters_and_searches_report_tasks(client_for, platform_admin):
    course = CourseFactory(key="course-v1:Acme+ADMIN+2026")
    other = CourseFactory(key="course-v1:Beta+OTHER+2026")
    ReportTask.objects.create(course=course, kind="may_enroll", status="failed", error="boom", finished=timezone.now())
    ReportTask.objects.create(course=other, kind="codes", status="queued")
    client = client_for(platform_admin)
    url = reverse("admin:reports_reporttask_changelist")

    page = client.get(url).content.decode()
    assert "course-v1:Acme+ADMIN+2026" in page and "course-v1:Beta+OTHER+2026" in page

    page = client.get(url, {"status__exact": "failed"}).content.decode()
    assert "course-v1:Acme+ADMIN+2026" in page and "course-v1:Beta+OTHER+2026" not in page

    page = client.get(url, {"kind__exact": "codes"}).content.decode()
    assert "course-v1:Beta+OTHER+2026" in page and "course-v1:Acme+ADMIN+2026" not in page

    page = client.get(url, {"q": "Beta+OTHER"}).content.decode()
    assert "course-v1:Beta+OTHER+2026" in page and "course-v1:Acme+ADMIN+2026" not in page


def test_admin_shows_a_task_read_only(client_for, platform_admin, course):
    task = ReportTask.objects.create(course=course, kind="codes", status="failed", error="the disk is full")
    page = client_for(platform_admin).get(reverse("admin:reports_reporttask_change", args=[task.pk])).content.decode()
    assert "the disk is full" in page
    assert client_for(platform_admin).get(reverse("admin:reports_reporttask_add")).status_code == 403


def test_course_staff_cannot_use_the_admin(client_for, course_staff):
    response = client_for(course_staff).get(reverse("admin:reports_reporttask_changelist"))
    assert response.status_code == 302
