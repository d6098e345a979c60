"""The API token's user, held in the cache (accounts.authentication): one query
fewer per request, and whatever makes a token stop working takes effect at the
very next request."""

import hashlib

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.services import api_token_regenerate
from enrollments.models import Enrollment
from tests.factories import CourseFactory, UserFactory

LIST_URL = "/api/so2/v1/enrollments"

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def queries_of(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST_URL)
    return response.status_code, len(captured)


def test_the_token_is_looked_up_once_then_served_from_the_cache(learner):
    token = Token.objects.create(user=learner)
    client = bearer(token.key)
    assert queries_of(client) == (200, 2)  # the token, the page
    assert queries_of(client) == (200, 1)  # the page
    # Keyed by a digest: the token itself is not written to the cache.
    assert cache.get("api-token:" + hashlib.sha256(token.key.encode()).hexdigest()) is not None
    assert cache.get("api-token:" + token.key) is None


def test_an_unknown_token_is_never_cached(learner):
    client = bearer("0123456789abcdef0123456789abcdef01234567")
    assert queries_of(client) == (401, 1)
    assert queries_of(client) == (401, 1)


def test_a_deactivated_user_is_refused_at_the_next_request(learner):
    client = bearer(Token.objects.create(user=learner).key)
    assert client.get(LIST_URL).status_code == 200
    learner.is_active = False
    learner.save()
    assert client.get(LIST_URL).status_code == 401


def test_a_revoked_or_regenerated_token_is_refused_at_the_next_request(learner):
    old = Token.objects.create(user=learner)
    client = bearer(old.key)
    assert client.get(LIST_URL).status_code == 200
    new, _ = api_token_regenerate(user=learner)
    assert client.get(LIST_URL).status_code == 401
    assert bearer(new.key).get(LIST_URL).status_code == 200
    Token.objects.filter(user=learner).delete()
    assert bearer(new.key).get(LIST_URL).status_code == 401


def test_a_deleted_user_is_refused_at_the_next_request(learner):
    client = bearer(Token.objects.create(user=learner).key)
    assert client.get(LIST_URL).status_code == 200
    learner.delete()
    assert client.get(LIST_URL).status_code == 401


def test_a_platform_admin_demoted_sees_only_their_own_at_the_next_request(platform_admin):
    course = CourseFactory()
    Enrollment.objects.create(user=UserFactory(), course=course)
    client = bearer(Token.objects.create(user=platform_admin).key)
    assert len(client.get(LIST_URL).json()["results"]) == 1
    platform_admin.is_staff = platform_admin.is_superuser = False
    platform_admin.save()
    assert client.get(LIST_URL).json()["results"] == []
