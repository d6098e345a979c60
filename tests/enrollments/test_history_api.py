"""GET /api/courses/v1/<course_key>/enrollments/<username or email>/ and
GET /api/courses/v1/<course_key>/allowances/: the persona matrix, bad input
(400 naming the parameter), what they answer, and their query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from enrollments.models import Allowance, Notification
from enrollments.services import enrollment_batch_update
from tests.factories import AllowanceFactory

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        from rest_framework.authtoken.models import Token

        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def story_url(course, who):
    return f"/api/courses/v1/{course.key}/enrollments/{who}/"


def allowances_url(course):
    return f"/api/courses/v1/{course.key}/allowances/"


@pytest.fixture(autouse=True)
def _no_delivery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"


@pytest.mark.parametrize("persona, status", [
    ("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 401),
])
def test_both_endpoints_are_for_the_course_team(request, course, learner, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    for path in (story_url(course, learner.username), allowances_url(course)):
        response = api(user).get(path)
        assert response.status_code == status, path
        assert "detail" in response.json() or status == 200


def test_an_unknown_course_is_a_json_404(course_admin, learner):
    for path in (f"/api/courses/v1/course-v1:No+SUCH+2026/enrollments/{learner.username}/", "/api/courses/v1/course-v1:No+SUCH+2026/allowances/"):
        response = api(course_admin).get(path)
        assert response.status_code == 404 and "detail" in response.json()


def test_the_story_of_a_learner(course, course_admin, learner):
    enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True, email_students=True,
                            actor=course_admin, reason="welcome")
    enrollment_batch_update(course=course, identifiers=[learner.username], action="unenroll", auto_enroll=True, email_students=False,
                            actor=course_admin, reason="bye")
    body = api(course_admin).get(story_url(course, "LEARNER@example.com")).json()
    assert body["username"] == "learner" and body["email"] == "learner@example.com" and body["course_id"] == course.key
    assert body["state"] == "unenrolled" and body["enrollment"]["is_active"] is False and body["enrollment"]["mode"] == "audit"
    assert body["allowance"] is None and body["truncated"] is False
    changes = [(h["change"]["state_before"], h["change"]["state_after"], h["change"]["reason"], h["change"]["actor"]) for h in body["history"]]
    assert changes == [("enrolled", "unenrolled", "bye", "courseadmin"), ("none", "enrolled", "welcome", "courseadmin")]
    assert [(e["kind"], e["status"]) for e in body["history"][1]["emails"]] == [("enrolled", "queued")]
    assert body["history"][0]["emails"] == []


def test_the_story_of_an_invited_address_without_an_account(course, course_admin):
    enrollment_batch_update(course=course, identifiers=["guest@example.org"], action="enroll", auto_enroll=True, email_students=True,
                            actor=course_admin)
    body = api(course_admin).get(story_url(course, "guest@example.org")).json()
    assert body["username"] is None and body["state"] == "allowed_auto" and body["allowance"]["auto_enroll"] is True
    assert body["history"][0]["change"]["state_after"] == "allowed_auto"
    assert body["history"][0]["emails"][0]["kind"] == "allowed"
    nobody = api(course_admin).get(story_url(course, "never@example.org")).json()
    assert nobody["state"] == "none" and nobody["history"] == []


@pytest.mark.parametrize("who, status, key", [("no_such_person", 404, "detail"), ("bad@", 400, "identifier"), ("x" * 321, 400, "identifier")])
def test_bad_or_unknown_identifiers(course, course_admin, who, status, key):
    response = api(course_admin).get(story_url(course, who))
    assert response.status_code == status and key in response.json()


def test_allowances_lists_open_invitations_newest_first_with_search_and_cursor(course, other_course, course_admin):
    now = timezone.now()
    for i in range(5):
        AllowanceFactory(course=course, email=f"p{i}@example.org", created=now - timedelta(minutes=i), created_by=course_admin)
    AllowanceFactory(course=course, email="used@example.org", used_at=now)
    AllowanceFactory(course=other_course, email="other@example.org")
    Notification.objects.create(course=course, kind=Notification.Kind.ALLOWED, recipient="p0@example.org", recipient_key="p0@example.org",
                                subject="s", status=Notification.Status.SENT)
    client = api(course_admin)
    first = client.get(allowances_url(course), {"page_size": 3}).json()
    assert [a["email"] for a in first["results"]] == ["p0@example.org", "p1@example.org", "p2@example.org"]
    assert first["results"][0]["email_status"] == "sent" and first["results"][1]["email_status"] is None
    assert first["results"][0]["invited_by"] == "courseadmin" and first["results"][0]["auto_enroll"] is True
    second = client.get(first["next"]).json()
    assert [a["email"] for a in second["results"]] == ["p3@example.org", "p4@example.org"] and second["next"] is None
    assert [a["email"] for a in client.get(allowances_url(course), {"search": "P3"}).json()["results"]] == ["p3@example.org"]


@pytest.mark.parametrize("params, key", [({"search": "x" * 101}, "search"), ({"cursor": "nonsense"}, "cursor"), ({"page_size": "-1"}, "page_size")])
def test_allowances_bad_parameters_are_400s_naming_them(course, course_admin, params, key):
    response = api(course_admin).get(allowances_url(course), params)
    assert response.status_code == 400 and key in response.json()


def test_allowances_queries_do_not_grow_with_the_course(course, course_admin):
    counts = []
    client = api(course_admin)
    client.get(allowances_url(course))  # the token exists before counting
    for n in (3, 80):
        Allowance.objects.filter(course=course).delete()
        Allowance.objects.bulk_create([Allowance(course=course, email=f"q{i}@example.org", email_key=f"q{i}@example.org") for i in range(n)])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(allowances_url(course)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_both_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/courses/v1/{course_key}/enrollments/{identifier}/" in schema
    assert "/api/courses/v1/{course_key}/allowances/" in schema
