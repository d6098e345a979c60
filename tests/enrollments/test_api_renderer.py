"""The bulk enroll answer's renderer (issue 16): the same bytes as DRF's
JSONRenderer for every shape the answer takes; the request's validation of
a list of identifiers without DRF's per-character checks, and a list split
as one text."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from courses.models import Cohort
from enrollment_site.lib.identifiers import split_all, split_identifiers
from enrollments.api.renderers import BulkAnswerRenderer
from enrollments.models import Enrollment
from enrollments.services import ApiResults
from tests.factories import CourseFactory, EnrollmentFactory, PlatformAdminFactory, UserFactory

pytestmark = pytest.mark.django_db

BULK_URL = "/api/bulk_enroll/v1/bulk_enroll/"


@pytest.fixture
def admin_client():
    client = APIClient()
    client.force_authenticate(PlatformAdminFactory())
    return client


def drf_bytes(response) -> bytes:
    return JSONRenderer().render(response.data)


def test_every_outcome_renders_as_drf_would(admin_client):
    first, second = CourseFactory(), CourseFactory()
    Cohort.objects.create(course=first, name="Blue \u2028 «é»")
    kim = UserFactory(username="kim", email="kim@example.com")
    UserFactory(username="lee\u00e9", email="lee@example.com")
    EnrollmentFactory(user=kim, course=first)
    identifiers = [
        "kim", "kim@example.com", "leé", "new\"quote\\@example.com", "nobody", "not@an@email", "ünï@example.com",
        "x\u2029y@example.com", "Kim",
    ]
    body = {"identifiers": identifiers, "courses": [first.key, second.key], "action": "enroll", "auto_enroll": True,
            "cohorts": ["Blue \u2028 «é»", ""], "access_from": "2026-01-02"}
    response = admin_client.post(BULK_URL, body, format="json")
    assert response.status_code == 200, response.content
    results = response.data["courses"][first.key]["results"]
    assert isinstance(results, ApiResults)  # the renderer's own path was taken
    assert any(r.get("invalidIdentifier") for r in results) and any(r["after"].get("cohort") for r in results)
    assert response.content == drf_bytes(response)
    assert "\u2028" not in response.content.decode() and "\\u2028" in response.content.decode()


def test_unenroll_and_no_cohorts_render_as_drf_would(admin_client):
    course = CourseFactory()
    EnrollmentFactory(user=UserFactory(username="sam"), course=course)
    response = admin_client.post(BULK_URL, {"identifiers": "sam, gone@example.com, nobody", "courses": course.key,
                                            "action": "unenroll"}, format="json")
    assert response.status_code == 200, response.content
    assert response.content == drf_bytes(response)
    assert not Enrollment.objects.get(course=course).is_active


def test_an_indented_answer_is_drfs_own(admin_client):
    course = CourseFactory()
    response = admin_client.post(BULK_URL, {"identifiers": "a@example.com", "courses": course.key, "action": "enroll"},
                                 format="json", HTTP_ACCEPT="application/json; indent=2")
    assert response.status_code == 200, response.content
    assert b'\n  "action"' in response.content
    assert json.loads(response.content) == json.loads(drf_bytes(response))


def test_other_data_is_left_to_drf():
    data = {"courses": {"k": {"results": [{"identifier": "a", "before": {"x": 1}, "after": {"x": True}}]}}}
    assert BulkAnswerRenderer().render(data) == JSONRenderer().render(data)
    assert b'"before":{"x":1},"after":{"x":true}' in BulkAnswerRenderer().render(data)


@pytest.mark.parametrize("identifiers", [["ok@example.com", "bad\ud800@example.com"], ["ok@example.com", "a\x00b"]])
def test_a_list_with_a_lone_surrogate_or_a_null_is_refused(admin_client, identifiers):
    course = CourseFactory()
    body = json.dumps({"identifiers": identifiers, "courses": course.key, "action": "enroll"})
    response = admin_client.post(BULK_URL, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["identifiers"]
    assert not Enrollment.objects.filter(course=course).exists()


# Combining marks, jamo, zero-width characters, separators and plain letters:
# what could compose, vanish or split differently once the items are joined.
TRICKY = "a\u0301\u0308\u1100\u1161\u11a8\u200b\ufeff\u00e9e, \n;\t\u3000@."


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=TRICKY, max_size=6), max_size=6))
def test_a_list_is_split_as_its_items_are_one_by_one(items):
    assert split_all(items) == [token for item in items for token in split_identifiers(item)]
