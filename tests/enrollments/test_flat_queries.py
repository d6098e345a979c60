"""The pages a big course touches cost the same queries on a course of 10 and
of 2,000 enrollments, and none of them counts the course's enrollments: the
counters answer (Course info and its chart, the roster's total, the cap check
of self-enrollment; Course info counts only rows with a period, from partial
indexes); the Codes tab (page 1 and a later page) counts neither enrollments
nor codes; a report's task runs the same statements but for its progress. (The
enrollment list API's: tests/enrollments/test_api_list.py.)"""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from courses.models import CourseRole
from enrollments.models import Enrollment

from ..factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = pytest.mark.django_db


def course_of(size: int, **fields):
    """A course of ``size`` enrollments made over 30 days, a tenth of them ended, written set-based."""
    course = CourseFactory(**fields)
    users = get_user_model().objects.bulk_create(UserFactory.build_batch(size))
    now = timezone.now()
    Enrollment.objects.bulk_create([
        Enrollment(user=u, course=course, mode=("audit", "verified")[i % 2], is_active=i % 10 != 0, created=now - dt.timedelta(days=i % 30))
        for i, u in enumerate(users)
    ])
    return course


def queries_of(request) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code in (200, 302), response.status_code
    return [q["sql"] for q in captured.captured_queries]


def counts_enrollments(sql: str) -> bool:
    return "COUNT(" in sql.upper() and '"enrollments_enrollment"' in sql


@pytest.mark.parametrize("chart_range", ["", "all"])
def test_course_info_costs_the_same_on_a_course_of_10_and_of_2000(client, chart_range):
    seen = {}
    for size in (10, 2000):
        course = course_of(size)
        client.force_login(CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user)
        url = reverse("instructor_info", args=[course.key]) + (f"?range={chart_range}" if chart_range else "")
        client.get(url)  # warm the session and caches alike for both sizes
        seen[size] = queries_of(lambda url=url: client.get(url))
        # The enrollment table is read once: the periods' counts, over the partial indexes of rows with a period
        # (test_course_info_periods.py); the totals come from the counters.
        reads = [q for q in seen[size] if '"enrollments_enrollment"' in q]
        assert len(reads) == 1 and '"access_from" >' in reads[0] and '"access_until" >' in reads[0]
    assert len(seen[10]) == len(seen[2000])


def test_the_roster_costs_the_same_on_a_course_of_10_and_of_2000(client):
    seen = {}
    for size in (10, 2000):
        course = course_of(size)
        client.force_login(CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user)
        url = reverse("instructor_learners", args=[course.key])
        client.get(url)
        seen[size] = queries_of(lambda url=url: client.get(url))
        assert not any(counts_enrollments(q) for q in seen[size])  # the total from the counters
        page = client.get(url).content.decode()
        assert f"{size:,}" in page
    assert len(seen[10]) == len(seen[2000])


def test_self_enrollment_into_a_capped_course_costs_the_same_on_a_course_of_10_and_of_2000(client):
    seen = {}
    for size in (10, 2000):
        course = course_of(size, self_enrollment=True, max_enrollments=size)
        learner = UserFactory()
        client.force_login(learner)
        seen[size] = queries_of(lambda course=course: client.post(reverse("self_enroll", args=[course.key])))
        assert Enrollment.objects.filter(course=course, user=learner, is_active=True).exists()  # a tenth had left: seats free
        assert not any(counts_enrollments(q) for q in seen[size])
    assert len(seen[10]) == len(seen[2000])


@pytest.mark.parametrize("later", [False, True])
def test_the_codes_tab_costs_the_same_on_a_course_of_10_and_of_2000(client, later):
    """Page 1 and a later page (by its cursor), the Batch filter's list included."""
    from codes.services import code_batch_generate

    seen = {}
    for size in (10, 2000):
        course = course_of(size)
        admin = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user
        for _ in range(3 if size == 10 else 30):  # more batches too, as a bigger course has
            code_batch_generate(actor=admin, courses=[course], count=30)
        client.force_login(admin)
        url = reverse("instructor_codes", args=[course.key])
        client.get(url)
        if later:
            url = client.get(url, {"page": 2})["Location"]  # an old page-number address, sent to its cursor
        seen[size] = queries_of(lambda url=url: client.get(url))
        assert not any(counts_enrollments(q) for q in seen[size])
        assert not any("COUNT(" in q.upper() and '"codes_enrollmentcode"' in q for q in seen[size])
    assert len(seen[10]) == len(seen[2000])


@pytest.mark.parametrize("kind", ["enrolled_profiles", "may_enroll"])
def test_the_reports_task_costs_the_same_on_a_course_of_10_and_of_2000_but_for_its_progress(kind):
    """A report reads every row (by COPY on PostgreSQL, a server-side cursor on
    SQLite), whatever the size in the same statements; only the progress
    written once a chunk grows with it."""
    from enrollments.models import Allowance
    from reports.selectors import CHUNK_SIZE
    from reports.services import report_request, report_run

    def progress(sql: str) -> bool:
        return sql.startswith('UPDATE "reports_reporttask" SET "done"')

    seen = {}
    for size in (10, 2000):
        course = course_of(size)
        Allowance.objects.bulk_create([Allowance(course=course, email=f"a{i}@example.org", email_key=f"a{i}@example.org") for i in range(size)])
        task, _ = report_request(course=course, kind=kind, requester=None)
        with CaptureQueriesContext(connection) as captured:
            report_run(task_id=task.pk)
        task.refresh_from_db()
        assert task.status == "succeeded" and task.done >= size * 9 // 10  # every row (a tenth of the enrollments ended)
        sqls = [q["sql"] for q in captured.captured_queries]
        seen[size] = [q for q in sqls if not progress(q)]
        assert sum(map(progress, sqls)) <= 1 + size // CHUNK_SIZE + 1  # the start, each chunk, the end
    assert len(seen[10]) == len(seen[2000])
